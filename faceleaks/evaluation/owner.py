"""The model owner's side: data, split, teacher and students (and the same recipe for shadows).

Everything here is ground truth or owner-only; attacks never import it. The experiment hands
attacks only black boxes and the reference data an attacker may hold.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceleaks.config import ExperimentConfig
from faceleaks.data.chips import DlibChipper
from faceleaks.data.faces import CenterCrop, Chipper, FaceSet, load_faces
from faceleaks.data.lfw import find_lfw_root, index_lfw
from faceleaks.data.splits import MembershipSplit, group_by_identity, make_split
from faceleaks.data.utkface import UtkRecord, find_utkface_root, index_utkface
from faceleaks.models.student import Student, train_student
from faceleaks.models.dlib_teacher import dlib_base_teacher, finetune_dlib_teacher
from faceleaks.models.teacher import Teacher, train_scratch_teacher
from faceleaks.seeding import derive_seed

__all__ = ["Dataset", "prepare_data", "build_teacher", "build_control_teacher", "n_control_members", "build_students", "age_group", "age_group_names",
           "chippers"]

log = logging.getLogger(__name__)


@dataclass
class Dataset:
    """Loaded faces and the manifest. ``utk`` maps UTKFace image id -> record (age, gender, race)."""

    lfw_root: Path
    split: MembershipSplit
    faces: FaceSet
    utk_faces: FaceSet
    utk: dict[str, UtkRecord]
    chipper: Chipper
    utk_chipper: Chipper
    utk_root: Path | None = None

    def photos(self, ids) -> FaceSet:
        """The readable LFW photos among ``ids`` (unreadable ones were skipped at load time)."""
        return _readable(self.faces, ids)

    def utk_photos(self, ids) -> FaceSet:
        """The readable UTKFace photos among ``ids``."""
        return _readable(self.utk_faces, ids)


def _readable(faces: FaceSet, ids) -> FaceSet:
    have = set(faces.image_ids.tolist())
    return faces.subset([i for i in ids if i in have])


def chippers(cfg: ExperimentConfig) -> tuple[Chipper, Chipper]:
    """(LFW, UTKFace) crop functions the configured teacher expects: dlib chips or central crops."""
    if cfg.teacher.kind == "scratch":
        return CenterCrop(0.5, cfg.teacher.image_size), CenterCrop(0.8, cfg.teacher.image_size)
    return DlibChipper(box="lfw"), DlibChipper(box="utkface")


def prepare_data(cfg: ExperimentConfig, *, out_dir: Path, cache_dir: Path) -> Dataset:
    """Find LFW and UTKFace, draw the split (written to ``out_dir/split.json``), read the photos.

    Raises ``DataError`` (with what was looked for) when data is missing or too small.
    """
    root = find_lfw_root(cfg.data.lfw_dir, download=cfg.data.download)
    records = index_lfw(root)
    by_identity = group_by_identity([r.image_id for r in records], [r.identity for r in records])
    utk_root = find_utkface_root(cfg.data.utkface_dir)
    utk_records = index_utkface(utk_root)
    utk = {r.image_id: r for r in utk_records}
    split = make_split(by_identity, list(utk), cfg.split, max_images_per_identity=cfg.data.max_images_per_identity,
                       seed=derive_seed(cfg.seed, "split"), n_control_members=n_control_members(cfg))
    split_path = Path(out_dir) / "split.json"
    split.to_json(split_path)
    split = MembershipSplit.from_json(split_path)  # validated, as any later reader would
    wanted = {i for ids in split.photos.values() for i in ids}
    chosen = [r for r in records if r.image_id in wanted]
    chipper, utk_chipper = chippers(cfg)
    faces = load_faces([r.path for r in chosen], [r.image_id for r in chosen], [r.identity for r in chosen],
                       chipper, cache_dir=cache_dir, description="reading LFW photos")
    utk_ids = sorted({i for ids in split.utk.values() for i in ids})
    utk_faces = load_faces([utk[i].path for i in utk_ids], utk_ids, [""] * len(utk_ids), utk_chipper,
                           cache_dir=cache_dir, description="reading UTKFace photos")
    return Dataset(root, split, faces, utk_faces, utk, chipper, utk_chipper, utk_root)


def build_teacher(data: Dataset, cfg: ExperimentConfig, train_ids: dict[str, list[str]], *, name: str,
                  cache_dir: Path) -> Teacher:
    """Train (or load from cache) a teacher of ``cfg.teacher.kind`` on ``train_ids`` (identity -> photo ids).

    ``dlib-base`` ignores ``train_ids``: it is dlib's model unmodified.
    """
    kind = cfg.teacher.kind
    if kind == "dlib-base":
        return dlib_base_teacher(cfg.teacher, cache_dir=cache_dir, name=name)
    faces = data.photos([i for ids in train_ids.values() for i in ids])
    train = train_scratch_teacher if kind == "scratch" else finetune_dlib_teacher
    return train(faces.images, faces.identities, faces.image_ids, cfg.teacher, seed=derive_seed(cfg.seed, name),
                 cache_dir=cache_dir, name=name)


def n_control_members(cfg: ExperimentConfig) -> int:
    """Identities the fine-tuned control teacher trains on: as many as the victim's members, or 0."""
    return cfg.split.n_members if cfg.teacher.kind == "dlib" and cfg.teacher.control == "finetuned" else 0


def build_control_teacher(data: Dataset, cfg: ExperimentConfig, *, shadow_teacher: Teacher, cache_dir: Path) -> Teacher:
    """A teacher of the same kind that saw none of the evaluated (member or non-member) identities.

    ``dlib``: dlib's unmodified model (``cfg.teacher.control == "base"``) or dlib fine-tuned with the
    victim's recipe on all photos of the split's ``control_member`` identities (``"finetuned"``).
    ``scratch``: the attacker's shadow teacher, trained only on reference identities with the same
    recipe (reused to save training time).
    """
    if cfg.teacher.kind == "scratch":
        return shadow_teacher
    if cfg.teacher.control == "finetuned":
        people = data.split.identities("control_member")
        return build_teacher(data, cfg, {p: data.split.photos[p] for p in people}, name="control-teacher",
                             cache_dir=cache_dir)
    return dlib_base_teacher(cfg.teacher, cache_dir=cache_dir, name="control-dlib-base")


def age_group(age: int, bins: tuple[int, ...]) -> int:
    """Index of the age group: ages below bins[0] -> 0, ..., at or above bins[-1] -> len(bins)."""
    return int(np.searchsorted(np.asarray(bins), age, side="right"))


def age_group_names(bins: tuple[int, ...]) -> list[str]:
    """Names of the age groups cut at ``bins``, e.g. (20, 40, 60) -> 0-19, 20-39, 40-59, 60+."""
    edges = [0, *bins]
    return [f"{a}-{b - 1}" for a, b in zip(edges, edges[1:])] + [f"{bins[-1]}+"]


def build_students(teacher: Teacher, data: Dataset, cfg: ExperimentConfig, *, shadow: bool,
                   prefix: str) -> dict[str, tuple[Student, float]]:
    """The two students on ``teacher``: ``lfw-identity`` and ``utk-age``, with their test accuracy.

    ``shadow=True`` builds the attacker's copies on its own data (shadow-student identities and
    the UTKFace shadow part, 25 % of it held out for testing).
    """
    split = data.split
    role = "shadow_student" if shadow else "student"
    people = split.identities(role)
    test_ids = set(split.student_test)
    photos = data.photos([i for p in people for i in split.photos[p]])
    is_test = np.isin(photos.image_ids, list(test_ids))
    labels = np.searchsorted(people_sorted := sorted(people), photos.identities)
    seed = derive_seed(cfg.seed, prefix, "lfw-identity")
    lfw = train_student("lfw-identity", teacher, photos.images[~is_test], labels[~is_test], people_sorted,
                        cfg.student, seed=seed)
    out = {"lfw-identity": (lfw, lfw.accuracy(photos.images[is_test], labels[is_test]))}
    if shadow:
        ids = split.utk["shadow"]
        cut = int(0.75 * len(ids))
        train, test = ids[:cut], ids[cut:]
    else:
        train, test = split.utk["train"], split.utk["test"]
    tr, te = data.utk_photos(train), data.utk_photos(test)
    bins = cfg.student.age_bins
    y_tr, y_te = ([age_group(data.utk[i].age, bins) for i in fs.image_ids] for fs in (tr, te))
    age = train_student("utk-age", teacher, tr.images, np.array(y_tr), age_group_names(bins), cfg.student,
                        seed=derive_seed(cfg.seed, prefix, "utk-age"))
    out["utk-age"] = (age, age.accuracy(te.images, np.array(y_te)))
    return out
