"""Typed, validated settings for a faceleaks run.

Every knob lives in a frozen dataclass, validated once in ``__post_init__``; the CLI builds one
``ExperimentConfig`` (defaults, ``--quick`` preset, an optional TOML file, command-line
overrides) and each layer receives only its own slice. Unknown keys raise ``ConfigError``.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faceleaks.errors import ConfigError

__all__ = [
    "DataConfig",
    "SplitConfig",
    "TeacherConfig",
    "StudentConfig",
    "AttackConfig",
    "AttributeConfig",
    "ATTRIBUTE_ATTACKS",
    "RuntimeConfig",
    "ExperimentConfig",
    "TEACHER_KINDS",
    "OUTPUT_KINDS",
    "quick_config",
    "config_from_dict",
    "load_config",
]

TEACHER_KINDS = ("dlib", "scratch", "dlib-base")
CONTROL_KINDS = ("base", "finetuned")
OUTPUT_KINDS = ("posterior", "topk", "label")
ATTRIBUTE_ATTACKS = ("logreg", "knn", "cluster")


def _positive(owner: object, *names: str) -> None:
    for name in names:
        value = getattr(owner, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{type(owner).__name__}.{name} must be a positive integer, got {value!r}")


def _fraction(owner: object, name: str, *, open_low: bool = True) -> None:
    value = getattr(owner, name)
    if not isinstance(value, (int, float)) or not (0.0 < value < 1.0 if open_low else 0.0 <= value < 1.0):
        raise ConfigError(f"{type(owner).__name__}.{name} must be a fraction in (0, 1), got {value!r}")


@dataclass(frozen=True)
class DataConfig:
    """Where the faces are. ``None`` directories are searched for (see ``faceleaks.data.lfw``).

    ``verification_folds``: how many of the 10 folds of LFW's ``pairs.txt`` measure the teacher.
    """

    lfw_dir: str | None = None
    utkface_dir: str | None = None
    download: bool = True
    max_images_per_identity: int = 40
    verification_folds: int = 10

    def __post_init__(self) -> None:
        _positive(self, "max_images_per_identity", "verification_folds")
        if self.verification_folds > 10 or self.verification_folds < 2:
            raise ConfigError(f"DataConfig.verification_folds must be 2..10, got {self.verification_folds}")


@dataclass(frozen=True)
class SplitConfig:
    """Identity-disjoint roles (counts of identities; photo fractions are fractions in (0, 1)).

    Members, non-members and attacker references come from identities with at least
    ``min_images_membership`` photos; the students' LFW identities from identities with
    ``min_images_student`` up to ``min_images_membership - 1`` photos.
    """

    min_images_membership: int = 10
    n_members: int = 50
    n_nonmembers: int = 50
    n_reference: int = 58
    member_train_fraction: float = 0.5
    min_images_student: int = 5
    n_student_identities: int = 40
    n_shadow_student_identities: int = 40
    student_test_fraction: float = 0.3
    n_utkface_train: int = 1500
    n_utkface_test: int = 500

    def __post_init__(self) -> None:
        _positive(self, "min_images_membership", "n_members", "n_nonmembers", "min_images_student",
                  "n_student_identities", "n_shadow_student_identities", "n_utkface_train",
                  "n_utkface_test")
        if self.n_reference < 4:
            raise ConfigError(f"SplitConfig.n_reference must be >= 4 (half train the shadow teacher), got {self.n_reference}")
        if self.min_images_student >= self.min_images_membership:
            raise ConfigError("SplitConfig.min_images_student must be below min_images_membership")
        _fraction(self, "member_train_fraction")
        _fraction(self, "student_test_fraction")


@dataclass(frozen=True)
class TeacherConfig:
    """The face-recognition teacher; ``kind`` is one of ``TEACHER_KINDS``.

    - ``dlib`` (default): dlib's public face ResNet with its last ``unfreeze_last_n`` stages and a
      new head fine-tuned on the members (``finetune_*``); 150x150 dlib chips.
    - ``scratch``: a small CNN trained from scratch on ``image_size`` crops (``epochs``,
      ``learning_rate``); fast, and the teacher-quality ablation.
    - ``dlib-base``: dlib's model unmodified, the negative control (no LFW identity is a member).

    ``control`` is the negative-control teacher of a ``dlib`` run, a teacher that saw none of the
    evaluated identities: ``base`` (default) is dlib's model unmodified; ``finetuned`` is dlib
    fine-tuned with the same recipe on as many other LFW people (split role ``control_member``),
    the null that is on the same distribution as the attacker's fine-tuned shadow teachers
    [reconstructed]. ``scratch`` runs always use the attacker's shadow teacher.
    """

    kind: str = "dlib"
    image_size: int = 64
    epochs: int = 30
    learning_rate: float = 2e-3
    batch_size: int = 64
    weight_decay: float = 5e-4
    embedding_dim: int = 128
    unfreeze_last_n: int = 2
    finetune_epochs: int = 20
    finetune_learning_rate: float = 3e-4
    control: str = "base"

    def __post_init__(self) -> None:
        if self.kind not in TEACHER_KINDS:
            raise ConfigError(f"unknown teacher kind {self.kind!r}; choose one of {TEACHER_KINDS}")
        if self.control not in CONTROL_KINDS:
            raise ConfigError(f"unknown control teacher {self.control!r}; choose one of {CONTROL_KINDS}")
        if self.control == "finetuned" and self.kind != "dlib":
            raise ConfigError(f"a fine-tuned control (--control finetuned) needs the dlib teacher, not {self.kind!r}")
        _positive(self, "image_size", "epochs", "batch_size", "embedding_dim", "unfreeze_last_n", "finetune_epochs")

    @property
    def input_size(self) -> int:
        """Side of the crops the teacher takes, pixels (150 for dlib chips)."""
        return self.image_size if self.kind == "scratch" else 150


@dataclass(frozen=True)
class StudentConfig:
    """Students: a new softmax head on the frozen teacher embedding, trained on cached embeddings."""

    epochs: int = 200
    learning_rate: float = 0.05
    weight_decay: float = 1e-4
    age_bins: tuple[int, ...] = (20, 40, 60)

    def __post_init__(self) -> None:
        _positive(self, "epochs")
        if list(self.age_bins) != sorted(set(self.age_bins)) or not self.age_bins:
            raise ConfigError(f"StudentConfig.age_bins must be increasing ages, got {self.age_bins}")


@dataclass(frozen=True)
class AttackConfig:
    """What the attacker sees and how results are summarised.

    ``output`` is what the student API returns (``posterior``, ``topk`` or ``label``); ``ks`` are the
    numbers of photos per identity; ``fprs`` are fractions at which TPR is reported; ``transport``
    is ``local`` (in-process) or ``http`` (each student served by uvicorn on 127.0.0.1 and queried
    over HTTP with httpx, as a deployed API would be); ``n_shadow_teachers`` > 0 adds the
    identity-level LiRA and shadow-combination attacks with that many shadow teachers per setting
    (dlib teachers only; 0 turns them off; otherwise at least 3, ``ConfigError`` below).
    """

    ks: tuple[int, ...] = (1, 2, 5, 10)
    output: str = "posterior"
    top_k: int = 3
    shadow: bool = True
    n_instance_max: int = 1000
    instance_photos_per_identity: int = 5
    n_bootstrap: int = 1000
    fprs: tuple[float, ...] = (0.1, 0.01, 0.001)
    transport: str = "local"
    n_shadow_teachers: int = 8

    def __post_init__(self) -> None:
        if not isinstance(self.n_shadow_teachers, int) or self.n_shadow_teachers < 0 or 0 < self.n_shadow_teachers < 3:
            raise ConfigError(f"shadow teachers (--shadows, AttackConfig.n_shadow_teachers) must be 0 (off) or >= 3 "
                              f"(the shadow combination leaves one out in turn; LiRA wants >= 8), got {self.n_shadow_teachers}")
        if self.transport not in ("local", "http"):
            raise ConfigError(f"unknown transport {self.transport!r}; choose local or http")
        if not self.ks or any(not isinstance(k, int) or k < 1 for k in self.ks):
            raise ConfigError(f"AttackConfig.ks must be positive integers, got {self.ks}")
        if self.output not in OUTPUT_KINDS:
            raise ConfigError(f"unknown output {self.output!r}; choose one of {OUTPUT_KINDS}")
        _positive(self, "top_k", "n_instance_max", "n_bootstrap", "instance_photos_per_identity")
        for f in self.fprs:
            if not 0.0 < f < 1.0:
                raise ConfigError(f"AttackConfig.fprs must be fractions in (0, 1), got {f}")


def _positive_ints(owner: str, name: str, values) -> None:
    if not values or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in values):
        raise ConfigError(f"{owner}.{name} must be positive integers, got {values!r}")


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
    attacks: tuple[str, ...] = ATTRIBUTE_ATTACKS
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
        if not self.attacks or set(self.attacks) - set(ATTRIBUTE_ATTACKS) or len(set(self.attacks)) != len(self.attacks):
            raise ConfigError(f"{name}.attacks must be distinct names among {ATTRIBUTE_ATTACKS}, got {self.attacks!r}")
        _positive_ints(name, "budgets", [b for b in self.budgets if b != "all"] or ([1] if self.budgets else []))
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
            _positive_ints(name, field_name, value if isinstance(value, tuple) else [value])

    @property
    def max_numeric_budget(self) -> int:
        """The largest integer budget (0 if only ``all``)."""
        return max([b for b in self.budgets if b != "all"], default=0)


@dataclass(frozen=True)
class RuntimeConfig:
    """Threads, cache folder (``None``: ``$FACELEAKS_CACHE_DIR`` or ``~/.cache/faceleaks``), progress bars,
    and how independent tasks (shadow teachers) run: ``executor`` is ``serial``, ``process`` (local
    processes, ``workers`` at a time, one torch thread each) or ``ray`` (``ray_address`` or
    ``$RAY_ADDRESS``, else a local Ray with ``workers`` CPUs; needs ``pip install 'faceleaks[ray]'``).
    """

    threads: int = 2
    cache_dir: str | None = None
    progress: bool = True
    executor: str = "process"
    workers: int = 2
    ray_address: str | None = None

    def __post_init__(self) -> None:
        _positive(self, "threads", "workers")
        if self.executor not in ("serial", "process", "ray"):
            raise ConfigError(f"RuntimeConfig.executor must be serial, process or ray, got {self.executor!r}")


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

    def __post_init__(self) -> None:
        kmax = max(self.attack.ks)
        if 2 * kmax > self.data.max_images_per_identity:
            raise ConfigError(f"k={kmax} (attack.ks / --k) cannot be evaluated: a member needs k training and k "
                              f"unseen photos, and data.max_images_per_identity={self.data.max_images_per_identity} "
                              f"caps photos per person; use k <= {self.data.max_images_per_identity // 2}")

    def to_dict(self) -> dict[str, Any]:
        """All settings as nested plain dicts (for results.json)."""
        return dataclasses.asdict(self)


_SECTIONS = {
    "data": DataConfig,
    "split": SplitConfig,
    "teacher": TeacherConfig,
    "student": StudentConfig,
    "attack": AttackConfig,
    "attributes": AttributeConfig,
    "runtime": RuntimeConfig,
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
                      "n_utkface_train": 300, "n_utkface_test": 100},
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
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"cannot read config file {path}: {err}") from err
    return config_from_dict(values, base)
