"""The faces of the attribute study: the attacker's labelled auxiliary pool and the targets.

UTKFace auxiliary pool and UTKFace targets (disjoint, both outside the students' UTKFace photos),
LFW targets of people with no role in the membership split, and LFW photos of non-member and
reference people for the identity level [reconstructed]. Target labels are ground truth: they
reach the scoring only, never an attack.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faceleaks.config import AttributeConfig, ExperimentConfig
from faceleaks.data.attributes import (GENDERS, RACES, LabelColumn, LabelledFaces, choose_lfw_targets,
                                       find_lfw_attributes, label_column, load_lfw_attributes, top_up, utk_pools)
from faceleaks.data.faces import load_faces
from faceleaks.errors import DataError
from faceleaks.evaluation.attribute_results import LabelSummary
from faceleaks.evaluation.dataset import Dataset
from faceleaks.evaluation.owner import age_group, age_group_names
from faceleaks.seeding import derive_seed, make_rng

__all__ = ["AttributeSets", "gather_attribute_sets", "label_summaries"]

log = logging.getLogger(__name__)


@dataclass
class AttributeSets:
    aux: LabelledFaces
    targets: dict[str, LabelledFaces]  # variant -> its targets
    identities: LabelledFaces | None
    warnings: list[str] = field(default_factory=list)

    def groups(self) -> list[LabelledFaces]:
        return [self.aux, *self.targets.values()] + ([self.identities] if self.identities else [])


def _age_names(bins: tuple[int, ...]) -> tuple[str, ...]:
    return tuple(age_group_names(bins))


def _utk_labels(ids: list[str], data: Dataset, bins: tuple[int, ...]) -> dict[str, LabelColumn]:
    recs = [data.utk[i] for i in ids]
    code = lambda v: (v, "ok") if v >= 0 else (-1, "unknown")  # noqa: E731
    return {"gender": label_column(ids, [code(r.gender) for r in recs], GENDERS),
            "race": label_column(ids, [code(r.race) for r in recs], RACES),
            "age-group": label_column(ids, [(age_group(r.age, bins), "ok") for r in recs], _age_names(bins))}


def _utk_sets(data: Dataset, cfg: ExperimentConfig, s: AttributeConfig, cache_dir: Path, seed: int):
    """(auxiliary pool, UTKFace targets), disjoint, both outside ``split.utk``."""
    used = [i for ids in data.split.utk.values() for i in ids]
    aux, targets, rest = utk_pools(list(data.utk), used, n_aux=s.n_utk_aux, n_targets=s.n_utk_targets,
                                   seed=derive_seed(seed, "attribute-utk-pools"))
    bins = cfg.student.age_bins
    for label_of, names in ((lambda i: data.utk[i].gender, GENDERS), (lambda i: data.utk[i].race, RACES),
                            (lambda i: age_group(data.utk[i].age, bins), _age_names(bins))):
        aux, rest = top_up(aux, rest, label_of, len(names), s.max_numeric_budget, names=names)
    chip = data.utk_chipper
    out = []
    for name, ids in (("utk-aux", aux), ("utk-targets", targets)):
        faces = load_faces([data.utk[i].path for i in ids], ids, [""] * len(ids), chip, cache_dir=cache_dir,
                           description=f"reading UTKFace ({name})")
        out.append(LabelledFaces(name, faces, _utk_labels(faces.image_ids.tolist(), data, bins)))
    return out[0], out[1]


def _lfw_sets(data: Dataset, s: AttributeConfig, cache_dir: Path, seed: int) -> tuple[LabelledFaces, LabelledFaces]:
    """(LFW instance targets, LFW identity-level photos of nonmember/reference people)."""
    lfw = load_lfw_attributes(find_lfw_attributes(data.lfw_root, s.lfw_labels))
    in_split = {p for ids in data.split.roles.values() for p in ids}
    ids = choose_lfw_targets(lfw, exclude=in_split, n=s.n_lfw_targets, max_per_person=s.max_lfw_photos_per_person,
                             seed=derive_seed(seed, "attribute-lfw-targets"))
    people = [lfw.person_of[i] for i in ids]
    faces = load_faces([data.lfw_root / p / f"{i}.jpg" for i, p in zip(ids, people)], ids, people, data.chipper,
                       cache_dir=cache_dir, description="reading LFW (attribute targets)")
    got = faces.image_ids.tolist()
    targets = LabelledFaces("lfw-targets", faces, {"gender": lfw.gender(got), "race": lfw.race(got)})
    rng = make_rng(derive_seed(seed, "attribute-identity-photos"))
    persons = sorted(data.split.identities("nonmember") + data.split.identities("reference"))
    have = set(data.faces.image_ids.tolist())
    photo_ids = []
    for p in persons:
        mine = [i for i in data.split.photos[p] if i in have]
        photo_ids += [mine[j] for j in rng.permutation(len(mine))[: max(s.ks)]]
    return targets, LabelledFaces("lfw-identities", data.photos(photo_ids), {"gender": lfw.identity_gender(persons)})


def gather_attribute_sets(data: Dataset, cfg: ExperimentConfig, s: AttributeConfig, cache_dir: Path, seed: int) -> AttributeSets:
    aux, utk_targets = _utk_sets(data, cfg, s, cache_dir, seed)
    sets = AttributeSets(aux, {"same-distribution": utk_targets}, None)
    try:
        lfw_targets, sets.identities = _lfw_sets(data, s, cache_dir, seed)
        sets.targets = {"cross-dataset": lfw_targets, **sets.targets}
    except DataError as err:
        msg = f"attribute attack: no LFW targets, cross-dataset and identity level skipped ({err})"
        log.warning(msg)
        sets.warnings.append(msg)
    return sets


def label_summaries(sets: AttributeSets) -> tuple[LabelSummary, ...]:
    return tuple(LabelSummary(attr, g.name, col.classes, tuple(np.bincount(col.labels[col.known], minlength=len(
        col.classes)).tolist()), dict(col.excluded)) for g in sets.groups() for attr, col in g.labels.items())
