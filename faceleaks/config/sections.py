"""The sections of a run's settings that hold the world: data, split, teacher, students, runtime.

Each is a frozen dataclass validated once in ``__post_init__`` (``ConfigError`` naming the field,
the value and what is allowed).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from faceleaks.config.checks import fraction, positive, positive_ints, rates
from faceleaks.config.privacy import PrivacyConfig, as_privacy, check_teacher_privacy
from faceleaks.errors import ConfigError

__all__ = ["DataConfig", "SplitConfig", "TeacherConfig", "TeacherRecipe", "StudentConfig", "RuntimeConfig",
           "TEACHER_KINDS", "CONTROL_KINDS", "OUTPUT_KINDS", "RECIPES", "RECIPE_OVERRIDES", "TRAIN_PHOTOS", "positive", "positive_ints"]

TEACHER_KINDS = ("dlib", "scratch", "dlib-base")
CONTROL_KINDS = ("base", "finetuned")
OUTPUT_KINDS = ("posterior", "topk", "label")
#: Which of a member's photos the teacher trains on: ``half`` (the split's training part,
#: ``SplitConfig.member_train_fraction``; the rest are its unseen photos) or ``all``.
TRAIN_PHOTOS = ("half", "all")
_SCHEDULES = ("cosine", "constant")  # as ``faceleaks.models.training.SCHEDULES`` (config stays torch-free)


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
    ``min_images_student`` up to ``min_images_membership - 1`` photos. The attacker's reference
    pool (``n_reference_pool`` photos, at most ``pool_photos_per_person`` per person) comes from
    people with fewer than ``min_images_student`` photos, whom no role uses: many known non-members,
    for the base-model surrogate [reconstructed]; 0 turns it off.
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
    n_reference_pool: int = 4000
    pool_photos_per_person: int = 2

    def __post_init__(self) -> None:
        if self.n_reference_pool:  # 0 turns the pool off
            positive(self, "n_reference_pool")
        positive(self, "pool_photos_per_person", "min_images_membership", "n_members", "n_nonmembers", "min_images_student",
                  "n_student_identities", "n_shadow_student_identities", "n_utkface_train",
                  "n_utkface_test")
        if self.n_reference < 4:
            raise ConfigError(f"SplitConfig.n_reference must be >= 4 (half train the shadow teacher), got {self.n_reference}")
        if self.min_images_student >= self.min_images_membership:
            raise ConfigError("SplitConfig.min_images_student must be below min_images_membership")
        fraction(self, "member_train_fraction")
        fraction(self, "student_test_fraction")


@dataclass(frozen=True)
class TeacherRecipe:
    """How the owner fine-tunes its teacher (resolved: every value set).

    Parameters
    ----------
    name : the recipe's name (``regularised``, ``light``)
    schedule : {"cosine", "constant"}, learning-rate schedule over the epochs
    learning_rate : Adam's (initial) learning rate
    epochs : passes over the training photos, positive
    weight_decay : Adam's L2 weight decay, >= 0
    photos : {"half", "all"}, which of each member's photos train (see ``TRAIN_PHOTOS``)

    Notes
    -----
    ``regularised`` (cosine from 3e-4, weight decay 5e-4, 20 epochs, the members' training half) is
    the default and the teacher of every earlier run; ``light`` (constant 1e-4, 10 epochs, no weight
    decay, all photos) is a light fine-tune that leaks more. Both are realistic owners' choices: the
    recipe belongs to the victim being measured, not to the attack [reconstructed].
    """

    name: str
    schedule: str
    learning_rate: float
    epochs: int
    weight_decay: float
    photos: str

    @property
    def has_unseen_photos(self) -> bool:
        """Whether members keep held-out (unseen) photos, i.e. ``photos == "half"``."""
        return self.photos == "half"


#: The named recipes ``TeacherConfig.recipe`` chooses from.
RECIPES = {
    "regularised": TeacherRecipe("regularised", "cosine", 3e-4, 20, 5e-4, "half"),
    "light": TeacherRecipe("light", "constant", 1e-4, 10, 0.0, "all"),
}
#: ``TeacherConfig`` fields that override one value of the named recipe (``None``: the recipe's).
RECIPE_OVERRIDES = {"finetune_schedule": "schedule", "finetune_learning_rate": "learning_rate",
                    "finetune_epochs": "epochs", "finetune_weight_decay": "weight_decay",
                    "train_photos": "photos"}


@dataclass(frozen=True)
class TeacherConfig:
    """The face-recognition teacher; ``kind`` is one of ``TEACHER_KINDS``.

    - ``dlib`` (default): dlib's public face ResNet with its last ``unfreeze_last_n`` stages and a
      new head fine-tuned on the members with the victim ``recipe``; 150x150 dlib chips
      (``unfreeze_last_n = 0``: only the head is trained and the embedding students see is dlib's).
    - ``scratch``: a small CNN trained from scratch on ``image_size`` crops (``epochs``,
      ``learning_rate``, ``weight_decay``, cosine schedule); fast, and the teacher-quality ablation.
    - ``dlib-base``: dlib's model unmodified, the negative control (no LFW identity is a member).

    ``recipe`` names the owner's fine-tuning recipe (``RECIPES``: ``regularised``, the default, or
    ``light``); ``finetune_schedule``, ``finetune_learning_rate``, ``finetune_epochs``,
    ``finetune_weight_decay`` and ``train_photos`` override one of its values each (``None``: the
    recipe's). ``resolved_recipe`` gives the values used; ``to_dict`` records them. The schedule,
    learning rate, epochs and weight decay are the dlib fine-tune's (a ``scratch`` teacher has its
    own); ``train_photos`` applies to every kind. The attacker's shadow teachers use the same recipe.

    ``control`` is the negative-control teacher of a ``dlib`` run, a teacher that saw none of the
    evaluated identities: ``base`` (default) is dlib's model unmodified; ``finetuned`` is dlib
    fine-tuned with the same recipe on as many other LFW people (split role ``control_member``),
    the null that is on the same distribution as the attacker's fine-tuned shadow teachers
    [reconstructed]. ``scratch`` runs always use the attacker's shadow teacher.

    Raises
    ------
    ConfigError
        An unknown kind, control, recipe, schedule or ``train_photos``; a non-positive count or
        learning rate; a negative weight decay.

    Examples
    --------
    >>> TeacherConfig(recipe="light").resolved_recipe
    TeacherRecipe(name='light', schedule='constant', learning_rate=0.0001, epochs=10, weight_decay=0.0, photos='all')
    >>> TeacherConfig(finetune_epochs=5).resolved_recipe.epochs
    5
    """

    kind: str = "dlib"
    image_size: int = 64
    epochs: int = 30
    learning_rate: float = 2e-3
    batch_size: int = 64
    weight_decay: float = 5e-4
    embedding_dim: int = 128
    unfreeze_last_n: int = 2
    recipe: str = "regularised"
    finetune_schedule: str | None = None
    finetune_learning_rate: float | None = None
    finetune_epochs: int | None = None
    finetune_weight_decay: float | None = None
    train_photos: str | None = None
    control: str = "base"
    privacy: PrivacyConfig = PrivacyConfig()  # training defences (faceleaks.config.privacy)

    def __post_init__(self) -> None:
        object.__setattr__(self, "privacy", as_privacy(self.privacy))  # a TOML table gives a dict
        check_teacher_privacy(self.kind, self.privacy)
        if self.kind not in TEACHER_KINDS:
            raise ConfigError(f"unknown teacher kind {self.kind!r}; choose one of {TEACHER_KINDS}")
        if self.control not in CONTROL_KINDS:
            raise ConfigError(f"unknown control teacher {self.control!r}; choose one of {CONTROL_KINDS}")
        if self.control == "finetuned" and self.kind != "dlib":
            raise ConfigError(f"a fine-tuned control (--control finetuned) needs the dlib teacher, not {self.kind!r}")
        positive(self, "image_size", "epochs", "batch_size", "embedding_dim")
        if not isinstance(self.unfreeze_last_n, int) or isinstance(self.unfreeze_last_n, bool) or self.unfreeze_last_n < 0:
            raise ConfigError(f"TeacherConfig.unfreeze_last_n must be an integer >= 0 (0: only the head is trained, "
                              f"the embedding stays dlib's), got {self.unfreeze_last_n!r}")
        self._check_recipe()

    def _check_recipe(self) -> None:
        if self.recipe not in RECIPES:
            raise ConfigError(f"unknown teacher recipe {self.recipe!r}; choose one of {tuple(RECIPES)}")
        for name, allowed in (("finetune_schedule", _SCHEDULES), ("train_photos", TRAIN_PHOTOS)):
            if getattr(self, name) not in (None, *allowed):
                raise ConfigError(f"TeacherConfig.{name} must be one of {allowed} (or unset for the recipe's), "
                                  f"got {getattr(self, name)!r}")
        if self.finetune_epochs is not None:
            positive(self, "finetune_epochs")
        rates(self, "learning_rate", "weight_decay", "finetune_learning_rate", "finetune_weight_decay",
              zero_ok=("weight_decay", "finetune_weight_decay"))

    @property
    def resolved_recipe(self) -> TeacherRecipe:
        """The named recipe with the explicit overrides applied (what training uses)."""
        base = RECIPES[self.recipe]
        changes = {field: getattr(self, name) for name, field in RECIPE_OVERRIDES.items()
                   if getattr(self, name) is not None}
        changes = {k: float(v) if k in ("learning_rate", "weight_decay") else v for k, v in changes.items()}
        return replace(base, **changes)

    def recipe_name(self, role: str) -> str:
        """The recipe of the teacher playing ``role`` ("victim" or "control"), as results rows name it.

        ``base`` for dlib's unmodified model (a ``dlib-base`` teacher, or the control of a ``dlib`` run
        with ``control = "base"``); otherwise this config's ``recipe`` (a fine-tuned control and the
        ``scratch`` control, the attacker's shadow teacher, are trained with the victim's recipe).
        """
        if self.kind == "dlib-base" or (role == "control" and self.kind == "dlib" and self.control == "base"):
            return "base"
        return self.recipe

    def to_dict(self) -> dict:
        """All fields as a plain dict with the recipe overrides resolved (as ``results.json`` records them)."""
        out = asdict(self)
        resolved = asdict(self.resolved_recipe)
        out.update({name: resolved[field] for name, field in RECIPE_OVERRIDES.items()})
        return out

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
        rates(self, "learning_rate", "weight_decay", zero_ok=("weight_decay",))
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
