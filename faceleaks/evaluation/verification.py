"""Face verification accuracy of a teacher on LFW's official pairs, restricted to held-out identities.

Protocol (Huang et al. 2007, LFW ``pairs.txt``: 10 folds of 300 matched + 300 mismatched pairs
[paper]): cosine similarity of teacher embeddings; for each fold the threshold maximising accuracy
on the other nine folds is applied to it; we report the mean and standard deviation over folds.
Pairs involving any identity the teacher was trained on are dropped ("held-out identities").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceleaks.errors import DataError
from faceleaks.evaluation.results import VerificationRecord

__all__ = ["Pair", "read_pairs", "verification_accuracy"]


@dataclass(frozen=True)
class Pair:
    """Two LFW image ids, whether they show the same person, and the fold (0-9)."""

    a: str
    b: str
    same: bool
    fold: int


def read_pairs(path: Path) -> list[Pair]:
    """Parse ``pairs.txt``; ``DataError`` if malformed."""
    try:
        lines = Path(path).read_text().split("\n")
        n_folds, n_per = (int(v) for v in lines[0].split())
        pairs = []
        for j, line in enumerate(x for x in lines[1:] if x.strip()):
            f = line.split("\t")
            fold = j // (2 * n_per)
            if len(f) == 3:
                pairs.append(Pair(f"{f[0]}_{int(f[1]):04d}", f"{f[0]}_{int(f[2]):04d}", True, fold))
            else:
                pairs.append(Pair(f"{f[0]}_{int(f[1]):04d}", f"{f[2]}_{int(f[3]):04d}", False, fold))
    except (OSError, ValueError, IndexError) as err:
        raise DataError(f"cannot parse LFW pairs file {path}: {err}") from err
    if len(pairs) != n_folds * 2 * n_per:
        raise DataError(f"{path}: expected {n_folds * 2 * n_per} pairs, found {len(pairs)}")
    return pairs


def _identity(image_id: str) -> str:
    return image_id.rsplit("_", 1)[0]


def _best_threshold(sim: np.ndarray, same: np.ndarray) -> float:
    """Threshold t maximising accuracy of (sim >= t) == same, scanning every observed value."""
    order = np.argsort(sim, kind="stable")
    s, y = sim[order], same[order].astype(int)
    # predict "same" for indices >= i: correct = same-pairs at >= i + different-pairs below i
    same_at_or_above = np.cumsum(y[::-1])[::-1]
    diff_below = np.concatenate([[0], np.cumsum(1 - y)[:-1]])
    return float(s[int(np.argmax(same_at_or_above + diff_below))])


def verification_accuracy(
    pairs: list[Pair], embed: Callable[[list[str]], dict[str, np.ndarray]], *, exclude_identities: set[str],
    n_folds: int = 10,
) -> VerificationRecord:
    """Cross-validated verification accuracy (fraction) on pairs of identities not in ``exclude_identities``.

    ``embed(image_ids)`` returns unit-norm embeddings for the ids it could read (others are dropped).
    Only the first ``n_folds`` folds are used (10 = the full official protocol).
    Returns a ``VerificationRecord`` (accuracy and its std over folds, pairs kept and dropped, protocol).
    """
    pairs = [p for p in pairs if p.fold < n_folds]
    kept = [p for p in pairs if _identity(p.a) not in exclude_identities and _identity(p.b) not in exclude_identities]
    emb = embed(sorted({p.a for p in kept} | {p.b for p in kept}))
    kept = [p for p in kept if p.a in emb and p.b in emb]
    if not kept:
        raise DataError("no verification pairs left after excluding the teacher's identities")
    sim = np.array([float(emb[p.a] @ emb[p.b]) for p in kept])
    same = np.array([p.same for p in kept])
    fold = np.array([p.fold for p in kept])
    accs = []
    for f in np.unique(fold):
        tr, te = fold != f, fold == f
        t = _best_threshold(sim[tr], same[tr])
        accs.append(float(((sim[te] >= t) == same[te]).mean()))
    return VerificationRecord(
        accuracy=float(np.mean(accs)), std=float(np.std(accs)), n_pairs=len(kept), n_folds=n_folds,
        n_excluded_pairs=len(pairs) - len(kept),
        protocol=f"LFW pairs.txt, first {n_folds} folds, cosine threshold from the other folds, "
                 "teacher identities excluded")
