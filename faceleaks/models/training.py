"""One supervised training loop (mini-batch cross-entropy) with hooks, and batched inference.

``fit_classifier`` is the only training loop of the package: teachers, shadow teachers and
students all go through it. Recipes that need another optimiser, a learning-rate schedule or a
private data pipeline plug in through :class:`TrainingHooks` instead of copying the loop:

- ``make_optimizer(model) -> Optimizer`` replaces the default Adam;
- ``privatize(model, optimizer, loader) -> (model, optimizer, loader)`` receives the model, the
  optimiser and a ``DataLoader`` over a ``TensorDataset(inputs, labels)`` and returns what to train
  with; this is the shape of Opacus's ``PrivacyEngine.make_private(module=, optimizer=,
  data_loader=, ...)``, which returns the same triple (a ``GradSampleModule``, a ``DPOptimizer``
  and a Poisson-sampling ``DPDataLoader``);
- ``schedule`` is ``"cosine"`` (cosine annealing over the epochs, stepped once per epoch) or
  ``"constant"`` (the optimiser's learning rate throughout);
- ``label_smoothing`` is the cross-entropy's (``nn.CrossEntropyLoss(label_smoothing=...)``).

The teacher's training defences (DP-SGD, label smoothing) build these hooks in
``faceleaks.models.privacy``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from faceleaks.errors import ConfigError
from faceleaks.progress import track

__all__ = ["SCHEDULES", "TrainingHooks", "with_schedule", "fit_classifier", "predict_batches", "configure_torch", "hflip"]

#: Learning-rate schedules ``fit_classifier`` knows.
SCHEDULES = ("cosine", "constant")

OptimizerFactory = Callable[[nn.Module], torch.optim.Optimizer]
Privatizer = Callable[[nn.Module, torch.optim.Optimizer, DataLoader],
                      tuple[nn.Module, torch.optim.Optimizer, DataLoader]]
Batches = Callable[[], Iterator[tuple[torch.Tensor, torch.Tensor]]]


@dataclass(frozen=True)
class TrainingHooks:
    """How ``fit_classifier`` builds its optimiser, schedule and batches (the default is today's recipe).

    Parameters
    ----------
    make_optimizer : callable ``(model) -> torch.optim.Optimizer``, optional
        Default: ``Adam(model.parameters(), lr=learning_rate, weight_decay=weight_decay)``.
    privatize : callable ``(model, optimizer, loader) -> (model, optimizer, loader)``, optional
        Called once before training with a ``DataLoader(TensorDataset(inputs, labels),
        batch_size=batch_size, shuffle=True, generator=generator)``; the loop then iterates the
        returned loader each epoch and steps the returned optimiser (Opacus's ``make_private``
        fits here). Default: no loader; each epoch is ``torch.randperm(n, generator=generator)``
        cut into consecutive batches.
    schedule : {"cosine", "constant"}
        Learning-rate schedule over the epochs.
    label_smoothing : float in [0, 1)
        Cross-entropy label smoothing (0: none). See ``faceleaks.config.privacy.PrivacyConfig`` for
        its model-inversion caveat.
    tag : str
        A name for a non-default recipe, added to teacher cache keys so teachers trained with
        different hooks are never confused (hooks themselves cannot be hashed).

    Raises
    ------
    ConfigError
        ``schedule`` not in ``SCHEDULES``, or custom hooks without a ``tag``.
    """

    make_optimizer: OptimizerFactory | None = None
    privatize: Privatizer | None = None
    schedule: str = "cosine"
    tag: str = ""
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"unknown learning-rate schedule {self.schedule!r}; choose one of {SCHEDULES}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}")
        if not self.is_default and not self.tag:
            raise ConfigError("TrainingHooks with a custom optimizer, privatize hook or schedule need a "
                              "tag naming the recipe (e.g. tag='dp-sgd-sigma1.0'), used in cache keys")

    @property
    def is_default(self) -> bool:
        """Whether this is today's recipe (Adam, cosine schedule, seeded permutation batches, no smoothing)."""
        return self.make_optimizer is None and self.privatize is None and self.schedule == "cosine" \
            and self.label_smoothing == 0.0


DEFAULT_HOOKS = TrainingHooks()


def with_schedule(hooks: TrainingHooks, schedule: str) -> TrainingHooks:
    """``hooks`` training with the learning-rate ``schedule`` a recipe names (e.g. ``TeacherRecipe.schedule``).

    Parameters
    ----------
    hooks : TrainingHooks, the caller's optimiser / privatize hooks; their own schedule must be the
        default ``"cosine"`` or already ``schedule``
    schedule : {"cosine", "constant"}

    Returns
    -------
    TrainingHooks: ``hooks`` itself when its schedule is ``schedule`` (so today's recipe keeps
    ``DEFAULT_HOOKS``), else a copy with ``schedule`` and, if ``hooks`` had none, the tag
    ``schedule-<schedule>``.

    Raises
    ------
    ConfigError
        ``schedule`` is unknown, or ``hooks`` asks for another non-default schedule (two settings
        would disagree: set the schedule in the recipe, ``TeacherConfig.finetune_schedule``).

    Examples
    --------
    >>> with_schedule(DEFAULT_HOOKS, "constant").schedule, with_schedule(DEFAULT_HOOKS, "cosine") is DEFAULT_HOOKS
    ('constant', True)
    """
    if hooks.schedule == schedule:
        return hooks
    if hooks.schedule != DEFAULT_HOOKS.schedule:
        raise ConfigError(f"the training hooks ask for the {hooks.schedule!r} schedule but the recipe for "
                          f"{schedule!r}; set the schedule once, in TeacherConfig.finetune_schedule")
    return replace(hooks, schedule=schedule, tag=hooks.tag or f"schedule-{schedule}")


def configure_torch(threads: int) -> None:
    """Set the torch thread count deliberately and flush denormals (faster on CPU)."""
    torch.set_num_threads(int(threads))
    torch.set_flush_denormal(True)


def _permutation_batches(inputs: torch.Tensor, y: torch.Tensor, batch_size: int,
                         generator: torch.Generator) -> Batches:
    """Each epoch: one ``randperm`` from ``generator``, cut into consecutive batches (the default)."""

    def epoch() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(y), batch_size):
            idx = order[start : start + batch_size]
            yield inputs[idx], y[idx]

    return epoch


def _setup(model: nn.Module, inputs: torch.Tensor, y: torch.Tensor, *, batch_size: int, learning_rate: float,
           weight_decay: float, generator: torch.Generator, hooks: TrainingHooks,
           ) -> tuple[nn.Module, torch.optim.Optimizer, Batches]:
    """The model, optimiser and per-epoch batch source the loop trains with."""
    if hooks.make_optimizer is None:
        opt = torch.optim.Adam(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    else:
        opt = hooks.make_optimizer(model)
    if hooks.privatize is None:
        return model, opt, _permutation_batches(inputs, y, batch_size, generator)
    loader = DataLoader(TensorDataset(inputs, y), batch_size=batch_size, shuffle=True, generator=generator)
    model, opt, loader = hooks.privatize(model, opt, loader)
    return model, opt, lambda: iter(loader)


def fit_classifier(
    model: nn.Module, inputs: torch.Tensor, labels: np.ndarray, *, epochs: int, batch_size: int,
    learning_rate: float, weight_decay: float, generator: torch.Generator,
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    description: str = "training", hooks: TrainingHooks = DEFAULT_HOOKS,
) -> list[float]:
    """Train ``model`` (inputs → logits) with cross-entropy; returns the mean loss of each epoch.

    Parameters
    ----------
    model : nn.Module mapping a batch of ``inputs`` to (batch, n_classes) float32 logits;
        trained in place and left in eval mode
    inputs : Tensor of shape (n, ...), float32
    labels : ndarray of shape (n,), int64 in [0, n_classes)
    epochs, batch_size : passes over the data and photos per batch
    learning_rate, weight_decay : of the default Adam (ignored by a ``hooks.make_optimizer``)
    generator : torch.Generator seeding shuffling and augmentation
    augment : callable ``(batch, generator) -> batch``, optional, applied to each training batch
    description : progress-bar label
    hooks : TrainingHooks, the optimiser / privatize hooks and the schedule (default: Adam, cosine)

    Returns
    -------
    list of ``epochs`` floats: the mean cross-entropy (nats per photo) of each epoch.

    Notes
    -----
    With the default hooks the random stream is: per epoch one ``torch.randperm(n, generator)``,
    then per batch the augmentation's draws; a ``privatize`` hook switches to a ``DataLoader``,
    whose iterator draws its own base seed from ``generator`` (another stream).
    """
    y = torch.as_tensor(labels, dtype=torch.long)
    model, opt, batches = _setup(model, inputs, y, batch_size=batch_size, learning_rate=learning_rate,
                                 weight_decay=weight_decay, generator=generator, hooks=hooks)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs)) \
        if hooks.schedule == "cosine" else None
    loss_fn = nn.CrossEntropyLoss(label_smoothing=hooks.label_smoothing)
    history = []
    model.train()
    for _ in track(range(epochs), description):
        total = 0.0
        for xb, yb in batches():
            if augment is not None:
                xb = augment(xb, generator)
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            if len(yb):  # Poisson sampling (DP-SGD) may draw an empty batch
                total += float(loss.detach()) * len(yb)
        if sched is not None:
            sched.step()
        history.append(total / len(y))
    model.eval()
    return history


@torch.no_grad()
def predict_batches(fn: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor,
                    batch_size: int = 256) -> torch.Tensor:
    """Apply ``fn`` to ``inputs`` (n, ...) in batches under ``no_grad``; returns the (n, ...) outputs."""
    outs = [fn(inputs[i : i + batch_size]) for i in range(0, len(inputs), batch_size)]
    return torch.cat(outs) if outs else torch.empty(0)


def hflip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal flip of half the batch (training augmentation).

    ``x`` is float32 (batch, 3, H, W); one ``torch.rand(batch, generator=generator)`` draw.
    """
    flip = torch.rand(len(x), generator=generator) < 0.5
    x = x.clone()
    x[flip] = x[flip].flip(-1)
    return x
