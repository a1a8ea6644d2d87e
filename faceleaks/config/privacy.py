"""The teacher's training defences: DP-SGD (photo- or identity-level) and label smoothing.

``PrivacyConfig`` is ``TeacherConfig.privacy``; it is torch-free (the training side is
``faceleaks.models.privacy``). The default (no DP, no label smoothing) is today's recipe and
leaves every teacher's cache key unchanged; any other value adds ``PrivacyConfig.key_parts()``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any

from faceleaks.config.checks import number_in, positive
from faceleaks.errors import ConfigError

__all__ = ["PrivacyConfig", "PRIVACY_MODES", "HEAD_INITS", "as_privacy", "check_teacher_privacy"]

#: Units of privacy: ``none`` (plain training), ``photo`` (Opacus DP-SGD, one photo), ``identity``
#: (one person with all their photos; our glue on Opacus, see ``faceleaks.models.identity_dp``).
PRIVACY_MODES = ("none", "photo", "identity")
#: How the teacher's cosine head starts under DP: ``random`` unit vectors (no private data, no budget)
#: or ``noisy-means`` (class sums of base descriptors through the Gaussian mechanism, charged to the budget).
HEAD_INITS = ("random", "noisy-means")


@dataclass(frozen=True)
class PrivacyConfig:
    """How the teacher's fine-tuned part is trained privately (``TeacherConfig.privacy``).

    Parameters
    ----------
    mode : {"none", "photo", "identity"}
        The unit of privacy. ``photo``: DP-SGD with Opacus (Poisson sampling of photos, per-photo
        clipping). ``identity``: identities are Poisson-sampled and each sampled identity's summed
        gradient is clipped (``faceleaks.models.identity_dp``) [reconstructed: Opacus has no
        user-level DP].
    noise_multiplier : float, optional
        Gaussian noise standard deviation over the L2 clipping norm (sigma / C). Exactly one of
        ``noise_multiplier`` and ``target_epsilon`` when ``mode`` is not ``none``.
    target_epsilon : float, optional
        The epsilon (at ``delta``) to reach at the end of training; the noise multiplier is then
        found by bisection on Opacus's RDP accountant (the head's release included).
    delta : float
        The delta of the reported (epsilon, delta); default 1e-5.
    max_grad_norm : float
        The L2 clipping norm C of one photo's (``photo``) or one identity's (``identity``) gradient.
    sample_rate : float, optional
        Poisson sampling rate q in (0, 1] of photos (``photo``; default ``batch_size / n_photos``)
        or of identities (``identity``; default 0.25).
    photos_per_identity : int, optional
        ``identity`` only: at most this many (randomly chosen) photos of a sampled identity per
        step (None: all). It bounds compute, not privacy: the identity's summed gradient is clipped.
    head_init : {"random", "noisy-means"}
        Under DP the head may not be imprinted from member photos (that would bypass the
        guarantee): ``random`` unit vectors, or ``noisy-means``, class sums of unit base descriptors
        plus Gaussian noise (``head_noise_multiplier``), charged to the accountant.
    head_noise_multiplier : float
        Noise of ``noisy-means`` over its L2 sensitivity (1: one photo, or one identity's clipped sum).
    label_smoothing : float in [0, 1)
        Cross-entropy label smoothing (with or without DP). Caveat: label smoothing makes face
        classifiers *more* open to model inversion (Struppek et al., ICLR 2024, arXiv 2310.06549
        [paper, as the issue cites it]); it is a membership defence to be weighed against that.

    Raises
    ------
    ConfigError
        Unknown mode or head init; DP without exactly one of noise multiplier / target epsilon;
        a DP value with ``mode="none"``; a value out of its range.

    Examples
    --------
    >>> PrivacyConfig().is_default, PrivacyConfig(mode="photo", noise_multiplier=1.0).is_private
    (True, True)
    """

    mode: str = "none"
    noise_multiplier: float | None = None
    target_epsilon: float | None = None
    delta: float = 1e-5
    max_grad_norm: float = 1.0
    sample_rate: float | None = None
    photos_per_identity: int | None = None
    head_init: str = "random"
    head_noise_multiplier: float = 4.0
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        if self.mode not in PRIVACY_MODES:
            raise ConfigError(f"unknown privacy mode {self.mode!r}; choose one of {PRIVACY_MODES}")
        if self.head_init not in HEAD_INITS:
            raise ConfigError(f"unknown PrivacyConfig.head_init {self.head_init!r}; choose one of {HEAD_INITS}")
        given = [n for n in ("noise_multiplier", "target_epsilon") if getattr(self, n) is not None]
        if self.is_private and len(given) != 1:
            raise ConfigError(f"privacy mode {self.mode!r} needs exactly one of noise_multiplier or target_epsilon, "
                              f"got {given or 'neither'}")
        if not self.is_private and (given or self.sample_rate is not None):
            raise ConfigError(f"PrivacyConfig sets {given or ['sample_rate']} but mode is 'none'; "
                              "set mode = 'photo' or 'identity'")
        for name in given:
            number_in(self, name, 0.0)
        number_in(self, "delta", 0.0, 1.0)
        number_in(self, "max_grad_norm", 0.0)
        number_in(self, "head_noise_multiplier", 0.0)
        number_in(self, "label_smoothing", 0.0, 1.0, low_ok=True)
        if self.sample_rate is not None:
            number_in(self, "sample_rate", 0.0, 1.0, high_ok=True)
        if self.photos_per_identity is not None:
            if self.mode != "identity":
                raise ConfigError(f"PrivacyConfig.photos_per_identity is set but mode is {self.mode!r}; "
                                  "set mode = 'identity' or remove it")
            positive(self, "photos_per_identity")

    @property
    def is_private(self) -> bool:
        """Whether DP-SGD is on (``mode`` is ``photo`` or ``identity``)."""
        return self.mode != "none"

    @property
    def is_default(self) -> bool:
        """Whether this is today's recipe (no DP, no label smoothing)."""
        return self == PrivacyConfig()

    def key_parts(self) -> list[str]:
        """Teacher cache-key parts: none for the default, else one canonical JSON of every field."""
        return [] if self.is_default else [f"privacy:{json.dumps(asdict(self), sort_keys=True)}"]

    @property
    def tag(self) -> str:
        """A short name of the setting, e.g. ``dp-photo-sigma1.0`` or ``ls0.1`` (training-hook tag)."""
        parts = []
        if self.is_private:
            level = f"sigma{self.noise_multiplier}" if self.noise_multiplier is not None else f"eps{self.target_epsilon}"
            parts.append(f"dp-{self.mode}-{level}")
        if self.label_smoothing:
            parts.append(f"ls{self.label_smoothing}")
        return "+".join(parts) or "none"


def as_privacy(value: Any) -> PrivacyConfig:
    """``value`` as a ``PrivacyConfig``: itself, or built from a table (dict) of settings as TOML gives them.

    Raises
    ------
    ConfigError
        Not a table, an unknown key, or a bad value.
    """
    if isinstance(value, PrivacyConfig):
        return value
    if not isinstance(value, dict):
        raise ConfigError(f"[teacher.privacy] must be a table of settings, got {value!r}")
    known = {f.name for f in fields(PrivacyConfig)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise ConfigError(f"unknown setting(s) {unknown} in [teacher.privacy]; known: {sorted(known)}")
    try:
        return PrivacyConfig(**value)
    except TypeError as err:
        raise ConfigError(f"bad value in [teacher.privacy]: {err}") from err


def check_teacher_privacy(kind: str, privacy: PrivacyConfig) -> None:
    """``ConfigError`` unless the training defences ``privacy`` apply to a teacher of ``kind`` (dlib only)."""
    if not privacy.is_default and kind != "dlib":
        raise ConfigError(f"training defences (teacher.privacy: {privacy.tag}) need the dlib teacher, not {kind!r}; "
                          "set teacher.kind = 'dlib' or leave teacher.privacy unset")
