"""Attack registry: build attacks by name from configuration (as Opacus' accountant registry)."""

from __future__ import annotations

import inspect

from faceleaks.attacks.base import MembershipAttack
from faceleaks.attacks.membership.combination import ShadowCombinationAttack
from faceleaks.attacks.membership.diffing import BaseDiffAttack
from faceleaks.attacks.membership.lira import IdentityLiRAAttack
from faceleaks.attacks.membership.shadow import ShadowClassifierAttack
from faceleaks.attacks.membership.threshold import ThresholdAttack
from faceleaks.errors import ConfigError

__all__ = ["register_attack", "create_attack", "registered_attacks", "instantiate"]

_REGISTRY: dict[str, type[MembershipAttack]] = {}


def register_attack(name: str, cls: type[MembershipAttack]) -> None:
    """Add ``cls`` under ``name``; ``ValueError`` if the name is taken."""
    if name in _REGISTRY:
        raise ValueError(f"attack {name!r} is already registered")
    _REGISTRY[name] = cls


def registered_attacks() -> dict[str, type[MembershipAttack]]:
    return dict(_REGISTRY)


def instantiate(registry: dict[str, type], name: str, params: dict, *, what: str = "attack"):
    """``registry[name](**params)``; ``ConfigError`` naming the choices for an unknown name or parameter."""
    if name not in registry:
        raise ConfigError(f"unknown {what} {name!r}; registered: {sorted(registry)}")
    cls = registry[name]
    allowed = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ConfigError(f"{what} {name!r} has no parameter(s) {unknown}; allowed: {sorted(allowed)}")
    return cls(**params)


def create_attack(name: str, **params) -> MembershipAttack:
    """Instantiate a registered membership attack; ``ConfigError`` for an unknown name or parameter."""
    return instantiate(_REGISTRY, name, params)


register_attack("threshold", ThresholdAttack)
register_attack("shadow", ShadowClassifierAttack)
register_attack("base-diff", BaseDiffAttack)
register_attack("lira", IdentityLiRAAttack)
register_attack("shadow-combination", ShadowCombinationAttack)
