"""The one registry of attribute attacks: name -> class, filled by ``classifier`` at import.

Configuration names attribute attacks (``AttributeConfig.attacks``); the core config module may
not import attacks, so names are checked here (``resolve_attribute_attacks``), where they are used.
"""

from __future__ import annotations

from collections.abc import Sequence

from faceleaks.attacks.attribute.base import AttributeAttack
from faceleaks.attacks.registry import instantiate
from faceleaks.errors import ConfigError

__all__ = ["ATTRIBUTE_ATTACKS", "register_attribute_attack", "create_attribute_attack", "attribute_attack_names",
           "resolve_attribute_attacks"]

ATTRIBUTE_ATTACKS: dict[str, type[AttributeAttack]] = {}


def register_attribute_attack(name: str, cls: type[AttributeAttack]) -> None:
    """Add ``cls`` under ``name``; ``ValueError`` if the name is taken."""
    if name in ATTRIBUTE_ATTACKS:
        raise ValueError(f"attribute attack {name!r} is already registered")
    ATTRIBUTE_ATTACKS[name] = cls


def create_attribute_attack(name: str, **params) -> AttributeAttack:
    """Build a registered attribute attack; ``ConfigError`` for an unknown name or parameter."""
    return instantiate(ATTRIBUTE_ATTACKS, name, params, what="attribute attack")


def attribute_attack_names(*, baselines: bool = False) -> tuple[str, ...]:
    """Registered names in registration order; baselines (``is_baseline``) only if asked for."""
    return tuple(n for n, cls in ATTRIBUTE_ATTACKS.items() if baselines or not cls.is_baseline)


def resolve_attribute_attacks(names: Sequence[str]) -> tuple[str, ...]:
    """The attribute attacks a run uses: ``names`` checked against the registry, or every
    registered attack that is not a baseline when ``names`` is empty.

    Raises
    ------
    ConfigError
        An unknown or repeated name, naming the registered choices.

    Examples
    --------
    >>> import faceleaks.attacks.attribute.classifier  # registers the attacks
    >>> resolve_attribute_attacks(())
    ('logreg', 'knn', 'cluster')
    """
    if not names:
        return attribute_attack_names()
    unknown = [n for n in names if n not in ATTRIBUTE_ATTACKS]
    if unknown or len(set(names)) != len(names):
        raise ConfigError(f"attributes.attacks must be distinct names among {attribute_attack_names(baselines=True)}, "
                          f"got {tuple(names)!r}")
    return tuple(names)
