"""The training loop: the default path is today's loop bit for bit; hooks and schedules are used."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from faceleaks.errors import ConfigError
from faceleaks.models.backbones import ScratchCNN
from faceleaks.models.training import TrainingHooks, fit_classifier, hflip


def _reference_fit(model, inputs, labels, *, epochs, batch_size, learning_rate, weight_decay, generator,
                   augment=None):
    """Verbatim copy of ``fit_classifier`` before the hooks (commit 8f8f81c), minus the progress bar."""
    y = torch.as_tensor(labels, dtype=torch.long)
    opt = torch.optim.Adam(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
    loss_fn = nn.CrossEntropyLoss()
    history = []
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=generator)
        total = 0.0
        for start in range(0, len(y), batch_size):
            idx = order[start : start + batch_size]
            xb = inputs[idx]
            if augment is not None:
                xb = augment(xb, generator)
            opt.zero_grad()
            loss = loss_fn(model(xb), y[idx])
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        sched.step()
        history.append(total / len(y))
    model.eval()
    return history


class _Net(nn.Module):
    def __init__(self, n_classes: int) -> None:
        super().__init__()
        self.backbone = ScratchCNN(16)
        self.head = nn.Linear(16, n_classes)

    def forward(self, x):
        return self.head(self.backbone(x))


def _data(n=37, n_classes=3, side=16, seed=0):
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.normal(size=(n, 3, side, side)).astype(np.float32))
    return x, rng.integers(0, n_classes, n)


def _twins(make):
    torch.manual_seed(1)
    a = make()
    b = make()
    b.load_state_dict(a.state_dict())
    return a, b


@pytest.mark.parametrize("augment", [None, hflip])
def test_default_path_is_todays_loop_bit_for_bit(augment):
    x, labels = _data()
    new, old = _twins(lambda: _Net(3))
    kw = dict(epochs=3, batch_size=8, learning_rate=1e-2, weight_decay=5e-4, augment=augment)
    got = fit_classifier(new, x, labels, generator=torch.Generator().manual_seed(7), **kw)
    want = _reference_fit(old, x, labels, generator=torch.Generator().manual_seed(7), **kw)
    assert got == want and len(got) == 3
    for (k, v), w in zip(new.state_dict().items(), old.state_dict().values()):
        assert torch.equal(v, w), k
    assert not new.training


def test_default_path_leaves_generator_where_todays_loop_does():
    x, labels = _data()
    new, old = _twins(lambda: nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 3)))
    g_new, g_old = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    fit_classifier(new, x, labels, epochs=2, batch_size=5, learning_rate=1e-3, weight_decay=0.0, generator=g_new,
                   augment=hflip)
    _reference_fit(old, x, labels, epochs=2, batch_size=5, learning_rate=1e-3, weight_decay=0.0, generator=g_old,
                   augment=hflip)
    assert torch.equal(g_new.get_state(), g_old.get_state())


class _CountingSGD(torch.optim.SGD):
    steps = 0

    def step(self, closure=None):
        type(self).steps += 1
        return super().step(closure)


def test_custom_optimizer_and_constant_schedule_are_used():
    x, labels = _data(n=20)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 3))
    made = []

    def make(m):
        made.append(_CountingSGD(m.parameters(), lr=0.05))
        return made[-1]

    _CountingSGD.steps = 0
    hooks = TrainingHooks(make_optimizer=make, schedule="constant", tag="sgd-constant")
    before = model[1].weight.detach().clone()
    fit_classifier(model, x, labels, epochs=3, batch_size=8, learning_rate=1.0, weight_decay=0.0,
                   generator=torch.Generator().manual_seed(0), hooks=hooks)
    assert len(made) == 1 and _CountingSGD.steps == 3 * 3  # 3 epochs of ceil(20 / 8) batches
    assert made[0].param_groups[0]["lr"] == 0.05  # constant: never annealed
    assert not torch.equal(before, model[1].weight)


def test_cosine_schedule_anneals_the_optimizers_rate():
    x, labels = _data(n=10)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 3))
    made = []
    hooks = TrainingHooks(make_optimizer=lambda m: made.append(torch.optim.SGD(m.parameters(), lr=0.1)) or made[-1],
                          schedule="cosine", tag="sgd-cosine")
    fit_classifier(model, x, labels, epochs=4, batch_size=4, learning_rate=1.0, weight_decay=0.0,
                   generator=torch.Generator().manual_seed(0), hooks=hooks)
    assert made[0].param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)  # cosine reaches 0 after T_max epochs


def test_privatize_receives_model_optimizer_and_a_tensor_loader_and_its_triple_is_trained():
    x, labels = _data(n=12)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 3))
    seen = {}

    def privatize(m, opt, loader):
        seen.update(model=m, opt=opt, loader=loader)
        assert isinstance(loader, DataLoader) and isinstance(loader.dataset, TensorDataset)
        assert loader.batch_size == 5
        xs, ys = loader.dataset.tensors
        assert torch.equal(xs, x) and ys.tolist() == labels.tolist()
        one_by_one = DataLoader(loader.dataset, batch_size=1)  # e.g. what Opacus returns instead
        _CountingSGD.steps = 0
        return m, _CountingSGD(m.parameters(), lr=0.01), one_by_one  # a replacement optimiser, as DPOptimizer

    hooks = TrainingHooks(privatize=privatize, tag="test-private")
    history = fit_classifier(model, x, labels, epochs=2, batch_size=5, learning_rate=1e-3, weight_decay=0.0,
                             generator=torch.Generator().manual_seed(0), hooks=hooks)
    assert seen["model"] is model and isinstance(seen["opt"], torch.optim.Adam)
    assert _CountingSGD.steps == 2 * 12 and len(history) == 2 and all(np.isfinite(history))


def test_bad_settings_raise_config_error():
    with pytest.raises(ConfigError, match="'linear'"):
        TrainingHooks(schedule="linear")
    with pytest.raises(ConfigError, match="tag"):
        TrainingHooks(schedule="constant")
    assert TrainingHooks().is_default and not TrainingHooks(schedule="constant", tag="c").is_default


def test_with_schedule_applies_a_recipes_schedule_and_refuses_a_conflicting_one():
    from faceleaks.models.training import DEFAULT_HOOKS, with_schedule

    assert with_schedule(DEFAULT_HOOKS, "cosine") is DEFAULT_HOOKS  # today's recipe keeps today's hooks
    constant = with_schedule(DEFAULT_HOOKS, "constant")
    assert constant.schedule == "constant" and constant.tag == "schedule-constant"
    sgd = TrainingHooks(make_optimizer=lambda m: torch.optim.SGD(m.parameters(), lr=0.1), tag="sgd")
    kept = with_schedule(sgd, "constant")
    assert kept.make_optimizer is sgd.make_optimizer and kept.tag == "sgd" and kept.schedule == "constant"
    with pytest.raises(ConfigError, match="finetune_schedule"):
        with_schedule(TrainingHooks(schedule="constant", tag="c"), "cosine")
    with pytest.raises(ConfigError, match="'linear'"):
        with_schedule(DEFAULT_HOOKS, "linear")
