"""The consistency gap: how much more consistent a box is about a person than the public base predicts.

Beyond the paper [reconstructed; issue 13]. A victim teacher is a public face model fine-tuned on
its members, so it maps a member's photos closer together than the base did. The attacker holds
the base and a **reference pool** of photos of many people it knows are not members (a few photos
each), queried on the box. It fits a *surrogate*: a ridge map, with intercept, from the base's
L2-normalised embeddings to the box's centred log-posteriors (the student's logits up to a
constant). For a person's k photos the consistency gap is

    gap = mean pairwise cosine of the box's centred log-posteriors (the ``compactness``)
          - mean pairwise cosine of the surrogate's predicted centred log-posteriors,

about 0 for a person the box treats as the base does, and positive for one whose photos the
fine-tuning pulled together. The ridge penalty is always chosen by efficient leave-one-out
cross-validation (``sklearn.linear_model.RidgeCV``, generalised CV) over ``GAP_ALPHAS``: measured
on one thread, 128-D embeddings, 40 classes, it takes 60 ms on 1,000 pool photos and 0.21 s on
4,300 (a fixed-alpha ``Ridge`` 2 ms and 9 ms), less than querying a box on those photos.

Arithmetic is float64 on the values the API returns; posteriors are floored only at the smallest
positive number of the API's dtype (``np.finfo(dtype).tiny``), never higher.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np
from sklearn.linear_model import RidgeCV

from faceleaks.attacks.base import ReferenceSet
from faceleaks.attacks.features import mean_pairwise_cosine, pairwise_cosines
from faceleaks.errors import ConfigError, DataError, UnsupportedOutputError
from faceleaks.seeding import make_rng
from faceleaks.serving.protocol import BlackBox, OutputKind

__all__ = ["GAP_STATISTICS", "GAP_ALPHAS", "MIN_POOL_PHOTOS", "precise_centered_log_posterior",
           "normalise_rows", "fit_surrogate", "consistency_gaps", "gap_statistic", "FISHER_CLIP", "pool_indices", "box_log_posteriors",
           "check_pool_size"]

GAP_STATISTICS = ("consistency_gap", "fisher_gap")
"""``consistency_gap``: difference of mean pairwise cosines (issue 13's definition); ``fisher_gap``: mean
over pairs of the difference of Fisher-transformed cosines, ``arctanh(cos)`` (``consistency_gaps``)."""
FISHER_CLIP = 1.0 - 1e-6
"""Cosines are clipped to +-``FISHER_CLIP`` before ``arctanh`` (finite for identical outputs)."""
GAP_ALPHAS = tuple(float(a) for a in np.logspace(-6, 3, 19))
"""Ridge penalties tried by the surrogate's leave-one-out CV (1e-6 ... 1e3, half-decade steps; on
real pools of 1,000+ photos the victim's choice sat at 1e-4, the old lower end)."""
MIN_POOL_PHOTOS = 20


def precise_centered_log_posterior(values: np.ndarray) -> np.ndarray:
    """Centred log-posteriors in float64, floored only at the smallest positive float of the API's dtype.

    Parameters
    ----------
    values : ndarray of shape (n_queries, n_classes), float16/32/64 as the API returns it; rows
        sum to 1

    Returns
    -------
    ndarray of shape (n_queries, n_classes) float64: log p minus its row mean (the logits up to a
    constant per row). A posterior that underflowed to 0 counts as ``np.finfo(dtype).tiny``.

    Examples
    --------
    >>> z = precise_centered_log_posterior(np.array([[0.5, 0.5], [1e-12, 1.0]], np.float32))
    >>> z.dtype.name, bool(np.allclose(z[0], 0)), bool(z[1, 0] < -13)
    ('float64', True, True)
    """
    values = np.asarray(values)
    dtype = values.dtype if np.issubdtype(values.dtype, np.floating) else np.dtype(np.float64)
    lp = np.log(np.maximum(values.astype(np.float64), float(np.finfo(dtype).tiny)))
    return lp - lp.mean(axis=1, keepdims=True)


def box_log_posteriors(box: BlackBox, images: np.ndarray) -> np.ndarray:
    """(n, n_classes) float64 ``precise_centered_log_posterior`` of ``box`` on ``images``.

    Raises
    ------
    UnsupportedOutputError
        The box does not return full posteriors.
    """
    if box.output_kind is not OutputKind.POSTERIOR:
        raise UnsupportedOutputError(f"the consistency gap needs posterior outputs, the box returns "
                                     f"{box.output_kind.value}")
    return precise_centered_log_posterior(box.query(images).values)


def normalise_rows(e: np.ndarray) -> np.ndarray:
    """(n, d) float64 rows of ``e`` scaled to unit L2 norm (a zero row stays zero)."""
    e = np.asarray(e, dtype=np.float64)
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)


_MEMO: OrderedDict[bytes, RidgeCV] = OrderedDict()
_MEMO_SIZE = 256


def fit_surrogate(e: np.ndarray, z: np.ndarray, *, alphas: tuple[float, ...] = GAP_ALPHAS) -> RidgeCV:
    """Ridge map (with intercept) from L2-normalised base embeddings to a box's centred log-posteriors.

    Parameters
    ----------
    e : ndarray (n, d) float64, L2-normalised public-base embeddings of the pool photos
    z : ndarray (n, n_classes) float64, the box's centred log-posteriors of the same photos
    alphas : tuple of float > 0, penalties tried; one is chosen for all outputs by efficient
        leave-one-out CV (``RidgeCV(alphas, fit_intercept=True)``, its ``alpha_`` attribute)

    Returns
    -------
    sklearn.linear_model.RidgeCV, fitted; shared with other callers that pass the same arrays
    (a content-keyed memo of the last ``_MEMO_SIZE`` fits: every attack, k and setting against one
    box refits the same map otherwise, and the fit dominated a run's time). Treat it as read-only.

    Raises
    ------
    DataError
        Fewer than ``MIN_POOL_PHOTOS`` photos.
    """
    if len(e) < MIN_POOL_PHOTOS:
        raise DataError(f"the consistency-gap surrogate needs >= {MIN_POOL_PHOTOS} pool photos, got {len(e)}; "
                        f"give a larger reference pool (pool=ReferenceSet) or a larger pool_size")
    e, z = np.ascontiguousarray(e, dtype=np.float64), np.ascontiguousarray(z, dtype=np.float64)
    key = hashlib.sha1(repr((e.shape, z.shape, tuple(alphas))).encode() + e.tobytes() + z.tobytes()).digest()
    if key not in _MEMO:
        _MEMO[key] = RidgeCV(alphas=alphas, fit_intercept=True).fit(e, z)
        while len(_MEMO) > _MEMO_SIZE:
            _MEMO.popitem(last=False)
    _MEMO.move_to_end(key)
    return _MEMO[key]


def consistency_gaps(z: np.ndarray, z_hat: np.ndarray, groups: list[np.ndarray], *,
                     fisher: bool = False) -> np.ndarray:
    """(n_groups,) float64: mean pairwise cosine of ``z`` minus that of ``z_hat`` over each group.

    ``z`` (n, c): a box's centred log-posteriors; ``z_hat`` (n, c): the surrogate's predictions for
    the same photos; ``groups[i]``: the rows of identity i (>= 2 each).

    With ``fisher=True`` (the ``fisher_gap`` statistic) each pair's cosines are Fisher-transformed
    first: the mean over pairs of ``arctanh(cos z) - arctanh(cos z_hat)`` [reconstructed]. The spread
    of a non-member pair's cosine around its prediction shrinks as the prediction nears 1 (on the
    reference pool's 2-photo people through regularised victims, sd ~ 0.08 (1 - predicted)), so
    the plain difference under-weights the pairs the base already sees as alike; ``arctanh``
    stabilises that spread (it is the variance-stabilising transform of a correlation). On 16
    regularised victims at k = 5 it raised the pooled no-shadow AUC from 0.88 to 0.91
    (``benchmarks/diag_gap_variants.py``).

    Examples
    --------
    >>> z = np.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [1.0, 0.0]])
    >>> consistency_gaps(z, z[[0, 2, 1, 3]], [np.array([0, 1]), np.array([2, 3])]).round(3).tolist()
    [0.995, -0.995]
    """
    if fisher:
        return np.array([np.mean(_fisher_cosines(z[g]) - _fisher_cosines(z_hat[g])) for g in groups],
                        dtype=np.float64)
    return np.array([mean_pairwise_cosine(z[g]) - mean_pairwise_cosine(z_hat[g]) for g in groups],
                    dtype=np.float64)


def _fisher_cosines(x: np.ndarray) -> np.ndarray:
    """``arctanh`` of the pairwise cosines of the rows of ``x``, clipped to +-``FISHER_CLIP``."""
    return np.arctanh(np.clip(pairwise_cosines(x), -FISHER_CLIP, FISHER_CLIP))


def gap_statistic(name: str, z: np.ndarray, z_hat: np.ndarray, groups: list[np.ndarray]) -> np.ndarray:
    """The ``GAP_STATISTICS`` member ``name`` of each group (``consistency_gaps``); ``ConfigError`` otherwise."""
    if name not in GAP_STATISTICS:
        raise ConfigError(f"unknown gap statistic {name!r}; choose one of {GAP_STATISTICS}")
    return consistency_gaps(z, z_hat, groups, fisher=name == "fisher_gap")


def check_pool_size(pool_size: int | None) -> None:
    """``ConfigError`` unless ``pool_size`` is None (the whole pool) or an int >= ``MIN_POOL_PHOTOS``."""
    if pool_size is not None and (not isinstance(pool_size, int) or isinstance(pool_size, bool)
                                  or pool_size < MIN_POOL_PHOTOS):
        raise ConfigError(f"pool_size={pool_size!r} must be None (the whole pool) or an integer >= "
                          f"{MIN_POOL_PHOTOS} (photos of the reference pool each surrogate is fitted on)")


def pool_indices(pool: ReferenceSet, *, pool_size: int | None, seed: int,
                 exclude: frozenset[str] | set[str] = frozenset()) -> np.ndarray:
    """Sorted indices of the pool photos a surrogate is fitted on.

    Photos of identities in ``exclude`` (e.g. any shadow's members) and of known members are left
    out; of the rest, a seeded uniform subsample of ``pool_size`` photos (all if None or fewer).

    Returns
    -------
    ndarray (m,) int64, increasing

    Raises
    ------
    DataError
        Fewer than ``MIN_POOL_PHOTOS`` photos remain.
    """
    ids = np.asarray(pool.identity_ids).astype(str)
    keep = np.flatnonzero(~np.asarray(pool.is_member, bool) & ~np.isin(ids, sorted(exclude)))
    if len(keep) < MIN_POOL_PHOTOS:
        raise DataError(f"the reference pool holds {len(keep)} usable photos (non-members, not trained on by any "
                        f"shadow); the consistency gap needs >= {MIN_POOL_PHOTOS}: give a larger pool")
    if pool_size is not None and pool_size < len(keep):
        keep = np.sort(make_rng(seed).choice(keep, size=pool_size, replace=False))
    return keep.astype(np.int64)
