"""One complete run's settings and how they are read: defaults, the ``--quick`` preset, TOML files.

Unknown keys raise ``ConfigError``; values are type-checked against the defaults before the
sections validate themselves.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faceleaks.config.attack import AttackConfig, AttributeConfig
from faceleaks.config.report import ReportConfig
from faceleaks.config.sections import DataConfig, RuntimeConfig, SplitConfig, StudentConfig, TeacherConfig
from faceleaks.errors import ConfigError

__all__ = ["ExperimentConfig", "config_from_dict", "quick_config", "load_config"]


@dataclass(frozen=True)
class ExperimentConfig:
    """One complete run. ``seed`` drives every random choice (splits, training, sampling)."""

    seed: int = 0
    output_dir: str = "faceleaks-out"
    data: DataConfig = field(default_factory=DataConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    attack: AttackConfig = field(default_factory=AttackConfig)
    attributes: AttributeConfig = field(default_factory=AttributeConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    report: ReportConfig = field(default_factory=ReportConfig)

    def __post_init__(self) -> None:
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, got {self.seed!r}")
        kmax, cap = max(self.attack.ks), self.data.max_images_per_identity
        # with half the photos training, the largest k needs k training (and k unseen) photos of a person
        need = kmax if self.teacher.resolved_recipe.photos == "all" else 2 * kmax
        if need > cap:
            raise ConfigError(f"k={kmax} (attack.ks / --k) cannot be evaluated: a member needs {need} photos "
                              f"(teacher.train_photos = {self.teacher.resolved_recipe.photos!r}), and "
                              f"data.max_images_per_identity={cap} caps photos per person; use k <= {cap * kmax // need}")

    def to_dict(self) -> dict[str, Any]:
        """All settings as nested plain dicts (for results.json), the teacher's recipe resolved."""
        return {**dataclasses.asdict(self), "teacher": self.teacher.to_dict()}


_SECTIONS = {
    "data": DataConfig,
    "split": SplitConfig,
    "teacher": TeacherConfig,
    "student": StudentConfig,
    "attack": AttackConfig,
    "attributes": AttributeConfig,
    "runtime": RuntimeConfig,
    "report": ReportConfig,
}


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"unknown setting(s) {unknown} in [{where}]; known: {sorted(known)}")
    coerced = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    defaults = cls()
    for k, v in coerced.items():
        if "|" not in str(known[k].type):  # unions (``int | str``, ``str | None``) are checked by the class
            _check_type(f"{where}.{k}", v, getattr(defaults, k))
    try:
        return cls(**coerced)
    except (TypeError, ValueError) as err:  # a wrong type that the field's own checks tripped on
        raise ConfigError(f"bad value in [{where}]: {err}") from err


def _check_type(name: str, value: Any, default: Any) -> None:
    """ConfigError unless ``value`` has the kind of its default (bool, int, number, text or list)."""
    if default is None or value is None:
        return
    if isinstance(default, bool):
        ok, want = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok, want = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif isinstance(default, float):
        ok, want = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
    elif isinstance(default, str):
        ok, want = isinstance(value, str), "text"
    elif isinstance(default, tuple):
        ok, want = isinstance(value, (tuple, list)), "a list"
    else:
        return
    if not ok:
        raise ConfigError(f"{name} must be {want}, got {value!r}")


def config_from_dict(values: dict[str, Any], base: ExperimentConfig | None = None) -> ExperimentConfig:
    """Overlay a nested dict (as in a TOML file) on ``base`` (defaults if None); unknown keys raise."""
    base = base or ExperimentConfig()
    top = {k: v for k, v in values.items() if k not in _SECTIONS}
    unknown = sorted(set(top) - {"seed", "output_dir"})
    if unknown:
        raise ConfigError(f"unknown top-level setting(s) {unknown}; known: sections {sorted(_SECTIONS)}, seed, output_dir")
    for k, v in top.items():
        _check_type(k, v, getattr(base, k))
    changes: dict[str, Any] = dict(top)
    for name, cls in _SECTIONS.items():
        if name in values:
            if not isinstance(values[name], dict):
                raise ConfigError(f"[{name}] must be a table of settings")
            merged = {**dataclasses.asdict(getattr(base, name)), **values[name]}
            changes[name] = _build(cls, merged, name)
    return dataclasses.replace(base, **changes)


def quick_config(base: ExperimentConfig | None = None) -> ExperimentConfig:
    """A small preset (few identities, short training) that finishes in about a minute on 2 cores."""
    return config_from_dict(
        {
            "split": {"n_members": 24, "n_nonmembers": 24, "n_reference": 24,
                      "n_student_identities": 20, "n_shadow_student_identities": 20,
                      "n_utkface_train": 300, "n_utkface_test": 100, "n_reference_pool": 300},
            "data": {"max_images_per_identity": 20, "verification_folds": 2},
            "teacher": {"epochs": 12},
            "student": {"epochs": 100},
            "attack": {"n_bootstrap": 300, "n_shadow_teachers": 4},
            "attributes": {"n_lfw_targets": 200, "n_utk_targets": 200, "n_utk_aux": 300, "n_bootstrap": 200,
                           "n_draws": 1},
        },
        base,
    )


def load_config(path: str | Path, base: ExperimentConfig | None = None) -> ExperimentConfig:
    """Read a TOML file of settings over ``base``; raises ``ConfigError`` if unreadable or unknown."""
    try:
        with open(path, "rb") as fh:
            values = tomllib.load(fh)
    except UnicodeDecodeError as err:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {err.start}); save it as UTF-8 TOML") from err
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"cannot read config file {path}: {err}") from err
    return config_from_dict(values, base)
