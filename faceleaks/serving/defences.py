"""Output defences: BlackBox -> BlackBox wrappers the owner puts in front of a student.

Each keeps the box it defends owner-side (``serving.endpoints.WrappingBox``), declares the output
kind it returns (``output_kind``) and the largest deviation of a row sum from 1 that its answers
can show (``row_sum_tolerance``, probability units), and refuses bad parameters with
``ConfigError``:

- ``RoundingBlackBox``: posteriors rounded to ``decimals`` places (tolerance n_classes * 0.5 * 10^-d);
- ``TopKBlackBox`` / ``LabelOnlyBlackBox`` (``serving.perturb``): top-k, renormalised or not, and
  the label only;
- ``NoiseBlackBox``: Gaussian or Laplace noise in probability space, clipped at 0 and renormalised
  (a row whose mass all vanished falls back to the clean row), so every answer is a valid
  distribution (no NaN, no negative, rows sum to 1 within 1e-9). Noise is fresh on every query
  (from the box's seeded generator) or, with ``same_noise_per_image``, the same for the same image:
  drawn from a generator seeded by HMAC-SHA256 of the image bytes under the owner's secret (noise
  seeded by the image alone could be recomputed and subtracted by anyone holding this tool).

``apply_output_defence(box, spec)`` builds one from an ``OutputDefenceSpec`` (the registry every
deployment uses: the in-run path and ``faceleaks serve``). [reconstructed: MemGuard-style
post-processing is what label-only attacks undo; see Choquette-Choo et al. 2021, arXiv 2007.14321,
Sec. 5, and Aerni et al. 2024, arXiv 2404.17399, on adaptive evaluation.]
"""

from __future__ import annotations

import hashlib
import hmac
import math

import numpy as np

from faceleaks.config.defence import OutputDefenceSpec
from faceleaks.errors import ConfigError, QueryError, UnsupportedOutputError
from faceleaks.seeding import make_rng
from faceleaks.serving.endpoints import WrappingBox
from faceleaks.serving.perturb import LabelOnlyBlackBox, TopKBlackBox
from faceleaks.serving.protocol import BlackBox, OutputKind, QueryResult

__all__ = ["RoundingBlackBox", "NoiseBlackBox", "apply_output_defence", "NOISE_ROW_SUM_TOLERANCE", "image_seed"]

NOISE_ROW_SUM_TOLERANCE = 1e-9


def _posterior_box(box: BlackBox, what: str, kinds=(OutputKind.POSTERIOR,)) -> None:
    if box.output_kind not in kinds:
        raise UnsupportedOutputError(f"{what} needs a {' or '.join(k.value for k in kinds)} box, got a "
                                     f"{box.output_kind.value} box; apply it to the student's posterior box")


def _number(value, name: str, *, low: float, integer: bool = False) -> float:
    bad = isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int))
    if bad or not math.isfinite(value) or value < low:
        kind = "an integer" if integer else "a finite number"
        raise ConfigError(f"{name} must be {kind} >= {low}, got {value!r}")
    return value


class RoundingBlackBox(WrappingBox):
    """Posteriors (or top-k rows) rounded to ``decimals`` decimal places, float64.

    Parameters
    ----------
    box : BlackBox of kind POSTERIOR or TOPK
    decimals : int >= 0, d
    n_classes : int, optional; the box's classes (else learnt from its first answer)

    Raises
    ------
    ConfigError
        ``decimals`` < 0 or not an integer.
    UnsupportedOutputError
        A label box.
    """

    def __init__(self, box: BlackBox, *, decimals: int, n_classes: int | None = None) -> None:
        _posterior_box(box, "rounding", (OutputKind.POSTERIOR, OutputKind.TOPK))
        self.decimals = int(_number(decimals, "rounding decimals d", low=0, integer=True))
        super().__init__(box)
        self._n_classes = n_classes

    @property
    def row_sum_tolerance_per_class(self) -> float:
        """0.5 * 10^-d per class: each entry moves by at most half a unit of the last place, so a row of
        n_classes entries sums to 1 within n_classes * 0.5 * 10^-d (read by the contract per answer)."""
        return 0.5 * 10.0 ** -self.decimals

    @property
    def row_sum_tolerance_offset(self) -> float:
        """How far the inner box's rows may already stray from 1 (its contract's tolerance), added once."""
        return self._inner.tolerance

    @property
    def row_sum_tolerance(self) -> float:
        """n_classes * 0.5 * 10^-d, for reports; ``QueryError`` while n_classes is unknown (not given
        and nothing answered yet). The contract reads ``row_sum_tolerance_per_class`` instead."""
        if self._n_classes is None:
            raise QueryError("the rounding tolerance needs n_classes: pass n_classes or query the box once")
        return self._n_classes * self.row_sum_tolerance_per_class

    def query(self, images: np.ndarray) -> QueryResult:
        """(n_queries, n_classes) float64, each entry rounded to d decimals (a multiple of 10^-d)."""
        p = np.asarray(self._ask(images).values, dtype=np.float64)
        self._n_classes = p.shape[1]
        return QueryResult(self.output_kind, np.round(p, self.decimals))


def image_seed(secret: bytes, image: np.ndarray) -> int:
    """128-bit seed: HMAC-SHA256 of the image's shape and bytes under ``secret``.

    Examples
    --------
    >>> a = image_seed(b"k", np.zeros((2, 2, 3), np.uint8))
    >>> a == image_seed(b"k", np.zeros((2, 2, 3), np.uint8)), a == image_seed(b"other", np.zeros((2, 2, 3), np.uint8))
    (True, False)
    """
    msg = repr(image.shape).encode() + np.ascontiguousarray(image).tobytes()
    return int.from_bytes(hmac.new(secret, msg, hashlib.sha256).digest()[:16], "little")


def _secret(secret: bytes | str | None) -> bytes:
    if secret is None or len(secret) == 0:
        raise ConfigError("same_noise_per_image needs the owner's secret (secret=...): noise seeded by the image "
                          "alone can be recomputed and cancelled by anyone holding this tool")
    return secret.encode() if isinstance(secret, str) else bytes(secret)


class NoiseBlackBox(WrappingBox):
    """Posteriors plus Gaussian or Laplace noise, kept a valid distribution, float64.

    Parameters
    ----------
    box : BlackBox of kind POSTERIOR
    scale : float >= 0, probability units: the Gaussian's sigma or the Laplace's scale b
    distribution : {"gaussian", "laplace"}
    same_noise_per_image : bool; True draws each image's noise from HMAC-SHA256(secret, image)
    secret : bytes or str, the owner's server secret (required with ``same_noise_per_image``)
    seed : int or Generator, the fresh-noise generator (ignored with ``same_noise_per_image``)

    Raises
    ------
    ConfigError
        Negative or non-finite scale, unknown distribution, a missing secret.
    UnsupportedOutputError
        A box that does not return full posteriors.

    Notes
    -----
    Per row: q = max(p + noise, 0); answer q / sum(q), or the clean p / sum(p) if sum(q) is 0.
    """

    def __init__(self, box: BlackBox, *, scale: float, distribution: str = "gaussian",
                 same_noise_per_image: bool = False, secret: bytes | str | None = None,
                 seed: int | np.random.Generator = 0) -> None:
        _posterior_box(box, f"{distribution} noise")
        if distribution not in ("gaussian", "laplace"):
            raise ConfigError(f"unknown noise distribution {distribution!r}; choose gaussian or laplace")
        self.scale = float(_number(scale, f"{distribution} noise scale", low=0.0))
        self.distribution = distribution
        self.same_noise_per_image = bool(same_noise_per_image)
        self._secret = _secret(secret) if self.same_noise_per_image else b""
        self._rng = make_rng(seed)
        super().__init__(box)

    row_sum_tolerance = NOISE_ROW_SUM_TOLERANCE
    row_sum_tolerance_per_class = 0.0

    def _draw(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        if self.distribution == "gaussian":
            return rng.normal(0.0, self.scale, shape)
        return rng.laplace(0.0, self.scale, shape)

    def _noise(self, images: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        if not self.same_noise_per_image:
            return self._draw(self._rng, shape)
        return np.stack([self._draw(np.random.default_rng(image_seed(self._secret, im)), shape[1:])
                         for im in images]) if len(images) else np.zeros(shape)

    def query(self, images: np.ndarray) -> QueryResult:
        """(n_queries, n_classes) float64 rows: non-negative, finite, summing to 1 within 1e-9."""
        p = np.asarray(self._ask(images).values, dtype=np.float64)
        return QueryResult(OutputKind.POSTERIOR, valid_rows(p, p + self._noise(np.asarray(images), p.shape)))


def valid_rows(clean: np.ndarray, noisy: np.ndarray) -> np.ndarray:
    """(n, c) float64: ``noisy`` clipped at 0 and renormalised; rows with no mass left are ``clean``'s.

    Examples
    --------
    >>> valid_rows(np.array([[0.5, 0.5]]), np.array([[-1.0, -2.0]])).tolist()
    [[0.5, 0.5]]
    """
    q = np.where(np.isfinite(noisy), np.maximum(noisy, 0.0), 0.0)
    s = q.sum(axis=1, keepdims=True)
    dead = ~(s > 0)
    clean = np.maximum(clean, 0.0)
    q = np.where(dead, clean, q)
    return q / q.sum(axis=1, keepdims=True)


def apply_output_defence(box: BlackBox, spec: OutputDefenceSpec, *, secret: bytes | str | None = None,
                         n_classes: int | None = None) -> BlackBox:
    """``box`` behind the output defence ``spec`` (``none`` returns ``box`` itself).

    Parameters
    ----------
    box : BlackBox, the student's posterior box
    spec : OutputDefenceSpec; names and parameters in ``faceleaks.config.defence.OUTPUT_DEFENCES``
    secret : the owner's server secret, for noise with ``same_noise_per_image``
    n_classes : the student's classes (rounding declares its tolerance from it)

    Raises
    ------
    ConfigError
        A bad parameter (d < 0, k < 1, negative noise, a missing secret).
    """
    p = dict(spec.params)
    if spec.name == "none":
        return box
    if spec.name == "rounding":
        return RoundingBlackBox(box, decimals=p.get("decimals", 2), n_classes=n_classes)
    if spec.name == "topk":
        k = _number(p.get("k", 1), "top-k k", low=1, integer=True)
        return TopKBlackBox(box, k=k, renormalise=bool(p.get("renormalise", False)))
    if spec.name == "label":
        return LabelOnlyBlackBox(box)
    scale = p.get("sigma", p.get("scale", 0.0))
    return NoiseBlackBox(box, scale=scale, distribution=spec.name, secret=secret, seed=p.get("seed", 0),
                         same_noise_per_image=bool(p.get("same_noise_per_image", False)))
