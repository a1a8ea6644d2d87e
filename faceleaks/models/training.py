"""One supervised training loop (mini-batch Adam, cross-entropy) and batched inference."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from faceleaks.progress import track

__all__ = ["fit_classifier", "predict_batches", "configure_torch"]


def configure_torch(threads: int) -> None:
    """Set the torch thread count deliberately and flush denormals (faster on CPU)."""
    torch.set_num_threads(int(threads))
    torch.set_flush_denormal(True)


def fit_classifier(
    model: nn.Module, inputs: torch.Tensor, labels: np.ndarray, *, epochs: int, batch_size: int,
    learning_rate: float, weight_decay: float, generator: torch.Generator,
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    description: str = "training",
) -> list[float]:
    """Train ``model`` (inputs → logits) with Adam; returns the mean loss of each epoch.

    Parameters
    ----------
    inputs : Tensor of shape (n, ...), float32
    labels : ndarray of shape (n,), int64 in [0, n_classes)
    generator : torch.Generator seeding shuffling and augmentation
    """
    y = torch.as_tensor(labels, dtype=torch.long)
    opt = torch.optim.Adam(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
    loss_fn = nn.CrossEntropyLoss()
    history = []
    model.train()
    for _ in track(range(epochs), description):
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


@torch.no_grad()
def predict_batches(fn: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor,
                    batch_size: int = 256) -> torch.Tensor:
    """Apply ``fn`` to ``inputs`` in batches under ``no_grad``; returns the concatenated outputs."""
    outs = [fn(inputs[i : i + batch_size]) for i in range(0, len(inputs), batch_size)]
    return torch.cat(outs) if outs else torch.empty(0)


def hflip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal flip of half the batch (training augmentation)."""
    flip = torch.rand(len(x), generator=generator) < 0.5
    x = x.clone()
    x[flip] = x[flip].flip(-1)
    return x
