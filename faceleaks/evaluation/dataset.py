"""The owner's data: LFW and UTKFace found, split by identity, and read as face chips.

Everything here is ground truth or owner-only; attacks never import it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from faceleaks.config import ExperimentConfig
from faceleaks.data.chips import DlibChipper
from faceleaks.data.faces import CenterCrop, Chipper, FaceSet, load_faces
from faceleaks.data.lfw import find_lfw_root, index_lfw
from faceleaks.data.splits import MembershipSplit, group_by_identity, make_split
from faceleaks.data.utkface import UtkRecord, find_utkface_root, scan_utkface
from faceleaks.seeding import derive_seed

__all__ = ["Dataset", "prepare_data", "chippers", "n_control_members"]


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
    utk_excluded: dict[str, int] = field(default_factory=dict)  # UTKFace rows excluded, per reason

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
    skipped: list[tuple[str, str]] = []
    records = index_lfw(root, skipped=skipped)
    by_identity = group_by_identity([r.image_id for r in records], [r.identity for r in records])
    utk_root = find_utkface_root(cfg.data.utkface_dir)
    utk_index = scan_utkface(utk_root)
    utk = {r.image_id: r for r in utk_index.records}
    split = make_split(by_identity, list(utk), cfg.split, max_images_per_identity=cfg.data.max_images_per_identity,
                       seed=derive_seed(cfg.seed, "split"), n_control_members=n_control_members(cfg))
    split_path = Path(out_dir) / "split.json"
    split.to_json(split_path)
    split = MembershipSplit.from_json(split_path)  # validated, as any later reader would
    wanted = {i for ids in split.photos.values() for i in ids} | set(split.reference_pool)
    chosen = [r for r in records if r.image_id in wanted]
    chipper, utk_chipper = chippers(cfg)
    faces = load_faces([r.path for r in chosen], [r.image_id for r in chosen], [r.identity for r in chosen],
                       chipper, cache_dir=cache_dir, description="reading LFW photos", skipped=skipped)
    utk_ids = sorted({i for ids in split.utk.values() for i in ids})
    utk_faces = load_faces([utk[i].path for i in utk_ids], utk_ids, [""] * len(utk_ids), utk_chipper,
                           cache_dir=cache_dir, description="reading UTKFace photos")
    return Dataset(root, split, faces, utk_faces, utk, chipper, utk_chipper, utk_root, utk_index.excluded)


def n_control_members(cfg: ExperimentConfig) -> int:
    """Identities the fine-tuned control teacher trains on: as many as the victim's members, or 0."""
    return cfg.split.n_members if cfg.teacher.kind == "dlib" and cfg.teacher.control == "finetuned" else 0
