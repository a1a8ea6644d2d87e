"""The sections of a run's settings that hold the world: data, split, teacher, students, runtime.

Each is a frozen dataclass validated once in ``__post_init__`` (``ConfigError`` naming the field,
the value and what is allowed).
"""

from __future__ import annotations

from dataclasses import dataclass

from faceleaks.errors import ConfigError

__all__ = ["DataConfig", "SplitConfig", "TeacherConfig", "StudentConfig", "RuntimeConfig", "TEACHER_KINDS",
           "CONTROL_KINDS", "OUTPUT_KINDS", "positive", "positive_ints"]

TEACHER_KINDS = ("dlib", "scratch", "dlib-base")
CONTROL_KINDS = ("base", "finetuned")
OUTPUT_KINDS = ("posterior", "topk", "label")


def positive(owner: object, *names: str) -> None:
    """``ConfigError`` unless each named field of ``owner`` is a positive integer."""
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
        positive(self, "max_images_per_identity", "verification_folds")
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
        positive(self, "min_images_membership", "n_members", "n_nonmembers", "min_images_student",
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
        positive(self, "image_size", "epochs", "batch_size", "embedding_dim", "unfreeze_last_n", "finetune_epochs")

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
        positive(self, "epochs")
        if list(self.age_bins) != sorted(set(self.age_bins)) or not self.age_bins:
            raise ConfigError(f"StudentConfig.age_bins must be increasing ages, got {self.age_bins}")




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
        positive(self, "threads", "workers")
        if self.executor not in ("serial", "process", "ray"):
            raise ConfigError(f"RuntimeConfig.executor must be serial, process or ray, got {self.executor!r}")




def positive_ints(owner: str, name: str, values) -> None:
    """``ConfigError`` unless ``values`` is a non-empty sequence of positive integers."""
    if not values or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in values):
        raise ConfigError(f"{owner}.{name} must be positive integers, got {values!r}")

