"""The wire format of the student API: a NumPy ``.npy`` batch of face crops, checked before allocating.

[reconstructed] A query body is one ``.npy`` file (format 1.0/2.0, ``allow_pickle=False``) of
uint8 (n, S, S, 3) RGB crops. The server reads its header alone (``numpy.lib.format``: magic,
then the header dict, at most a few hundred bytes) and checks dtype, order, shape and the item
count against its limits, and the body length against the header's claim, **before** any array
is built; the array is then a zero-copy view of the body (``np.frombuffer``). A header that
claims a million images is refused from its first 128 bytes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from numpy.lib import format as npy_format

__all__ = ["WireError", "Limits", "encode_images", "parse_header", "decode_images", "NPY_TYPES"]

NPY_TYPES = ("application/x-npy", "application/octet-stream")
_MAX_HEADER = 4096


class WireError(Exception):
    """A query body that cannot be answered; ``status`` is the HTTP code (400, 413, 415, 422)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Limits:
    """Server-side limits of one request.

    Attributes
    ----------
    max_body : int, bytes of a request body (413 above it)
    max_batch : int, images per request (413 above it)
    rate : float, requests per second per key (token bucket; 429 above it; 0: no limit)
    burst : int, requests a key may send at once before the rate applies
    """

    max_body: int = 32 * 1024 * 1024
    max_batch: int = 256
    rate: float = 200.0
    burst: int = 50


def encode_images(images: np.ndarray) -> bytes:
    """``.npy`` bytes of a uint8 (n, S, S, 3) batch (C order, no pickle)."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(images), allow_pickle=False)
    return buf.getvalue()


def parse_header(head: bytes, size: int, limits: Limits) -> tuple[tuple[int, ...], int]:
    """``(shape, offset)`` of a ``.npy`` body from its first bytes, checked against the limits.

    Parameters
    ----------
    head : the first bytes of the body (at least the whole header; 4,096 are always enough)
    size : side S, pixels, of the crops the student takes
    limits : ``Limits`` (``max_batch``)

    Raises
    ------
    WireError
        422 for a body that is not a ``.npy`` (naming what it looks like), a pickled or non-uint8
        array, a wrong shape; 413 for more than ``max_batch`` images.
    """
    f = io.BytesIO(head)
    try:
        major, _ = npy_format.read_magic(f)
        reader = npy_format.read_array_header_1_0 if major == 1 else npy_format.read_array_header_2_0
        shape, fortran, dtype = reader(f, max_header_size=_MAX_HEADER)
    except (ValueError, EOFError, SyntaxError) as err:
        kind = "JSON" if head[:1] in (b"{", b"[") else "a JPEG" if head[:2] == b"\xff\xd8" else "not a .npy file"
        raise WireError(422, f"the body is {kind}: send one .npy array of uint8 (n, {size}, {size}, 3) RGB crops "
                             f"(numpy.save, allow_pickle=False)") from err
    if dtype != np.uint8 or fortran:
        raise WireError(422, f"images must be a C-order uint8 array, got {dtype} (fortran_order={fortran})")
    if len(shape) != 4 or tuple(shape[1:]) != (size, size, 3):
        raise WireError(422, f"images must have shape (n, {size}, {size}, 3), got {tuple(shape)}")
    if shape[0] > limits.max_batch:
        raise WireError(413, f"{shape[0]} images in one request; this API takes at most {limits.max_batch}: "
                             "send smaller batches")
    return tuple(int(s) for s in shape), f.tell()


def decode_images(body: bytes, size: int, limits: Limits) -> np.ndarray:
    """The uint8 (n, size, size, 3) array of a whole ``.npy`` body (a read-only view of it).

    Raises
    ------
    WireError
        As ``parse_header``; 422 naming the first incomplete item when the body is shorter than its
        header claims, or when bytes follow the last item.
    """
    if not body:
        raise WireError(422, f"empty body: send one .npy array of uint8 (n, {size}, {size}, 3) RGB crops")
    shape, offset = parse_header(body[:_MAX_HEADER], size, limits)
    item = size * size * 3
    have, need = len(body) - offset, shape[0] * item
    if have < need:
        raise WireError(422, f"item {have // item} of {shape[0]} is truncated: the body holds {have} of the "
                             f"{need} image bytes its header claims")
    if have > need:
        raise WireError(422, f"{have - need} bytes follow the last of the {shape[0]} images the header declares")
    return np.frombuffer(body, np.uint8, count=need, offset=offset).reshape(shape)
