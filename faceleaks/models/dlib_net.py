"""The network of dlib's 128-D face recognition ResNet in PyTorch (architecture and input scaling).

The 29-convolution ResNet of dlib's ``examples/dnn_face_recognition_ex.cpp`` (``anet_type``) as 16
sequential stages; :func:`faceleaks.models.dlib_file.load_dlib_resnet` fills it with the weights of
dlib's ``.dat`` file. ``add_prev_`` zero-extends both inputs (top-left) to the larger shape:
channels in down-sampling units, and *space* in the last two (2x2/2 average pool 4x4 (2x2) vs
stride-2 conv 3x3 (1x1)). Import these names from :mod:`faceleaks.models.dlib_resnet`.

References
----------
.. [1] D. E. King, "Dlib-ml: A Machine Learning Toolkit", JMLR 10:1755-1758, 2009; dlib sources
   ``dlib/dnn/{layers,core,input}.h``, ``examples/dnn_face_recognition_ex.cpp``.
.. [2] [reconstructed] The stage split and ``forward_to`` / ``forward_from`` are our own.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from faceleaks.errors import ConfigError, DataError

__all__ = ["DlibResNet", "preprocess_dlib", "DLIB_MEAN_RGB", "DLIB_UNITS", "CHIP_SIZE", "Affine"]

#: (R, G, B) means subtracted by ``input_rgb_image_sized<150>``; as float32 equal to the file's.
DLIB_MEAN_RGB = (122.782, 117.001, 104.298)
#: Side of the aligned face chip, pixels.
CHIP_SIZE = 150
#: (out channels, down-samples) of dlib's 14 residual units, input to output.
DLIB_UNITS = ((32, False),) * 3 + ((64, True),) + ((64, False),) * 3 + ((128, True),) \
    + ((128, False),) * 2 + ((256, True),) + ((256, False),) * 2 + ((256, True),)


class Affine(nn.Module):
    """dlib ``affine_`` (CONV mode): ``y = gamma[c] * x + beta[c]``, gamma/beta (C,)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.beta[:, None, None], x, self.gamma[:, None, None])


def _zero_extended_add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib ``add_prev_``: sum of two (n, c, h, w) tensors zero-extended (top-left) to the max shape."""
    if a.shape == b.shape:
        return a + b
    c, h, w = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))
    pad = [(0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]) for t in (a, b)]
    return F.pad(a, pad[0]) + F.pad(b, pad[1])


class _ResidualUnit(nn.Module):
    """dlib ``ares`` / ``ares_down``: ``relu(block(x) + shortcut(x))``.

    block = con 3x3, affine, relu, con 3x3/1, affine; shortcut = identity, or when ``down`` a
    2x2/2 average pool (and the first con has stride 2, padding 0).
    """

    def __init__(self, c_in: int, c_out: int, down: bool) -> None:
        super().__init__()
        self.down = down
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=2 if down else 1, padding=0 if down else 1)
        self.aff1 = Affine(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1)
        self.aff2 = Affine(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.aff2(self.conv2(F.relu(self.aff1(self.conv1(x)))))
        return F.relu(_zero_extended_add(y, F.avg_pool2d(x, 2, 2) if self.down else x))


class DlibResNet(nn.Module):
    """dlib's face recognition ResNet as ``n_stages`` sequential stages (``self.stages``, 16 for dlib).

    ``stages[0]`` is the stem (7x7/2 conv 32, affine, relu, 3x3/2 max pool; no padding),
    ``stages[1:-1]`` the residual units, ``stages[-1]`` global average pooling and the
    bias-free linear map to the descriptor. A fresh instance is randomly initialised; use
    :func:`load_dlib_resnet` for dlib's weights.

    Parameters
    ----------
    units : sequence of (int, bool)
        Output channels and down-sampling flag per residual unit; default dlib's ``anet_type``.
    dim : int
        Descriptor length (128).

    Notes
    -----
    Activations for (n, 3, 150, 150) inputs: stem (n, 32, 35, 35), unit 4 (n, 64, 17, 17), unit 8
    (n, 128, 8, 8), unit 11 (n, 256, 4, 4), unit 14 (n, 256, 2, 2), head (n, 128).
    """

    def __init__(self, units=DLIB_UNITS, dim: int = 128) -> None:
        super().__init__()
        stages: list[nn.Module] = [nn.Sequential(nn.Conv2d(3, 32, 7, stride=2), Affine(32), nn.ReLU(),
                                                 nn.MaxPool2d(3, 2))]
        widths = [32] + [c for c, _ in units]
        stages += [_ResidualUnit(c_in, c_out, bool(down)) for c_in, (c_out, down) in zip(widths, units)]
        c = widths[-1]
        stages.append(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, dim, bias=False)))
        self.stages = nn.ModuleList(stages)

    @property
    def n_stages(self) -> int:
        """Number of stages (stem + residual units + head)."""
        return len(self.stages)

    def _check(self, i: int, name: str) -> None:
        if not 0 <= i <= self.n_stages:
            raise ConfigError(f"{name}={i} is out of range; allowed 0 .. {self.n_stages}")

    def forward_to(self, x: torch.Tensor, stop: int) -> torch.Tensor:
        """Run ``stages[:stop]`` (e.g. to cache the activations of frozen stages).

        Parameters
        ----------
        x : torch.Tensor
            float32 (n, 3, 150, 150) from :func:`preprocess_dlib`.
        stop : int
            0 .. ``n_stages``; 0 returns ``x``, ``n_stages`` the descriptors.

        Returns
        -------
        torch.Tensor
            float32 activation leaving stage ``stop - 1``.
        """
        self._check(stop, "stop")
        for stage in self.stages[:stop]:
            x = stage(x)
        return x

    def forward_from(self, h: torch.Tensor, start: int) -> torch.Tensor:
        """Run ``stages[start:]`` on ``h = forward_to(x, start)``.

        Parameters
        ----------
        h : torch.Tensor
            float32 activation entering stage ``start``.
        start : int
            0 .. ``n_stages``.

        Returns
        -------
        torch.Tensor
            float32 (n, 128) descriptors (``h`` itself if ``start == n_stages``).
        """
        self._check(start, "start")
        for stage in self.stages[start:]:
            h = stage(h)
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Descriptors exactly as dlib computes them (raw fc output, *not* L2-normalised).

        Parameters
        ----------
        x : torch.Tensor
            float32 (n, 3, 150, 150) from :func:`preprocess_dlib`.

        Returns
        -------
        torch.Tensor
            float32 (n, 128), norm ~1.5; dlib's same-person rule is Euclidean distance < 0.6.
        """
        return self.forward_from(x, 0)


def preprocess_dlib(chips: np.ndarray) -> torch.Tensor:
    """dlib's ``input_rgb_image_sized<150>``: ``(pixel - mean_rgb) / 256``, channels first.

    Parameters
    ----------
    chips : numpy.ndarray
        uint8 (n, 150, 150, 3) RGB chips aligned as ``dlib.get_face_chip`` does (see
        :func:`faceleaks.data.chips.dlib_chips`).

    Returns
    -------
    torch.Tensor
        float32 (n, 3, 150, 150), values in about [-0.48, 0.59].

    Raises
    ------
    faceleaks.errors.DataError
        Not a uint8 array of shape (n, 150, 150, 3).
    """
    if not isinstance(chips, np.ndarray) or chips.dtype != np.uint8:
        raise DataError(f"chips must be a uint8 numpy array, got {getattr(chips, 'dtype', type(chips))}")
    if chips.ndim != 4 or chips.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
        raise DataError(f"chips must have shape (n, {CHIP_SIZE}, {CHIP_SIZE}, 3), got {chips.shape}")
    x = torch.from_numpy(np.ascontiguousarray(chips)).permute(0, 3, 1, 2).float()
    return ((x - torch.tensor(DLIB_MEAN_RGB)[:, None, None]) / 256.0).contiguous()
