"""The white-box ceiling of the consistency gap: what the teacher's own embeddings reveal.

Not an attack (the attacker never holds the teacher): a reference line for the black-box
consistency gap [reconstructed, issue 13]. For each audited person and their first k photos:

    gap = mean pairwise cosine of the teacher's embeddings of the k photos
          - mean pairwise cosine of the public base's embeddings of the same photos mapped into the
            teacher's embedding space by a linear map (ridge with intercept, alpha by
            cross-validation) fitted on the attacker's reference pool.

The map predicts how the teacher would place the photos had it not been fine-tuned on the person;
fine-tuning on a member pulls the member's photos together beyond that prediction. Scores are
joined with the split's truth and measured exactly as attacks are (``evaluate_scores``).
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import RidgeCV

from faceleaks.attacks.base import Level, MembershipScores
from faceleaks.attacks.features import mean_pairwise_cosine
from faceleaks.attacks.membership.consistency import GAP_STATISTICS, fit_surrogate, gap_statistic, normalise_rows
from faceleaks.evaluation.results import MembershipReport
from faceleaks.evaluation.scoring import evaluate_scores
from faceleaks.seeding import derive_seed

__all__ = ["CEILING_NAME", "CEILING_STUDENT", "ceiling_map", "ceiling_report", "ceiling_statistics"]

CEILING_NAME = "white-box-consistency_gap"
CEILING_STUDENT = "teacher-embedding"
"""Where the ceiling sits among students: the teacher's own embedding, not a student's API."""
_ALPHAS = tuple(np.logspace(-3, 3, 13))


def ceiling_map(teacher_embed, base_embed, pool_images: np.ndarray) -> RidgeCV:
    """Ridge map (with intercept; alpha by leave-one-out CV over 1e-3..1e3) from the public base's
    unit embeddings to the teacher's, fitted on the pool photos (n, S, S, 3) uint8.

    ``teacher_embed`` / ``base_embed``: callables mapping uint8 crops to (n, d) float embeddings.
    """
    return fit_surrogate(normalise_rows(base_embed(pool_images)), normalise_rows(teacher_embed(pool_images)),
                         alphas=_ALPHAS)


def ceiling_scores(teacher_embed, base_embed, mapping: RidgeCV, images: np.ndarray,
                   identity_ids: np.ndarray, k: int, statistic: str = "consistency_gap") -> MembershipScores:
    """One white-box gap per identity from its first k rows of ``images`` (input order).

    ``statistic``: ``consistency_gap`` (named ``CEILING_NAME``) or ``fisher_gap`` (``white-box-fisher_gap``).
    """
    identity_ids = np.asarray(identity_ids).astype(str)
    names = sorted(set(identity_ids.tolist()))
    rows = [np.flatnonzero(identity_ids == n)[:k] for n in names]
    teacher = normalise_rows(teacher_embed(images))
    predicted = mapping.predict(normalise_rows(base_embed(images)))
    gaps = gap_statistic(statistic, teacher, predicted, rows)
    return MembershipScores(gaps, np.array(names), Level.IDENTITY, f"white-box-{statistic}@k={k}", float("nan"), 0)


def ceiling_statistics(teacher_embed, base_embed, mapping: RidgeCV, images: np.ndarray,
                       groups: dict[int, list[np.ndarray]]) -> dict[int, dict[str, tuple[float, ...]]]:
    """White-box statistics of each group of rows of ``images`` (n, S, S, 3) uint8, per k.

    ``groups[k][i]``: the rows of the i-th person audited at k (k each). Returns k ->
    ``{"compactness": mean pairwise cosine of the teacher's embeddings, "consistency_gap": that minus
    the mean pairwise cosine of the mapped base embeddings, "fisher_gap": the same pair by pair on
    Fisher-transformed cosines}``, one float per person, in the
    layout of ``inclusion_victims.box_statistics`` so the random-inclusion run scores it like a student.
    """
    rows = np.unique(np.concatenate([np.concatenate(g) for g in groups.values() if len(g)] or [np.zeros(0, int)]))
    at = {int(r): i for i, r in enumerate(rows)}
    teacher = normalise_rows(teacher_embed(images[rows]))
    predicted = mapping.predict(normalise_rows(base_embed(images[rows])))
    out = {}
    for k, gs in sorted(groups.items()):
        local = [np.array([at[int(r)] for r in g]) for g in gs]
        out[k] = {"compactness": tuple(float(mean_pairwise_cosine(teacher[g])) for g in local)}
        out[k].update({s: tuple(map(float, gap_statistic(s, teacher, predicted, local))) for s in GAP_STATISTICS})
    return out


def ceiling_report(teacher_embed, base_embed, mapping: RidgeCV, photos, members: dict[str, list[str]],
                   nonmembers: dict[str, list[str]], *, k: int, seed: int, fprs: tuple[float, ...],
                   n_bootstrap: int, context: dict[str, str], caught: list[str],
                   statistic: str = "consistency_gap") -> MembershipReport:
    """The ceiling's metrics for members vs non-members (identity -> its first k photo ids), on ``statistic``.

    ``photos(ids) -> FaceSet`` looks the chips up; ``context`` is {"teacher", "student", "setting"}
    (``student`` names the teacher's embedding, e.g. ``teacher-embedding``).
    """
    faces = photos([i for ids in {**members, **nonmembers}.values() for i in ids])
    scores = ceiling_scores(teacher_embed, base_embed, mapping, faces.images, faces.identities, k, statistic)
    truth = {**dict.fromkeys(nonmembers, False), **dict.fromkeys(members, True)}
    n_photos = {"member": sum(map(len, members.values())), "nonmember": sum(map(len, nonmembers.values()))}
    return evaluate_scores(scores, truth, k=k, n_photos=n_photos, n_queries=0, fprs=fprs, n_bootstrap=n_bootstrap,
                           seed=derive_seed(seed, "bootstrap", scores.attack), caught=caught, **context)


def ceiling_reports(teachers: list[tuple[str, object]], base, plan) -> list[MembershipReport]:
    """The ceiling for each (role, teacher), setting and k >= 2, on the people the attacks audit.

    ``base``: the public base teacher (``embed``); ``plan``: the run's ``AttackPlan`` (data, attacker
    pool, config, warnings). Empty when the split has no reference pool.
    """
    from faceleaks.evaluation.audited import SETTINGS, eligible_first_k, evaluation_lists

    cfg, data = plan.cfg, plan.data
    if not plan.attacker.pool:
        return []
    recipe = cfg.teacher.resolved_recipe
    settings = [s for s in SETTINGS if s == "training-photos" or recipe.has_unseen_photos]
    pool_images = data.photos(list(plan.attacker.pool)).images
    out = []
    for role, teacher in teachers:
        mapping = ceiling_map(teacher.embed, base.embed, pool_images)
        for setting in settings:
            members, nonmembers = evaluation_lists(data, setting, cfg.seed, photos=recipe.photos)
            totals = {p: len(data.split.photos[p]) for p in {**members, **nonmembers}}
            context = {"teacher": role, "student": "teacher-embedding", "setting": setting,
                       "recipe": cfg.teacher.recipe_name(role)}
            for k in (k for k in cfg.attack.ks if k >= 2):
                mk, nk = (eligible_first_k(lists, k, totals, cfg.split.member_train_fraction, setting=setting,
                                           photos=recipe.photos) for lists in (members, nonmembers))
                if len(mk) >= 2 and len(nk) >= 2:
                    out.extend(ceiling_report(
                        teacher.embed, base.embed, mapping, data.photos, mk, nk, k=k, seed=cfg.seed,
                        fprs=cfg.attack.fprs, n_bootstrap=cfg.attack.n_bootstrap, caught=plan.caught,
                        context=context, statistic=s) for s in GAP_STATISTICS)
    return out
