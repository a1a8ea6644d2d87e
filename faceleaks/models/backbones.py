"""Embedding networks for the teacher.

``ScratchCNN``: a small 4-block CNN trained from scratch on 64x64 crops (fast on 2 CPU cores,
~200 images/s training). It is the quick teacher and the ablation for teacher quality.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["ScratchCNN", "to_tensor"]

# Per-channel mean / std of LFW central crops, in [0, 1] units; fixed so preprocessing is public.
_MEAN = torch.tensor([0.55, 0.43, 0.37]).view(1, 3, 1, 1)
_STD = torch.tensor([0.27, 0.24, 0.24]).view(1, 3, 1, 1)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (n, H, W, 3) RGB → float32 (n, 3, H, W), normalised with fixed LFW statistics."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
    return (x - _MEAN) / _STD


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class ScratchCNN(nn.Module):
    """4 conv blocks (32-64-128-256 channels, each halving the side) → global average pool → linear.

    Input: float32 (n, 3, H, W) from ``to_tensor`` (H = W = 64 by default). Output: float32
    (n, embedding_dim) embedding (not normalised). [reconstructed]: the paper's teacher is a large
    pre-trained network; this is a small stand-in.
    """

    def __init__(self, embedding_dim: int = 128) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        self.features = nn.Sequential(_block(3, 32), _block(32, 64), _block(64, 128), _block(128, 256))
        self.embed = nn.Linear(256, embedding_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x).mean(dim=(2, 3))
        return self.embed(h)
