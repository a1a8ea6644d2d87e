"""Join attack scores with the split's truth by id and compute a ``MembershipReport``."""

from __future__ import annotations

import warnings

import numpy as np

from faceleaks.attacks.base import MembershipScores
from faceleaks.errors import DataError
from faceleaks.evaluation.results import MembershipReport, RocCurve
from faceleaks.metrics import (advantage_score, auc_score, balanced_accuracy_score, bootstrap_auc_ci,
                               roc_curve, tpr_at_fpr)

__all__ = ["evaluate_scores"]


def _thin(fpr: np.ndarray, tpr: np.ndarray, max_points: int = 200) -> RocCurve:
    if len(fpr) > max_points:
        idx = np.unique(np.linspace(0, len(fpr) - 1, max_points).round().astype(int))
        fpr, tpr = fpr[idx], tpr[idx]
    return RocCurve([round(float(v), 6) for v in fpr], [round(float(v), 6) for v in tpr])


def evaluate_scores(
    scores: MembershipScores, truth: dict[str, bool], *, teacher: str, student: str, setting: str, k: int,
    n_photos: dict[str, int], n_queries: int, fprs: tuple[float, ...], n_bootstrap: int, seed: int,
    caught: list[str] | None = None, groups: dict[str, str] | None = None, seconds: float = 0.0,
    n_shadow_models: int = 0, recipe: str = "",
) -> MembershipReport:
    """Metrics of one attack's scores.

    Parameters
    ----------
    truth : id -> is member, for every id in ``scores.ids`` (``DataError`` if one is missing)
    n_photos : {"member": int, "nonmember": int} photos behind the scores
    caught : list that receives the text of metric warnings (e.g. unresolvable TPR at FPR)
    groups : id -> person, for instance-level scores: the CI then resamples whole people
    seconds : wall-clock seconds the attack spent fitting and scoring
    n_shadow_models : shadow students the attack used
    teacher, student, setting, recipe : the evaluation context copied into the report (``recipe``:
        how the teacher behind the box was trained, ``TeacherConfig.recipe_name``)

    Raises
    ------
    DataError
        A scored id is not in ``truth``.
    """
    missing = [i for i in scores.ids.tolist() if i not in truth]
    if missing:
        raise DataError(f"{len(missing)} scored ids are not in the split (e.g. {missing[0]!r})")
    ids = scores.ids.tolist()
    y = np.array([truth[i] for i in ids], dtype=int)
    s = scores.scores
    with warnings.catch_warnings(record=True) as wlist:
        warnings.simplefilter("always")
        tprs = {float(f): tpr_at_fpr(y, s, f) for f in fprs}
    if caught is not None:
        caught += [f"{scores.attack} / {teacher}/{student} / {setting} / k={k}: {w.message}" for w in wlist]
    if caught is None:
        for w in wlist:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    fpr, tpr, _ = roc_curve(y, s)
    g = None if groups is None else np.array([groups[i] for i in scores.ids.tolist()])
    ci = bootstrap_auc_ci(y, s, groups=g, n_bootstrap=n_bootstrap, seed=seed)
    thr = scores.threshold
    bacc = balanced_accuracy_score(y, s, thr) if np.isfinite(thr) else float("nan")
    return MembershipReport(
        attack=scores.attack, level=scores.level.value, teacher=teacher, student=student, setting=setting,
        k=k, auc=auc_score(y, s), auc_ci=(ci.low, ci.high), tpr_at_fpr=tprs, advantage=advantage_score(y, s),
        balanced_accuracy=bacc, threshold=float(thr),
        n_members=int(y.sum()) if g is None else len(set(g[y == 1])),
        n_nonmembers=int((1 - y).sum()) if g is None else len(set(g[y == 0])),
        n_member_photos=int(n_photos["member"]), n_nonmember_photos=int(n_photos["nonmember"]),
        n_queries=int(n_queries), roc=_thin(fpr, tpr), n_shadow_models=int(n_shadow_models),
        seconds=round(float(seconds), 3),
        member_scores={} if g is not None else {i: round(float(v), 6) for i, v, m in zip(ids, s, y) if m},
        nonmember_scores={} if g is not None else {i: round(float(v), 6) for i, v, m in zip(ids, s, y) if not m},
        recipe=recipe,
    )
