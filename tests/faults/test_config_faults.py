"""Config and environment faults: each a one-line ``ConfigError`` / ``DataError`` naming the value.

Kinds: NaN / inf / negative / zero learning rates, negative weight decay, a NaN fine-tune rate,
a negative seed, a NaN FPR, a TOML file that is not UTF-8, a TOML file that is a folder,
``FACELEAKS_DATA_DIR`` pointing nowhere (LFW and UTKFace), ``FACELEAKS_DATA_DIR`` that is a file.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faceleaks.config import StudentConfig, TeacherConfig, config_from_dict, load_config
from faceleaks.data import folders
from faceleaks.data.lfw import find_lfw_root
from faceleaks.data.utkface import find_utkface_root
from faceleaks.errors import ConfigError, DataError


@pytest.mark.parametrize("section, key", [("teacher", "learning_rate"), ("student", "learning_rate"),
                                          ("teacher", "finetune_learning_rate")])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -0.01, 0.0])
def test_bad_learning_rates_are_refused(section, key, value):
    with pytest.raises(ConfigError, match=f"{key} must be a finite positive number") as info:
        config_from_dict({section: {key: value}})
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("cls", [TeacherConfig, StudentConfig])
def test_negative_or_nan_weight_decay_is_refused_even_when_built_directly(cls):
    for value in (-1e-4, float("nan"), float("-inf")):
        with pytest.raises(ConfigError, match="weight_decay must be a finite number >= 0"):
            cls(weight_decay=value)
    assert cls(weight_decay=0.0).weight_decay == 0.0  # zero is a valid weight decay


@settings(max_examples=60, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=False))
def test_student_learning_rate_accepted_iff_finite_and_positive(value):
    if math.isfinite(value) and value > 0:
        assert StudentConfig(learning_rate=value).learning_rate == value
    else:
        with pytest.raises(ConfigError, match="StudentConfig.learning_rate"):
            StudentConfig(learning_rate=value)


def test_negative_seed_and_nan_fpr():
    with pytest.raises(ConfigError, match="seed must be an integer >= 0, got -1"):
        config_from_dict({"seed": -1})
    with pytest.raises(ConfigError, match="fprs must be fractions"):
        config_from_dict({"attack": {"fprs": [float("nan")]}})


def test_toml_not_utf8_is_one_line(tmp_path):
    p = tmp_path / "latin1.toml"
    p.write_bytes("seed = 1\n# café\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="is not UTF-8 text") as info:
        load_config(p)
    assert "\n" not in str(info.value) and "latin1.toml" in str(info.value)


def test_toml_that_is_a_folder(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path)


@pytest.fixture()
def isolated(tmp_path, monkeypatch):
    """No data anywhere but what the test makes: no env folders, no ../shared/data, no download home."""
    for var in ("FACELEAKS_LFW_DIR", "FACELEAKS_UTKFACE_DIR", "FACELEAKS_DATA_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path / "skl"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(folders, "REPO_ROOT", tmp_path / "repo")
    return tmp_path


def _shared_lfw(root):
    """A valid LFW beside the working directory, which a bad FACELEAKS_DATA_DIR must not fall back to."""
    from PIL import Image
    import numpy as np
    person = root.parent / "shared" / "data" / "lfw" / "lfw-deepfunneled" / "A_B"
    person.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(person / "A_B_0001.jpg")
    return person.parent


@pytest.mark.parametrize("finder, name", [(lambda: find_lfw_root(None, download=False), "lfw"),
                                          (lambda: find_utkface_root(None), "utkface")])
def test_data_dir_pointing_nowhere_is_an_error_like_the_lfw_dir(isolated, monkeypatch, finder, name):
    work = isolated / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    found = _shared_lfw(work)
    if name == "lfw":
        assert find_lfw_root(None, download=False) == found  # without the variable: found beside the checkout
    monkeypatch.setenv("FACELEAKS_DATA_DIR", str(isolated / "nowhere"))
    with pytest.raises(DataError, match=f"FACELEAKS_DATA_DIR \\({name}/ inside it\\)=.*nowhere/{name}") as info:
        finder()
    assert "\n" not in str(info.value)
    monkeypatch.setenv("FACELEAKS_LFW_DIR", str(isolated / "nowhere"))
    with pytest.raises(DataError, match="FACELEAKS_LFW_DIR="):
        find_lfw_root(None, download=False)


def test_data_dir_that_is_a_file(isolated, monkeypatch):
    f = isolated / "data.txt"
    f.write_text("not a folder")
    monkeypatch.setenv("FACELEAKS_DATA_DIR", str(f))
    with pytest.raises(DataError, match="FACELEAKS_DATA_DIR"):
        find_lfw_root(None, download=False)


@pytest.mark.parametrize("settings, needle", [
    ({"mode": "photo", "noise_multiplier": float("inf")}, "noise_multiplier must be a finite number in (0, inf)"),
    ({"mode": "photo", "noise_multiplier": float("nan")}, "noise_multiplier must be a finite number"),
    ({"mode": "photo", "target_epsilon": -1.0}, "target_epsilon must be a finite number in (0, inf)"),
    ({"delta": 1.0}, "delta must be a finite number in (0, 1)"),
    ({"delta": float("nan")}, "delta must be a finite number in (0, 1)"),
    ({"max_grad_norm": float("inf")}, "max_grad_norm must be a finite number"),
    ({"head_noise_multiplier": 0}, "head_noise_multiplier must be a finite number in (0, inf)"),
    ({"label_smoothing": 1.0}, "label_smoothing must be a finite number in [0, 1)"),
    ({"label_smoothing": True}, "label_smoothing must be a finite number"),
    ({"mode": "photo", "noise_multiplier": 1.0, "sample_rate": 1.5}, "sample_rate must be a finite number in (0, 1]"),
    ({"mode": "identity", "noise_multiplier": 1.0, "photos_per_identity": 0}, "photos_per_identity must be a positive integer"),
    ({"mode": "photo", "noise_multiplier": 1.0, "photos_per_identity": 4}, "photos_per_identity is set but mode is 'photo'"),
])
def test_privacy_settings_out_of_range_use_the_shared_checks(settings, needle):
    from faceleaks.config.privacy import PrivacyConfig

    with pytest.raises(ConfigError) as info:
        PrivacyConfig(**settings)
    assert needle in str(info.value) and "\n" not in str(info.value)
    assert str(info.value).startswith("PrivacyConfig.")


def test_privacy_sample_rate_of_one_is_allowed():
    from faceleaks.config.privacy import PrivacyConfig

    assert PrivacyConfig(mode="photo", noise_multiplier=1.0, sample_rate=1.0).sample_rate == 1.0
