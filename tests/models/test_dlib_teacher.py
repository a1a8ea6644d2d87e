"""Victim recipes reach dlib fine-tuning (one by one and on the executor) and its cache key;
``regularised`` keeps today's keys and weights bit for bit."""

from __future__ import annotations

import pickle
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from faceleaks.config import TeacherConfig
from faceleaks.models.activations import ActivationStore, activation_store
from faceleaks.models.activations import dlib_base_network
from faceleaks.errors import DataError
from faceleaks.models.checkpoint import config_key, load_checkpoint, save_checkpoint
from faceleaks.models.dlib_parallel import FinetuneJob, finetune_dlib_teachers
from faceleaks.models.dlib_teacher import (HEAD_KEY, Tail, _imprinted_head, dlib_base_teacher, dlib_teacher_path,
                                           finetune_dlib_teacher)
from faceleaks.models.training import DEFAULT_HOOKS, TrainingHooks, fit_classifier

RNG = np.random.default_rng(7)
CHIPS = RNG.integers(0, 256, (12, 150, 150, 3), dtype=np.uint8)
IDENTITIES = np.array([f"person{i % 3}" for i in range(len(CHIPS))])
IDS = np.array([f"img{i}" for i in range(len(CHIPS))])
LIGHT_EXPLICIT = dict(finetune_schedule="constant", finetune_learning_rate=1e-4, finetune_epochs=10,
                      finetune_weight_decay=0, train_photos="all")


def _key_before_recipes(cfg: TeacherConfig, image_ids, seed: int) -> str:
    """Verbatim formula of ``dlib_teacher_path`` before recipes, for a config of that time."""
    recipe = {"kind": cfg.kind, "image_size": cfg.image_size, "epochs": cfg.epochs, "learning_rate": cfg.learning_rate,
              "batch_size": cfg.batch_size, "weight_decay": cfg.weight_decay, "embedding_dim": cfg.embedding_dim,
              "unfreeze_last_n": cfg.unfreeze_last_n, "finetune_epochs": 20, "finetune_learning_rate": 3e-4}
    return config_key("dlib", recipe, sorted(np.asarray(image_ids).astype(str).tolist()), seed,
                      f"activations-batch{ActivationStore.BATCH}")


def _name(path: Path) -> str:
    return path.name.split("-dlib-")[1].removesuffix(".pt")


@pytest.mark.parametrize("cfg", [TeacherConfig(), TeacherConfig(recipe="regularised", control="finetuned"),
                                 TeacherConfig(finetune_epochs=20, finetune_learning_rate=3e-4,
                                               finetune_weight_decay=5e-4, finetune_schedule="cosine",
                                               train_photos="half")])
def test_regularised_cache_key_is_todays(cfg, tmp_path):
    assert _name(dlib_teacher_path(cfg, IDS, 3, "t", tmp_path)) == _key_before_recipes(TeacherConfig(), IDS, 3)


def test_every_recipe_value_is_in_the_cache_key(tmp_path):
    light = dlib_teacher_path(TeacherConfig(recipe="light"), IDS, 3, "t", tmp_path)
    # the same values given one by one name the same file: the key hashes values, not how they were set
    assert light == dlib_teacher_path(TeacherConfig(**LIGHT_EXPLICIT), IDS, 3, "t", tmp_path)
    keys = {_name(dlib_teacher_path(TeacherConfig(), IDS, 3, "t", tmp_path)), _name(light)}
    for field, value in LIGHT_EXPLICIT.items():  # each light value alone moves the regularised key
        keys.add(_name(dlib_teacher_path(TeacherConfig(**{field: value}), IDS, 3, "t", tmp_path)))
    for field, value in LIGHT_EXPLICIT.items():  # and each regularised value alone moves the light key
        back = {"finetune_schedule": "cosine", "finetune_learning_rate": 3e-4, "finetune_epochs": 20,
                "finetune_weight_decay": 5e-4, "train_photos": "half"}[field]
        keys.add(_name(dlib_teacher_path(TeacherConfig(recipe="light", **{field: back}), IDS, 3, "t", tmp_path)))
    assert len(keys) == 2 + 2 * len(LIGHT_EXPLICIT)
    sgd = TrainingHooks(make_optimizer=lambda m: torch.optim.SGD(m.parameters(), lr=0.1), tag="sgd")
    assert dlib_teacher_path(TeacherConfig(), IDS, 3, "t", tmp_path, hooks=sgd) not in {
        dlib_teacher_path(TeacherConfig(), IDS, 3, "t", tmp_path), light}


def test_regularised_training_is_todays_bit_for_bit(tmp_path):
    cfg = TeacherConfig(finetune_epochs=2, batch_size=4)  # today's recipe, shortened as a config could then
    teacher = finetune_dlib_teacher(CHIPS, IDENTITIES, IDS, cfg, seed=5, cache_dir=tmp_path, name="t")
    # today's train_tail, verbatim: Adam at finetune_learning_rate, weight_decay, default (cosine) hooks
    start = dlib_base_network().n_stages - cfg.unfreeze_last_n
    h = torch.from_numpy(activation_store(start, tmp_path).get(CHIPS))
    labels = np.searchsorted(sorted(set(IDENTITIES)), IDENTITIES)
    tail = Tail(dlib_base_network(), start)
    model = nn.Sequential(tail, _imprinted_head(tail, h, labels, 3))
    fit_classifier(model, h, labels, epochs=2, batch_size=4, learning_rate=3e-4, weight_decay=5e-4,
                   generator=torch.Generator().manual_seed(5), hooks=DEFAULT_HOOKS)
    mine = teacher.network.state_dict()
    assert all(torch.equal(v, mine[k]) for k, v in tail.state_dict().items())


def _weights(cfg, cache_dir, backend):
    jobs = [FinetuneJob(CHIPS, IDENTITIES, IDS, 5, "t")]
    if backend == "one-by-one":
        return finetune_dlib_teacher(CHIPS, IDENTITIES, IDS, cfg, seed=5, cache_dir=cache_dir, name="t").network.state_dict()
    assert finetune_dlib_teachers(jobs, cfg, cache_dir=cache_dir, backend=backend, workers=1) == 1
    return load_checkpoint(dlib_teacher_path(cfg, IDS, 5, "t", cache_dir))[0]


def test_the_recipe_reaches_workers_on_the_process_executor(tmp_path):
    light = TeacherConfig(recipe="light", finetune_epochs=2, batch_size=4)
    pickle.loads(pickle.dumps(light))  # what goes to a worker: settings, no lambdas
    parallel = _weights(light, tmp_path / "a", "process")
    alone = _weights(light, tmp_path / "b", "one-by-one")
    for k, v in alone.items():  # the same recipe (workers use one thread: last bits may differ)
        torch.testing.assert_close(parallel[k], v, rtol=1e-4, atol=1e-6)
    # only the schedule differs: if it did not reach the worker, these would be the same weights
    cosine = _weights(TeacherConfig(recipe="light", finetune_epochs=2, batch_size=4, finetune_schedule="cosine"),
                      tmp_path / "c", "process")
    assert max(float((cosine[k] - v).abs().max()) for k, v in parallel.items()) > 1e-6
    # and finetune_dlib_teacher then loads the worker's teacher instead of training again
    again = finetune_dlib_teacher(CHIPS, IDENTITIES, IDS, light, seed=5, cache_dir=tmp_path / "a", name="t")
    assert again.info["cached"] is True


def test_a_light_teacher_never_loads_a_regularised_one(tmp_path):
    short = dict(finetune_epochs=1, batch_size=4)
    finetune_dlib_teacher(CHIPS, IDENTITIES, IDS, TeacherConfig(**short), seed=5, cache_dir=tmp_path, name="t")
    light = finetune_dlib_teacher(CHIPS, IDENTITIES, IDS, TeacherConfig(recipe="light", **short), seed=5,
                                  cache_dir=tmp_path, name="t")
    assert light.info["cached"] is False and len(list((tmp_path / "teachers").glob("*.pt"))) == 2
    assert asdict(TeacherConfig(recipe="light", **short).resolved_recipe)["schedule"] == "constant"


def test_the_head_is_kept_and_identifies_the_training_photos(tmp_path):
    cfg = TeacherConfig(finetune_epochs=2, batch_size=4)
    teacher = finetune_dlib_teacher(CHIPS, IDENTITIES, IDS, cfg, seed=5, cache_dir=tmp_path, name="t")
    assert teacher.head.shape == (3, 128) and np.allclose(np.linalg.norm(teacher.head, axis=1), 1, atol=1e-5)
    labels = np.searchsorted(sorted(set(IDENTITIES)), IDENTITIES)
    # the kept head is the trained one: it reproduces the training accuracy measured through the model
    assert (teacher.identify(CHIPS) == labels).mean() == pytest.approx(teacher.info["train_accuracy"])
    again = finetune_dlib_teacher(CHIPS, IDENTITIES, IDS, cfg, seed=5, cache_dir=tmp_path, name="t", need_head=True)
    assert again.info["cached"] is True and np.array_equal(again.head, teacher.head)


def test_a_cached_teacher_without_a_head_is_trained_again_only_when_the_head_is_needed(tmp_path):
    cfg = TeacherConfig(finetune_epochs=1, batch_size=4)
    finetune_dlib_teacher(CHIPS, IDENTITIES, IDS, cfg, seed=5, cache_dir=tmp_path, name="t")
    path = dlib_teacher_path(cfg, IDS, 5, "t", tmp_path)
    state, meta = load_checkpoint(path)
    state.pop(HEAD_KEY)
    save_checkpoint(path, state, meta)  # as teachers were cached before heads were kept
    old = finetune_dlib_teacher(CHIPS, IDENTITIES, IDS, cfg, seed=5, cache_dir=tmp_path, name="t")
    assert old.info["cached"] is True and old.head is None
    with pytest.raises(DataError, match="no closed-set head"):
        old.identify(CHIPS)
    new = finetune_dlib_teacher(CHIPS, IDENTITIES, IDS, cfg, seed=5, cache_dir=tmp_path, name="t", need_head=True)
    assert new.info["cached"] is False and new.head is not None
    assert HEAD_KEY in load_checkpoint(path)[0]


def test_a_head_only_teacher_embeds_as_dlib_and_trains_its_head(tmp_path):
    cfg = TeacherConfig(unfreeze_last_n=0, finetune_epochs=2, batch_size=4)
    teacher = finetune_dlib_teacher(CHIPS, IDENTITIES, IDS, cfg, seed=5, cache_dir=tmp_path, name="t")
    base = dlib_base_teacher(TeacherConfig(), cache_dir=tmp_path)  # dlib through its usual two-stage tail
    np.testing.assert_allclose(teacher.embed(CHIPS), base.embed(CHIPS), atol=1e-5)  # students see dlib's embedding
    labels = np.searchsorted(sorted(set(IDENTITIES)), IDENTITIES)
    assert teacher.head.shape == (3, 128) and teacher.info["n_classes"] == 3
    assert (teacher.identify(CHIPS) == labels).mean() == pytest.approx(teacher.info["train_accuracy"])


def test_a_photo_edited_under_the_same_id_makes_the_cached_teacher_stale(tmp_path, caplog):
    cfg = TeacherConfig(finetune_epochs=1, batch_size=4)
    finetune_dlib_teacher(CHIPS, IDENTITIES, IDS, cfg, seed=5, cache_dir=tmp_path, name="t")
    shuffled = np.random.default_rng(0).permutation(len(CHIPS))  # the order photos come in does not count
    again = finetune_dlib_teacher(CHIPS[shuffled], IDENTITIES[shuffled], IDS[shuffled], cfg, seed=5,
                                  cache_dir=tmp_path, name="t")
    assert again.info["cached"] is True
    edited = CHIPS.copy()
    edited[3, 70, 70] ^= 0xFF  # one pixel of one photo, same id
    retrained = finetune_dlib_teacher(edited, IDENTITIES, IDS, cfg, seed=5, cache_dir=tmp_path, name="t")
    assert retrained.info["cached"] is False and "trained on other images" in caplog.text
    assert finetune_dlib_teacher(edited, IDENTITIES, IDS, cfg, seed=5, cache_dir=tmp_path, name="t").info["cached"]
