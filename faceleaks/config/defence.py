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
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from faceleaks.config.attack import AttackSpec, AttributeConfig
from faceleaks.config.sections import RECIPE_OVERRIDES
from faceleaks.errors import ConfigError

__all__ = ["OUTPUT_DEFENCES", "OutputDefenceSpec", "DefenceSetting", "DEFAULT_DEFENCE_GRID", "QUICK_DEFENCE_GRID",
           "DEFENCE_ATTACKS", "ADAPTIVE_MEMBERSHIP_ATTACKS", "TEACHER_OVERRIDES", "setting_key", "DefendConfig",
           "load_grid", "NOISE_DEFENCES", "LIRA_ATTACKS", "DEFEND_ATTRIBUTES"]

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
TEACHER_OVERRIDES = frozenset({"recipe", "privacy", "unfreeze_last_n", *RECIPE_OVERRIDES})
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


def _dp(mode: str, epsilon: float, head_noise: float) -> dict[str, Any]:
    """DP-SGD at ``epsilon`` (delta 1e-5) with a noisy-means head of noise ``head_noise``: most of the budget
    on the head (``benchmarks/dp_utility.py``: at photo-level epsilon 8 a head noise of 0.7 identified
    0.71 of held-out member photos against 0.20 with the default 4)."""
    return {"mode": mode, "target_epsilon": epsilon, "head_init": "noisy-means", "head_noise_multiplier": head_noise}


#: The default sweep (issue 14): output defences on the one victim, then training defences (recipes,
#: fewer unfrozen stages, label smoothing, DP-SGD at photo and identity level, epsilon at delta 1e-5).
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
    _s("unfreeze-1", teacher={"unfreeze_last_n": 1}),
    _s("head-only", teacher={"unfreeze_last_n": 0}),
    _s("label-smoothing-0.1", teacher={"privacy": {"label_smoothing": 0.1}}),
    _s("dp-photo-eps8", teacher={"privacy": _dp("photo", 8.0, 0.7)}),
    _s("dp-photo-eps50", teacher={"privacy": _dp("photo", 50.0, 0.7)}),
    _s("dp-identity-eps8", teacher={"privacy": _dp("identity", 8.0, 1.0)}),
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
#: ``base-diff`` Fisher gap (and the plain consistency gap), the naive statistics and the adaptive attacks
#: (no shadow teachers).
DEFENCE_ATTACKS: tuple[AttackSpec, ...] = (
    *(AttackSpec("threshold", {"feature": f}) for f in ("max_posterior", "neg_entropy")),
    *(AttackSpec("threshold", {"feature": f}) for f in ("compactness", "label_agreement")),
    AttackSpec("base-diff", {"statistic": "fisher_gap"}),
    AttackSpec("base-diff", {"statistic": "consistency_gap"}),
    *ADAPTIVE_MEMBERSHIP_ATTACKS,
)
#: Attribute inference per setting: gender through the attacked student, logistic regression on 50
#: labelled UTKFace faces per value, one draw, identity level at k = 5 (small: one of several columns).
DEFEND_ATTRIBUTES = AttributeConfig(attacks=("logreg",), budgets=(50,), ks=(5,), identity_budget=50, n_draws=1,
                                    n_bootstrap=200, n_lfw_targets=600, n_utk_targets=300)

NOISE_DEFENCES = ("gaussian", "laplace")
#: Online LiRA run by ``faceleaks defend --shadows S`` (shadow students behind the victim's defence).
LIRA_ATTACKS: tuple[AttackSpec, ...] = (
    AttackSpec("lira", {"statistic": "fisher_gap", "online": True}),
    AttackSpec("lira", {"statistic": "consistency_gap", "online": True}),
    AttackSpec("lira", {"statistic": "compactness", "online": True}),
    AttackSpec("lira", {"statistic": "label_agreement", "online": True}, outputs=("label",)),
)


@dataclass(frozen=True)
class DefendConfig:
    """What ``faceleaks defend`` sweeps and attacks.

    Attributes
    ----------
    grid : tuple of DefenceSetting, distinct names, run in order (keep settings of one teacher together)
    k : int >= 2, photos per identity of the identity-level attacks
    students : student names attacked (every deployed student's accuracy is measured anyway)
    photo_settings : ``training-photos`` and/or ``unseen-photos``
    attacks : AttackSpec tuple; ``averaging`` runs only against noise defences, where its
        ``floor`` is set to the noise scale / sqrt(n_repeats) unless given [reconstructed]
    n_shadow_teachers : 0 (default: no LiRA) or >= 3 shadow teachers per victim recipe; their
        students are put behind the same output defence as the victim (the attacker knows it,
        Kerckhoffs), and online LiRA on the Fisher and consistency gaps, compactness and (labels)
        label agreement joins the attacks
    attributes : run gender inference (``DEFEND_ATTRIBUTES``) through the defended student per setting

    Raises
    ------
    ConfigError
        Empty grid, duplicate names, k < 2, unknown photo settings.
    """

    grid: tuple[DefenceSetting, ...] = DEFAULT_DEFENCE_GRID
    k: int = 5
    students: tuple[str, ...] = ("lfw-identity",)
    photo_settings: tuple[str, ...] = ("training-photos",)
    attacks: tuple[AttackSpec, ...] = DEFENCE_ATTACKS
    n_shadow_teachers: int = 0
    attributes: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.n_shadow_teachers, int) or self.n_shadow_teachers < 0 or 0 < self.n_shadow_teachers < 3:
            raise ConfigError(f"defend shadow teachers (--shadows) must be 0 (no LiRA) or >= 3, got {self.n_shadow_teachers!r}")
        names = [s.name for s in self.grid]
        if not names or len(set(names)) != len(names):
            raise ConfigError(f"the defence grid must list settings with distinct names, got {names}")
        if not isinstance(self.k, int) or self.k < 2:
            raise ConfigError(f"defend k must be an integer >= 2 (photos per identity), got {self.k!r}")
        bad = sorted(set(self.photo_settings) - {"training-photos", "unseen-photos"})
        if bad or not self.photo_settings:
            raise ConfigError(f"photo_settings must be among training-photos, unseen-photos, got {self.photo_settings}")

    def attacks_for(self, output: OutputDefenceSpec) -> tuple[AttackSpec, ...]:
        """The attack specs to run against ``output``: averaging only against noise, with its floor;
        LiRA when there are shadow teachers."""
        lira = LIRA_ATTACKS if self.n_shadow_teachers else ()
        if output.name not in NOISE_DEFENCES:
            return tuple(a for a in self.attacks if a.name != "averaging") + lira
        scale = float(output.params.get("sigma", output.params.get("scale", 0.0)))
        out = []
        for a in self.attacks:
            if a.name == "averaging" and "floor" not in a.params:
                repeats = int(a.params.get("n_repeats", 4))
                a = AttackSpec(a.name, {**a.params, "floor": scale / repeats ** 0.5}, a.outputs)
            out.append(a)
        return tuple(out) + lira

    def key_fields(self) -> dict[str, Any]:
        """What, besides a setting itself, changes its results (for the resume key)."""
        return {"k": self.k, "students": list(self.students), "photo_settings": list(self.photo_settings),
                "attacks": [repr(a) for a in self.attacks], "n_shadow_teachers": self.n_shadow_teachers,
                "attributes": repr(DEFEND_ATTRIBUTES) if self.attributes else None, "record": 3}


def load_grid(path: str | Path) -> tuple[DefenceSetting, ...]:
    """Settings from a TOML file of ``[[setting]]`` tables (``name``, ``output = {name, params}``,
    ``teacher = {...}``).

    Raises
    ------
    ConfigError
        An unreadable file, no ``[[setting]]`` table, or a bad setting.
    """
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"cannot read defence grid {path}: {err}") from err
    tables = raw.get("setting")
    if not isinstance(tables, list) or not tables or set(raw) - {"setting"}:
        raise ConfigError(f"defence grid {path} must hold only [[setting]] tables (name, output, teacher)")
    out = []
    for t in tables:
        if not isinstance(t, dict) or set(t) - {"name", "output", "teacher"} or "name" not in t:
            raise ConfigError(f"each [[setting]] needs a name and may have output and teacher tables, got {t!r}")
        output = t.get("output", {})
        spec = OutputDefenceSpec(output.get("name", "none"), dict(output.get("params", {})))
        out.append(DefenceSetting(t["name"], spec, dict(t.get("teacher", {}))))
    return tuple(out)
