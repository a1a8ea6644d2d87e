"""Attack registry: build attacks by name from configuration (as Opacus' accountant registry).

``register_attack`` / ``create_attack`` map registry names to membership-attack classes;
``check_attack_specs`` validates the configured ``AttackSpec`` list once (at run start) and
``plan_attacks`` expands it for one level, k and output kind, keeping the attacks whose resources
(public base, shadow models, reference pool) the attacker holds.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Sequence
from typing import Any

from faceleaks.attacks.base import Level, MembershipAttack
from faceleaks.attacks.membership.averaging import AveragingAttack
from faceleaks.attacks.membership.combination import ShadowCombinationAttack
from faceleaks.attacks.membership.diffing import BaseDiffAttack
from faceleaks.attacks.membership.label_only import LabelOnlyAttack
from faceleaks.attacks.membership.lira import IdentityLiRAAttack
from faceleaks.attacks.membership.shadow import ShadowClassifierAttack
from faceleaks.attacks.membership.threshold import ThresholdAttack
from faceleaks.config import AttackSpec
from faceleaks.errors import ConfigError
from faceleaks.seeding import derive_seed
from faceleaks.serving.protocol import OutputKind

__all__ = ["register_attack", "create_attack", "registered_attacks", "instantiate", "plan_attacks",
           "check_attack_specs"]

_REGISTRY: dict[str, type[MembershipAttack]] = {}
_SET_PER_SETTING = frozenset({"level", "k"})


def register_attack(name: str, cls: type[MembershipAttack]) -> None:
    """Add ``cls`` under ``name``; ``ValueError`` if the name is taken."""
    if name in _REGISTRY:
        raise ValueError(f"attack {name!r} is already registered")
    _REGISTRY[name] = cls


def registered_attacks() -> dict[str, type[MembershipAttack]]:
    """A copy of the registry: name -> membership-attack class."""
    return dict(_REGISTRY)


def _parameters(cls: type) -> dict[str, inspect.Parameter]:
    return {n: p for n, p in inspect.signature(cls.__init__).parameters.items() if n != "self"}


def _matches(value: Any, hint: Any) -> bool:
    """Whether ``value`` fits the annotation ``hint`` (bool, int, float, str, tuples, unions); other
    annotations are not checked here (the constructor validates them)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is tuple:
        if not isinstance(value, (tuple, list)):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(v, args[0]) for v in value)
        return len(args) == len(value) and all(_matches(v, a) for v, a in zip(value, args))
    return True


def _check_types(cls: type, params: dict, name: str, what: str) -> None:
    """``ConfigError`` naming the first parameter whose value does not fit the constructor's annotation."""
    try:
        hints = typing.get_type_hints(cls.__init__)
    except (NameError, TypeError):  # an annotation we cannot evaluate: leave it to the constructor
        return
    for key, value in params.items():
        if key in hints and not _matches(value, hints[key]):
            raise ConfigError(f"{what} {name!r}: parameter {key}={value!r} must be of type "
                              f"{getattr(hints[key], '__name__', hints[key])}")


def instantiate(registry: dict[str, type], name: str, params: dict, *, what: str = "attack"):
    """``registry[name](**params)``; ``ConfigError`` for an unknown name or parameter, or a value of
    the wrong type (checked against the constructor's annotations: ``online="false"`` is refused)."""
    if name not in registry:
        raise ConfigError(f"unknown {what} {name!r}; registered: {sorted(registry)}")
    cls = registry[name]
    allowed = set(_parameters(cls))
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ConfigError(f"{what} {name!r} has no parameter(s) {unknown}; allowed: {sorted(allowed)}")
    _check_types(cls, params, name, what)
    return cls(**params)


def create_attack(name: str, **params) -> MembershipAttack:
    """Instantiate a registered membership attack; ``ConfigError`` for an unknown name or parameter."""
    return instantiate(_REGISTRY, name, params)


def _expand(spec: AttackSpec, *, level: Level, k: int, output_kind: OutputKind, seed: int) -> MembershipAttack | None:
    """The attack ``spec`` gives at one level, k and output kind, or None where it does not apply."""
    if spec.outputs and output_kind.value not in spec.outputs:
        return None
    if spec.name not in _REGISTRY:
        raise ConfigError(f"unknown attack {spec.name!r} in attack.membership; registered: {sorted(_REGISTRY)}")
    cls = _REGISTRY[spec.name]
    allowed = _parameters(cls)
    unknown = sorted(set(spec.params) - (set(allowed) - _SET_PER_SETTING))
    if unknown:
        raise ConfigError(f"attack {spec.name!r} has no parameter(s) {unknown}; allowed: "
                          f"{sorted(set(allowed) - _SET_PER_SETTING)}")
    required = sorted(n for n, p in allowed.items() if p.default is inspect.Parameter.empty
                      and n not in spec.params and n not in _SET_PER_SETTING)
    if required:
        raise ConfigError(f"attack {spec.name!r} needs parameter(s) {required} in its params")
    params: dict[str, Any] | None = cls.for_setting(dict(spec.params), level=level, k=k, output_kind=output_kind)
    if params is None:
        return None
    if "seed" in allowed and "seed" not in params:
        params["seed"] = derive_seed(seed, "attack", spec.name)
    attack = instantiate(_REGISTRY, spec.name, params)
    return attack if attack.supports(output_kind) else None


def plan_attacks(specs: Sequence[AttackSpec], *, level: Level, k: int, output_kind: OutputKind,
                 has_public_base: bool, has_shadows: bool, seed: int,
                 has_references: bool = True, has_pool: bool = False) -> list[MembershipAttack]:
    """The attacks to run at one level and k against a box revealing ``output_kind``, unfitted.

    Parameters
    ----------
    specs : sequence of AttackSpec, in run order (``AttackConfig.membership``)
    level : Level
    k : int >= 1, photos per identity (1 at INSTANCE level)
    output_kind : OutputKind the victim API reveals
    has_public_base, has_shadows, has_references, has_pool : bool
        Which attacker resources ``fit`` will receive (``has_pool``: the reference pool,
        ``fit(..., pool=...)``); attacks whose ``needs`` are not met are left out.
    seed : int, the run's seed; an attack with a ``seed`` parameter not set in its spec gets
        ``derive_seed(seed, "attack", spec.name)``

    Returns
    -------
    list of MembershipAttack, in spec order: each spec that applies at this level and k (its class's
    ``for_setting``), to this output (the spec's ``outputs`` and the attack's ``supports``) and
    with these resources.

    Raises
    ------
    ConfigError
        An unknown attack name or parameter, or a missing required parameter.
    """
    have = {"references": has_references, "public_base": has_public_base, "shadows": has_shadows,
            "pool": has_pool}
    out = []
    for spec in specs:
        attack = _expand(spec, level=level, k=k, output_kind=output_kind, seed=seed)
        if attack is not None and all(have[r] for r in attack.needs):
            out.append(attack)
    return out


def _why_nowhere(spec: AttackSpec, ks: Sequence[int]) -> str:
    """The constructor's own complaint about ``spec`` at identity and instance level, if any."""
    allowed = _parameters(_REGISTRY[spec.name])
    for level, k in ((Level.IDENTITY, max(ks)), (Level.INSTANCE, 1)):
        params = {**spec.params, **({"level": level.value} if "level" in allowed else {}),
                  **({"k": k} if "k" in allowed else {})}
        try:
            instantiate(_REGISTRY, spec.name, params)
        except (ConfigError, ValueError, TypeError) as err:
            return str(err)
    return "check its outputs"


def check_attack_specs(specs: Sequence[AttackSpec], *, ks: Sequence[int], seed: int = 0,
                       output_kind: OutputKind | None = None) -> None:
    """Validate configured specs once, before any model is trained.

    Every spec must name a registered attack with known parameters of the right types, build at
    each setting it applies to (constructor checks: feature names, statistics, ...), and apply to at
    least one (level, k in ``ks``, output kind). With ``output_kind`` (what the run's API reveals),
    at least one spec must run on it.

    Raises
    ------
    ConfigError
        Naming the spec and what to fix.
    """
    settings = [(Level.INSTANCE, 1)] + [(Level.IDENTITY, k) for k in ks]
    runs_here = False
    for spec in specs:
        built = {kind: [_expand(spec, level=lvl, k=k, output_kind=kind, seed=seed) for lvl, k in settings]
                 for kind in OutputKind}
        if not any(a is not None for group in built.values() for a in group):
            raise ConfigError(f"attack {spec.name!r} with params {spec.params} applies at no level, k in "
                              f"{tuple(ks)} or output: {_why_nowhere(spec, ks)}")
        runs_here |= output_kind is None or any(a is not None for a in built[output_kind])
    if not runs_here:
        raise ConfigError(f"no attack in attack.membership can use {output_kind.value} outputs (attack.output); "
                          f"add one that can (e.g. lira with statistic label_agreement, or threshold on "
                          f"label_agreement) or change the output")


register_attack("threshold", ThresholdAttack)
register_attack("shadow", ShadowClassifierAttack)
register_attack("base-diff", BaseDiffAttack)
register_attack("lira", IdentityLiRAAttack)
register_attack("shadow-combination", ShadowCombinationAttack)
register_attack("label-only", LabelOnlyAttack)
register_attack("averaging", AveragingAttack)
