"""What the attacker runs: the membership attacks (as registry specs), their outputs and metrics,
and the attribute study's settings.

Membership attacks are named here as ``AttackSpec(name, params, outputs)``, plain data: this core
module does not import the attacks. ``faceleaks.attacks.registry`` checks the names and
parameters (``check_attack_specs``, at run start) and expands the specs for one level and k
(``plan_attacks``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from faceleaks.config.sections import OUTPUT_KINDS, positive, positive_ints
from faceleaks.errors import ConfigError

__all__ = ["AttackSpec", "DEFAULT_MEMBERSHIP_ATTACKS", "AttackConfig", "AttributeConfig"]

# Attribute-attack names are checked by the attribute registry at run start
# (``faceleaks.attacks.attribute.registry.resolve_attribute_attacks``): this core module cannot import it.


def _frozen(value: Any) -> Any:
    """Lists (from TOML or JSON) as tuples, recursively, so specs compare and print alike."""
    return tuple(_frozen(v) for v in value) if isinstance(value, (list, tuple)) else value


@dataclass(frozen=True)
class AttackSpec:
    """One membership attack to run, as configuration.

    Attributes
    ----------
    name : str
        Registry name (``threshold``, ``shadow``, ``base-diff``, ``lira``, ``shadow-combination``, or
        any attack added with ``faceleaks.attacks.registry.register_attack``).
    params : dict of str to scalar or tuple
        Constructor keyword arguments, without ``level`` and ``k``: the registry sets those for
        each level and k (``attack.ks``), and leaves out a spec where it does not apply. E.g.
        ``{"statistic": "consistency_gap"}`` for ``base-diff`` and ``lira`` (needs posterior
        outputs, the public base and the attacker's reference pool; ``pool_size`` sets how many
        pool photos each box's surrogate is fitted on), ``{"statistic": "residual_coherence"}``
        for the diagnostic residual statistics, ``{"statistics": (...)}`` for ``shadow-combination``.
    outputs : tuple of str, from ``OUTPUT_KINDS``
        Run only when the student API reveals one of these; empty: on every output the attack
        supports.

    Raises
    ------
    ConfigError
        A field of the wrong type, ``level``/``k`` among the params, or an unknown output kind.

    Examples
    --------
    >>> AttackSpec("threshold", {"feature": "compactness"}).params
    {'feature': 'compactness'}
    """

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"attack spec name must be a registry name (text), got {self.name!r}")
        if not isinstance(self.params, dict) or not all(isinstance(k, str) for k in self.params):
            raise ConfigError(f"attack {self.name!r}: params must be a table of settings, got {self.params!r}")
        fixed = sorted({"level", "k"} & set(self.params))
        if fixed:
            raise ConfigError(f"attack {self.name!r}: {fixed} are set per level and k (attack.ks); "
                              f"remove them from params")
        outputs = _frozen(self.outputs)
        if not isinstance(outputs, tuple) or set(outputs) - set(OUTPUT_KINDS):
            raise ConfigError(f"attack {self.name!r}: outputs must be among {OUTPUT_KINDS}, got {self.outputs!r}")
        object.__setattr__(self, "params", {k: _frozen(v) for k, v in self.params.items()})
        object.__setattr__(self, "outputs", outputs)

    @classmethod
    def from_value(cls, value: AttackSpec | dict[str, Any]) -> AttackSpec:
        """A spec from itself or a table ``{name, params, outputs}`` (TOML ``[[attack.membership]]``)."""
        if isinstance(value, AttackSpec):
            return value
        if not isinstance(value, dict) or "name" not in value or set(value) - {"name", "params", "outputs"}:
            raise ConfigError(f"each attack.membership entry must be a table with name, params (optional) and "
                              f"outputs (optional), got {value!r}")
        return cls(value["name"], dict(value.get("params", {})), _frozen(value.get("outputs", ())))


_INSTANCE_SHADOW = ("max_posterior", "top2_posterior", "top3_posterior", "neg_entropy")
_IDENTITY_SHADOW = ("mean_max_posterior", "mean_neg_entropy", "compactness", "label_agreement")
_COMBINED = ("compactness", "mean_max_posterior", "label_agreement", "consistency_gap")

DEFAULT_MEMBERSHIP_ATTACKS: tuple[AttackSpec, ...] = (
    *(AttackSpec("threshold", {"feature": f}) for f in ("max_posterior", "neg_entropy", "neg_modified_entropy")),
    AttackSpec("shadow", {"features": _INSTANCE_SHADOW}),
    *(AttackSpec("threshold", {"feature": f}) for f in ("mean_max_posterior", "compactness", "label_agreement")),
    AttackSpec("shadow", {"features": _IDENTITY_SHADOW}),
    AttackSpec("base-diff", {"statistic": "consistency_gap"}),
    AttackSpec("base-diff", {"statistic": "fisher_gap"}),
    AttackSpec("lira", {"statistic": "consistency_gap", "online": True}),
    AttackSpec("lira", {"statistic": "fisher_gap", "online": True}),
    AttackSpec("lira", {"statistic": "consistency_gap", "online": False}),
    AttackSpec("lira", {"statistic": "compactness", "online": True}),
    AttackSpec("lira", {"statistic": "compactness", "online": False}),
    AttackSpec("lira", {"statistic": "label_agreement", "online": True}, outputs=("label",)),
    AttackSpec("lira", {"statistic": "label_agreement", "online": False}, outputs=("label",)),
    AttackSpec("shadow-combination", {"statistics": _COMBINED}),
)
"""The default attack set. Each spec runs at every level and k it applies to, on every output it
supports, when its resources are there (public base, shadows, reference pool): the identity shadow
classifier keeps the features the output and k can give; the consistency-gap attacks (base-model
diffing, LiRA on ``consistency_gap`` / ``fisher_gap``) need posterior outputs, the public base and the reference pool
(``fit(..., pool=...)``); LiRA on ``label_agreement`` runs on label outputs only; the shadow
combination drops ``consistency_gap`` without a pool. The residual statistics of base-model diffing
(``residual_norm``, ``residual_coherence``, ``combined``) stay registered as diagnostics: add them
as specs (e.g. ``AttackSpec("base-diff", {"statistic": "combined"})``) to run them."""

@dataclass(frozen=True)
class AttackConfig:
    """What the attacker sees and how results are summarised.

    ``output`` is what the student API returns (``posterior``, ``topk`` or ``label``); ``ks`` are the
    numbers of photos per identity; ``fprs`` are fractions at which TPR is reported; ``transport``
    is ``local`` (in-process) or ``http`` (each student served by uvicorn on 127.0.0.1 and queried
    over HTTP with httpx, as a deployed API would be); ``n_shadow_teachers`` > 0 adds the
    identity-level LiRA and shadow-combination attacks with that many shadow teachers per setting
    (dlib teachers only; 0 turns them off; otherwise at least 3, ``ConfigError`` below);
    ``membership`` lists the membership attacks (``AttackSpec``; TOML ``[[attack.membership]]``
    tables), ``DEFAULT_MEMBERSHIP_ATTACKS`` by default.
    """

    ks: tuple[int, ...] = (1, 2, 5, 10)
    output: str = "posterior"
    top_k: int = 3
    n_instance_max: int = 1000
    instance_photos_per_identity: int = 5
    n_bootstrap: int = 1000
    fprs: tuple[float, ...] = (0.1, 0.01, 0.001)
    transport: str = "local"
    n_shadow_teachers: int = 8
    membership: tuple[AttackSpec, ...] = DEFAULT_MEMBERSHIP_ATTACKS

    def __post_init__(self) -> None:
        specs = tuple(AttackSpec.from_value(v) for v in _frozen(self.membership))
        if not specs or len(set(map(repr, specs))) != len(specs):
            raise ConfigError(f"AttackConfig.membership must list distinct attacks, got {self.membership!r}")
        object.__setattr__(self, "membership", specs)
        if not isinstance(self.n_shadow_teachers, int) or self.n_shadow_teachers < 0 or 0 < self.n_shadow_teachers < 3:
            raise ConfigError(f"shadow teachers (--shadows, AttackConfig.n_shadow_teachers) must be 0 (off) or >= 3 "
                              f"(the shadow combination leaves one out in turn; LiRA wants >= 8), got {self.n_shadow_teachers}")
        if self.transport not in ("local", "http"):
            raise ConfigError(f"unknown transport {self.transport!r}; choose local or http")
        if not self.ks or any(not isinstance(k, int) or isinstance(k, bool) or k < 1 for k in self.ks) \
                or len(set(self.ks)) != len(self.ks):
            raise ConfigError(f"AttackConfig.ks must be distinct positive integers, got {self.ks}")
        if self.output not in OUTPUT_KINDS:
            raise ConfigError(f"unknown output {self.output!r}; choose one of {OUTPUT_KINDS}")
        positive(self, "top_k", "n_instance_max", "n_bootstrap", "instance_photos_per_identity")
        for f in self.fprs:
            if not 0.0 < f < 1.0:
                raise ConfigError(f"AttackConfig.fprs must be fractions in (0, 1), got {f}")

@dataclass(frozen=True)
class AttributeConfig:
    """Settings of the attribute-inference experiment (counts are photos unless stated).

    ``budgets``: labelled auxiliary faces per attribute value (positive ints, and/or ``"all"``);
    ``outputs``: what the student API reveals (empty: the membership run's ``attack.output``);
    ``ks``: photos per person at identity level, attacked with the models fitted at ``identity_budget``;
    ``n_utk_aux``: the auxiliary pool (topped up so every class has the largest numeric budget);
    ``max_lfw_photos_per_person``: cap per person in the LFW instance targets;
    ``n_draws``: independent draws of the labelled faces per numeric budget (``all``: one), pooled;
    ``lfw_labels``: path to ``lfw_labels.csv`` (None: looked for beside LFW).
    """

    enabled: bool = True
    attacks: tuple[str, ...] = ()
    budgets: tuple[int | str, ...] = (1, 5, 10, 50, "all")
    outputs: tuple[str, ...] = ()
    ks: tuple[int, ...] = (1, 2, 5, 10)
    identity_budget: int | str = "all"
    n_bootstrap: int = 1000
    n_lfw_targets: int = 1500
    max_lfw_photos_per_person: int = 2
    n_utk_aux: int = 1000
    n_utk_targets: int = 1000
    n_draws: int = 3
    lfw_labels: str | None = None

    def __post_init__(self) -> None:
        name = type(self).__name__
        if not all(isinstance(a, str) for a in self.attacks) or len(set(self.attacks)) != len(self.attacks):
            raise ConfigError(f"{name}.attacks must be distinct attribute-attack names (empty: every registered "
                              f"attack), got {self.attacks!r}")
        positive_ints(name, "budgets", [b for b in self.budgets if b != "all"] or ([1] if self.budgets else []))
        if len(set(self.budgets)) != len(self.budgets):
            raise ConfigError(f"{name}.budgets has duplicates: {self.budgets!r}")
        if self.identity_budget not in self.budgets:
            raise ConfigError(f"{name}.identity_budget={self.identity_budget!r} must be one of budgets "
                              f"{self.budgets!r}")
        if set(self.outputs) - set(OUTPUT_KINDS):
            raise ConfigError(f"{name}.outputs must be among {OUTPUT_KINDS}, got {self.outputs!r}")
        for field_name in ("ks", "n_bootstrap", "n_lfw_targets", "max_lfw_photos_per_person", "n_utk_aux",
                           "n_utk_targets", "n_draws"):
            value = getattr(self, field_name)
            positive_ints(name, field_name, value if isinstance(value, tuple) else [value])

    @property
    def max_numeric_budget(self) -> int:
        """The largest integer budget (0 if only ``all``)."""
        return max([b for b in self.budgets if b != "all"], default=0)

