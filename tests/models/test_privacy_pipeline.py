"""Training defences reach dlib fine-tuning (one by one and on the executor), its cache key and its
metadata; the default keeps today's key; settings are validated and read from TOML."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from opacus.accountants.analysis.rdp import compute_rdp, get_privacy_spent
from opacus.accountants.rdp import RDPAccountant

from faceleaks.config import PrivacyConfig, TeacherConfig, load_config
from faceleaks.errors import ConfigError
from faceleaks.models.checkpoint import load_checkpoint
from faceleaks.models.dlib_parallel import FinetuneJob, finetune_dlib_teachers
from faceleaks.models.dlib_teacher import dlib_teacher_path, finetune_dlib_teacher

RNG = np.random.default_rng(11)
CHIPS = RNG.integers(0, 256, (12, 150, 150, 3), dtype=np.uint8)
IDENTITIES = np.array([f"person{i % 4}" for i in range(len(CHIPS))])
IDS = np.array([f"img{i}" for i in range(len(CHIPS))])
PHOTO = PrivacyConfig(mode="photo", noise_multiplier=1.1, max_grad_norm=0.5)
IDENTITY = PrivacyConfig(mode="identity", target_epsilon=6.0, sample_rate=0.5, photos_per_identity=3)


def _cfg(privacy: PrivacyConfig) -> TeacherConfig:
    return TeacherConfig(finetune_epochs=2, batch_size=5, privacy=privacy)


def test_default_privacy_keeps_todays_key_and_others_move_it(tmp_path):
    today = dlib_teacher_path(TeacherConfig(), IDS, 3, "t", tmp_path)
    assert dlib_teacher_path(TeacherConfig(privacy=PrivacyConfig()), IDS, 3, "t", tmp_path) == today
    settings = [PHOTO, IDENTITY, PrivacyConfig(label_smoothing=0.1), PrivacyConfig(mode="photo", noise_multiplier=1.2),
                PrivacyConfig(mode="photo", noise_multiplier=1.1, max_grad_norm=0.5, head_init="noisy-means")]
    keys = {dlib_teacher_path(TeacherConfig(privacy=p), IDS, 3, "t", tmp_path) for p in settings}
    assert today not in keys and len(keys) == len(settings)


def test_photo_dp_teacher_reports_the_accountants_epsilon_and_is_seeded(tmp_path):
    # names differ so that b and c are trained, not loaded (the frozen stages' activations are shared)
    a = finetune_dlib_teacher(CHIPS, IDENTITIES, IDS, _cfg(PHOTO), seed=2, cache_dir=tmp_path, name="a")
    b = finetune_dlib_teacher(CHIPS, IDENTITIES, IDS, _cfg(PHOTO), seed=2, cache_dir=tmp_path, name="b")
    assert not a.info["cached"] and not b.info["cached"]
    steps_per_epoch = math.ceil(len(CHIPS) / 5)
    assert a.info["dp_steps"] == 2 * steps_per_epoch and a.info["dp_sample_rate"] == pytest.approx(1 / steps_per_epoch)
    rdp = compute_rdp(q=1 / steps_per_epoch, noise_multiplier=1.1, steps=2 * steps_per_epoch,
                      orders=RDPAccountant.DEFAULT_ALPHAS)
    eps, _ = get_privacy_spent(orders=RDPAccountant.DEFAULT_ALPHAS, rdp=rdp, delta=1e-5)
    assert a.info["dp_epsilon"] == pytest.approx(eps, rel=1e-9) and a.info["dp_delta"] == 1e-5
    for (k, v), w in zip(a.network.state_dict().items(), b.network.state_dict().values()):
        assert torch.equal(v, w), k
    assert not any(hasattr(p, "grad_sample") for p in a.network.parameters())  # Opacus's hooks were removed
    c = finetune_dlib_teacher(CHIPS, IDENTITIES, IDS, _cfg(PHOTO), seed=3, cache_dir=tmp_path, name="c")
    assert any(not torch.equal(v, w) for v, w in zip(a.network.state_dict().values(), c.network.state_dict().values()))


def test_identity_dp_reaches_shadow_training_on_the_executor(tmp_path):
    cfg = _cfg(IDENTITY)
    jobs = [FinetuneJob(CHIPS, IDENTITIES, IDS, 5, "shadow0")]
    assert finetune_dlib_teachers(jobs, cfg, cache_dir=tmp_path, backend="serial") == 1
    state, meta = load_checkpoint(dlib_teacher_path(cfg, IDS, 5, "shadow0", tmp_path))
    assert meta["dp_mode"] == "identity" and meta["dp_steps"] == 2 * 2  # q = 0.5: 2 steps per epoch
    assert 6.0 - 0.05 <= meta["dp_epsilon"] <= 6.0
    # the one-by-one path finds that checkpoint (same key), and a plain teacher is another file
    again = finetune_dlib_teacher(CHIPS, IDENTITIES, IDS, cfg, seed=5, cache_dir=tmp_path, name="shadow0")
    assert again.info["cached"] and again.info["dp_epsilon"] == meta["dp_epsilon"]
    assert load_checkpoint(dlib_teacher_path(TeacherConfig(finetune_epochs=2, batch_size=5), IDS, 5, "shadow0",
                                             tmp_path)) is None


def test_label_smoothing_changes_training(tmp_path):
    plain = finetune_dlib_teacher(CHIPS, IDENTITIES, IDS, _cfg(PrivacyConfig()), seed=1, cache_dir=tmp_path, name="t")
    smooth = finetune_dlib_teacher(CHIPS, IDENTITIES, IDS, _cfg(PrivacyConfig(label_smoothing=0.2)), seed=1,
                                   cache_dir=tmp_path, name="t")
    assert smooth.info["label_smoothing"] == 0.2 and "dp_epsilon" not in smooth.info
    assert smooth.info["final_loss"] != plain.info["final_loss"]


@pytest.mark.parametrize("values,match", [
    ({"mode": "photo"}, "exactly one"),
    ({"mode": "photo", "noise_multiplier": 1.0, "target_epsilon": 2.0}, "exactly one"),
    ({"noise_multiplier": 1.0}, "mode is 'none'"),
    ({"mode": "user", "noise_multiplier": 1.0}, "unknown privacy mode"),
    ({"mode": "photo", "target_epsilon": -1.0}, "target_epsilon"),
    ({"mode": "photo", "noise_multiplier": 1.0, "delta": 1.5}, "delta"),
    ({"mode": "photo", "noise_multiplier": 1.0, "sample_rate": 0.0}, "sample_rate"),
    ({"mode": "photo", "noise_multiplier": 1.0, "photos_per_identity": 4}, "photos_per_identity"),
    ({"label_smoothing": 1.0}, "label_smoothing"),
    ({"head_init": "means"}, "head_init"),
])
def test_nonsense_privacy_settings_raise(values, match):
    with pytest.raises(ConfigError, match=match):
        PrivacyConfig(**values)


def test_privacy_is_read_from_toml_and_needs_the_dlib_teacher(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[teacher.privacy]\nmode = "identity"\nnoise_multiplier = 1.5\nphotos_per_identity = 8\n')
    cfg = load_config(path)
    assert cfg.teacher.privacy == PrivacyConfig(mode="identity", noise_multiplier=1.5, photos_per_identity=8)
    assert cfg.to_dict()["teacher"]["privacy"]["mode"] == "identity"
    path.write_text('[teacher]\nkind = "scratch"\n[teacher.privacy]\nlabel_smoothing = 0.1\n')
    with pytest.raises(ConfigError, match="dlib teacher"):
        load_config(path)
    path.write_text('[teacher.privacy]\nmode = "photo"\nsigma = 1.0\n')
    with pytest.raises(ConfigError, match="sigma"):
        load_config(path)


def test_label_smoothing_hook_is_a_named_recipe_and_survives_the_schedule():
    from faceleaks.models.training import TrainingHooks, with_schedule
    with pytest.raises(ConfigError, match="tag"):
        TrainingHooks(label_smoothing=0.1)
    with pytest.raises(ConfigError, match="label_smoothing"):
        TrainingHooks(label_smoothing=-0.1, tag="x")
    hooks = with_schedule(TrainingHooks(label_smoothing=0.1, tag="ls"), "constant")
    assert hooks.label_smoothing == 0.1 and hooks.schedule == "constant" and not hooks.is_default


def test_privacy_settings_travel_to_worker_processes():
    import pickle
    cfg = _cfg(IDENTITY)
    assert pickle.loads(pickle.dumps(cfg)) == cfg and pickle.loads(pickle.dumps(cfg)).privacy.is_private
