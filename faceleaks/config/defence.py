"""Defence settings: output defences as specs, and the grid ``faceleaks defend`` sweeps.

Plain data (this core module imports neither serving nor models): ``OutputDefenceSpec`` names an
output defence and its parameters (built by ``faceleaks.serving.defences.apply_output_defence``);
``DefenceSetting`` pairs one output defence with teacher-recipe overrides (``TeacherConfig``
fields); ``DEFAULT_DEFENCE_GRID`` and ``QUICK_DEFENCE_GRID`` are the grids of the command
[reconstructed: the strengths are ours].
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from faceleaks.config.attack import AttackSpec
from faceleaks.config.sections import RECIPE_OVERRIDES
from faceleaks.errors import ConfigError

__all__ = ["OUTPUT_DEFENCES", "OutputDefenceSpec", "DefenceSetting", "DEFAULT_DEFENCE_GRID", "QUICK_DEFENCE_GRID",
           "DEFENCE_ATTACKS", "ADAPTIVE_MEMBERSHIP_ATTACKS", "TEACHER_OVERRIDES", "setting_key"]

#: Output-defence names and the parameters each accepts (checked again by the serving registry).
OUTPUT_DEFENCES: dict[str, frozenset[str]] = {
    "none": frozenset(),
    "rounding": frozenset({"decimals"}),
    "topk": frozenset({"k", "renormalise"}),
    "label": frozenset(),
    "gaussian": frozenset({"sigma", "same_noise_per_image", "seed"}),
    "laplace": frozenset({"scale", "same_noise_per_image", "seed"}),
}
#: ``TeacherConfig`` fields a defence setting may override (the recipe and its values).
TEACHER_OVERRIDES = frozenset({"recipe", *RECIPE_OVERRIDES})
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=+-]*$")


@dataclass(frozen=True)
class OutputDefenceSpec:
    """One output defence as configuration: ``name`` from ``OUTPUT_DEFENCES`` and its ``params``.

    Raises
    ------
    ConfigError
        Unknown name or parameter (values are checked when the defence is built).

    Examples
    --------
    >>> OutputDefenceSpec("rounding", {"decimals": 2}).label
    'rounding(decimals=2)'
    """

    name: str = "none"
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in OUTPUT_DEFENCES:
            raise ConfigError(f"unknown output defence {self.name!r}; choose one of {sorted(OUTPUT_DEFENCES)}")
        if not isinstance(self.params, dict):
            raise ConfigError(f"output defence {self.name!r}: params must be a table, got {self.params!r}")
        unknown = sorted(set(self.params) - OUTPUT_DEFENCES[self.name])
        if unknown:
            raise ConfigError(f"output defence {self.name!r} has no parameter(s) {unknown}; allowed: "
                              f"{sorted(OUTPUT_DEFENCES[self.name])}")

    @property
    def label(self) -> str:
        """``name(param=value, ...)``, sorted, for tables."""
        inner = ", ".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.name}({inner})" if inner else self.name


@dataclass(frozen=True)
class DefenceSetting:
    """One point of the privacy–utility sweep.

    Attributes
    ----------
    name : str, folder-safe (letters, digits, ``_.=+-``); results go to ``OUT/defend/<name>/``
    output : OutputDefenceSpec applied to every deployed student (victim and the attacker's shadow)
    teacher : dict, ``TeacherConfig`` overrides (``recipe``, ``finetune_weight_decay``, ...); empty
        reuses the run's teacher (output defences cost no training)

    Raises
    ------
    ConfigError
        A bad name or an override that is not a recipe field.
    """

    name: str
    output: OutputDefenceSpec = field(default_factory=OutputDefenceSpec)
    teacher: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ConfigError(f"defence setting name {self.name!r} must be folder-safe (letters, digits, _.=+-)")
        if isinstance(self.output, dict):
            object.__setattr__(self, "output", OutputDefenceSpec(**self.output))
        bad = sorted(set(self.teacher) - TEACHER_OVERRIDES)
        if bad:
            raise ConfigError(f"defence setting {self.name!r}: teacher override(s) {bad} unknown; allowed: "
                              f"{sorted(TEACHER_OVERRIDES)}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready)."""
        return asdict(self)


def setting_key(setting: DefenceSetting, base: dict[str, Any]) -> str:
    """Hex SHA-256 of the setting and the run's settings ``base``: equal keys mean an equal run."""
    text = json.dumps({"setting": setting.to_dict(), "base": base}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _s(name: str, defence: str = "none", teacher: dict | None = None, **params: Any) -> DefenceSetting:
    return DefenceSetting(name, OutputDefenceSpec(defence, params), dict(teacher or {}))


#: The default sweep (issue 14): output defences on the one victim, then three training recipes.
#: ``light`` keeps half of each member's photos out (``train_photos = "half"``) so the owner's
#: identification accuracy on held-out member photos can be measured for it too.
DEFAULT_DEFENCE_GRID: tuple[DefenceSetting, ...] = (
    _s("none"),
    _s("round-2", "rounding", decimals=2),
    _s("round-1", "rounding", decimals=1),
    _s("top-1", "topk", k=1, renormalise=False),
    _s("label-only", "label"),
    _s("gauss-0.01", "gaussian", sigma=0.01),
    _s("gauss-0.05", "gaussian", sigma=0.05),
    _s("gauss-0.01-hmac", "gaussian", sigma=0.01, same_noise_per_image=True),
    _s("gauss-0.05-hmac", "gaussian", sigma=0.05, same_noise_per_image=True),
    _s("laplace-0.02", "laplace", scale=0.02),
    _s("recipe-light", teacher={"recipe": "light", "train_photos": "half"}),
    _s("recipe-wd-5e-3", teacher={"finetune_weight_decay": 5e-3}),
)
#: A three-setting grid for tests and CI (``--quick``).
QUICK_DEFENCE_GRID: tuple[DefenceSetting, ...] = (
    _s("none"),
    _s("round-1", "rounding", decimals=1),
    _s("gauss-0.05", "gaussian", sigma=0.05),
)

#: The adaptive attacks (issue 14): registered, not in the default ``faceleaks run`` set.
ADAPTIVE_MEMBERSHIP_ATTACKS: tuple[AttackSpec, ...] = (
    AttackSpec("label-only", {"statistic": "agreement"}),
    AttackSpec("label-only", {"statistic": "margin"}),
    AttackSpec("averaging", {"n_repeats": 4, "variants": "jitter"}),
)
#: What ``faceleaks defend`` runs on every setting: per-photo thresholds, the headline identity-level
#: ``base-diff`` consistency gap, the naive statistics and the adaptive attacks (no shadow teachers).
DEFENCE_ATTACKS: tuple[AttackSpec, ...] = (
    *(AttackSpec("threshold", {"feature": f}) for f in ("max_posterior", "neg_entropy")),
    *(AttackSpec("threshold", {"feature": f}) for f in ("compactness", "label_agreement")),
    AttackSpec("base-diff", {"statistic": "consistency_gap"}),
    *ADAPTIVE_MEMBERSHIP_ATTACKS,
)
