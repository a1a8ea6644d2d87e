"""Identity-level attribute inference: one guess per person from k of their photos.

The attacker sees k outputs it knows show one person (say, the photos a user uploaded) and
averages the per-photo class probabilities before deciding [reconstructed: the paper's abstract
does not describe an identity-level attribute attack; this mirrors the identity-level
membership attack of ``attacks.membership``]. Averaging is order-independent.
"""

from __future__ import annotations

import numpy as np

from faceleaks.attacks.attribute.base import AttributeGuesses
from faceleaks.attacks.base import Level, first_k_groups, group_indices
from faceleaks.errors import ConfigError, DataError

__all__ = ["first_k", "aggregate_guesses"]


def first_k(identity_ids: np.ndarray, k: int) -> np.ndarray:
    """Indices of the first ``k`` photos (in the given order) of every identity that has ``k``.

    Parameters
    ----------
    identity_ids : ndarray (n,) str
    k : int >= 1

    Returns
    -------
    idx : ndarray (n_identities * k,) int64, sorted; identities with fewer photos are left out

    Examples
    --------
    >>> first_k(np.array(["a", "b", "a", "a"]), 2).tolist()
    [0, 2]
    """
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    _, groups = first_k_groups(identity_ids, k)
    return np.sort(np.concatenate(groups)).astype(np.int64) if groups else np.zeros(0, np.int64)


def aggregate_guesses(guesses: AttributeGuesses, identity_ids: np.ndarray) -> AttributeGuesses:
    """Average per-photo probabilities over each identity's photos; decide by the arg-max.

    Parameters
    ----------
    guesses : AttributeGuesses at INSTANCE level, (n,) photos
    identity_ids : ndarray (n,) str, the person each row shows (same order as ``guesses``)

    Returns
    -------
    AttributeGuesses at IDENTITY level: ``ids`` are the sorted identities, ``proba``
    (n_identities, n_classes) the mean probabilities, ``predicted`` their arg-max.

    Raises
    ------
    DataError
        If the lengths differ or ``guesses`` is already at identity level.
    """
    identity_ids = np.asarray(identity_ids).astype(str)
    if guesses.level is not Level.INSTANCE or len(identity_ids) != len(guesses.ids):
        raise DataError(f"aggregate needs instance-level guesses and one identity per photo; got "
                        f"{guesses.level.value} guesses for {len(guesses.ids)} photos, {len(identity_ids)} identities")
    names, groups = group_indices(identity_ids)
    proba = np.stack([guesses.proba[g].mean(axis=0) for g in groups]) if groups else guesses.proba[:0]
    return AttributeGuesses(np.array(names, dtype=str), proba, proba.argmax(axis=1).astype(np.int64),
                            f"{guesses.attack}@identity", Level.IDENTITY, guesses.n_queries)
