"""Model weights as ``state_dict`` files with a JSON metadata sidecar (no pickled objects).

Two uses: the teacher cache (``save_checkpoint`` / ``load_checkpoint``: a missing checkpoint is
``None``, a hit is reused) and saved artifacts (``save_weights`` / ``load_weights``: the sidecar
also holds the SHA-256 of the weights file, so an edited or truncated file is refused). Weights
are read with ``torch.load(weights_only=True)``, which unpickles tensors and plain containers only.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from faceleaks.atomic import atomic_write_bytes, atomic_write_text, atomic_write_with
from faceleaks.errors import ArtifactError

__all__ = ["config_key", "chips_digest", "is_stale", "save_checkpoint", "load_checkpoint", "save_weights", "load_weights", "read_sidecar", "error_line"]

CHECKPOINT_VERSION = 1


def config_key(*parts: Any) -> str:
    """A short stable hash of JSON-serialisable parts (configuration, image ids, seed)."""
    blob = json.dumps([CHECKPOINT_VERSION, *parts], sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def chips_digest(images: np.ndarray, image_ids: np.ndarray) -> str:
    """Hex SHA-256 of the training images' content, in image-id order (the order they come in does not count).

    ``images`` (n, S, S, 3) uint8, ``image_ids`` (n,) str. A teacher's checkpoint records it
    (``chips_sha256``), so a photo edited in place under the same id makes the cached teacher stale.
    """
    h = hashlib.sha256()
    for i in np.argsort(np.asarray(image_ids).astype(str), kind="stable"):
        h.update(str(image_ids[i]).encode() + b"\0" + np.ascontiguousarray(images[i]).tobytes())
    return h.hexdigest()


def is_stale(meta: dict[str, Any], digest: str, path: Path) -> bool:
    """Whether a cached teacher's ``meta`` records training images other than ``digest`` (logged);
    checkpoints from before digests were recorded are taken as they are."""
    recorded = meta.get("chips_sha256")
    if recorded is None or recorded == digest:
        return False
    logging.getLogger(__name__).warning("%s was trained on other images under the same ids (edited photos?): "
                                        "training it again", path)
    return True


def error_line(err: BaseException) -> str:
    """The first line of an error's message (torch's unpickling errors span many lines)."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"[:200]


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (Path, np.ndarray)):
        return str(value) if isinstance(value, Path) else value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def save_checkpoint(path: Path, state: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write ``path`` (.pt state_dict) and ``path.json``, each atomically (``faceleaks.atomic``); weights first.

    The sidecar records the weights' SHA-256, so a cached file damaged later is detected on load.
    """
    path = Path(path)
    buf = io.BytesIO()
    torch.save(state, buf)
    data = buf.getvalue()
    atomic_write_bytes(path, data)
    side = {"version": CHECKPOINT_VERSION, **meta, "weights_sha256": hashlib.sha256(data).hexdigest()}
    atomic_write_text(path.with_suffix(".json"), json.dumps(side, indent=1))


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """Return (state_dict, meta), or None if no usable checkpoint exists at ``path``.

    A torn, corrupt or altered cached checkpoint (e.g. left by a killed run; its bytes no longer
    match the SHA-256 in the sidecar, where the sidecar has one) is logged and treated as missing, so
    it is trained and written again: a cache entry is never fatal. Raises ``ArtifactError`` (one
    line) if the files are of another version.
    """
    path = Path(path)
    side = path.with_suffix(".json")
    if not path.exists() or not side.exists():
        return None
    try:
        meta = json.loads(side.read_text())
        data = path.read_bytes()
        digest = meta.pop("weights_sha256", None)  # checkpoints cached before it was recorded have none
        if digest is not None and hashlib.sha256(data).hexdigest() != digest:
            raise ValueError("its bytes do not match the SHA-256 in its sidecar")
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001  any unreadable cache entry is rebuilt, never fatal
        logging.getLogger(__name__).warning("cached checkpoint %s is unreadable (%s): training it again",
                                            path, error_line(err))
        return None
    if meta.get("version") != CHECKPOINT_VERSION:
        raise ArtifactError(f"checkpoint {path} has version {meta.get('version')}, expected {CHECKPOINT_VERSION}")
    return state, meta


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_weights(path: Path, state: dict[str, torch.Tensor] | None, meta: dict[str, Any]) -> None:
    """Write ``path.json`` (``meta``, version, the weights' and its own SHA-256) and, unless ``state`` is None, ``path``.

    Parameters
    ----------
    path : the ``.pt`` file; the sidecar is ``path`` with suffix ``.json``
    state : tensors by name (a ``state_dict``), or None for an artifact that is metadata only
    meta : JSON-serialisable metadata (numpy scalars and arrays are converted)
    """
    path = Path(path)
    digest = None
    if state is not None:
        tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
        atomic_write_with(path, lambda fh: torch.save(tensors, fh))
        digest = _sha256(path)
    side = json.loads(json.dumps({"version": CHECKPOINT_VERSION, **meta, "weights_sha256": digest}, default=_jsonable))
    side["sidecar_sha256"] = _meta_digest(side)
    atomic_write_text(path.with_suffix(".json"), json.dumps(side, indent=1))


def _meta_digest(meta: dict[str, Any]) -> str:
    """SHA-256 of the sidecar's content without its own digest (canonical JSON)."""
    body = {k: v for k, v in meta.items() if k != "sidecar_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def read_sidecar(path: Path) -> dict[str, Any]:
    """The JSON sidecar ``save_weights`` wrote for ``path`` (``path`` with suffix ``.json``), checked.

    Raises
    ------
    ArtifactError
        Missing, not JSON, not an object, of another version, or edited since it was written
        (its ``sidecar_sha256`` no longer matches; one-line message).
    """
    side = Path(path).with_suffix(".json")
    try:
        meta = json.loads(side.read_text())
    except (OSError, ValueError) as err:
        raise ArtifactError(f"{side} is missing or unreadable ({error_line(err)}); save the model again") from err
    if not isinstance(meta, dict) or meta.get("version") != CHECKPOINT_VERSION:
        version = meta.get("version") if isinstance(meta, dict) else None
        raise ArtifactError(f"{side} has version {version!r}, expected {CHECKPOINT_VERSION}; save the model again")
    if meta.get("sidecar_sha256") != _meta_digest(meta):
        raise ArtifactError(f"{side} was edited (its content no longer matches its recorded SHA-256); save the model again")
    return meta


def load_weights(path: Path) -> tuple[dict[str, torch.Tensor] | None, dict[str, Any]]:
    """Read what ``save_weights`` wrote: (state or None, meta), refusing edited or corrupt files.

    Raises
    ------
    ArtifactError
        Sidecar missing / unreadable / of another version, weights missing, their SHA-256 not the
        recorded one (edited or truncated), or not a dict of tensors (one-line message).
    """
    path = Path(path)
    meta = read_sidecar(path)
    digest = meta.get("weights_sha256")
    if digest is None:
        return None, meta
    try:
        actual = _sha256(path)
    except OSError as err:
        raise ArtifactError(f"weights file {path} is missing or unreadable ({error_line(err)}); save the model again") from err
    if actual != digest:
        raise ArtifactError(f"weights file {path} was modified or truncated (SHA-256 {actual[:12]}, recorded "
                            f"{str(digest)[:12]}); save the model again")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, ValueError, RuntimeError, EOFError, pickle.UnpicklingError) as err:
        raise ArtifactError(f"weights file {path} is unreadable ({error_line(err)}); save the model again") from err
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ArtifactError(f"weights file {path} does not hold a dict of tensors; save the model again")
    return state, meta
