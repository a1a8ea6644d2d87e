"""Model weights as ``state_dict`` files with a JSON metadata sidecar (no pickled objects)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from faceleaks.errors import ArtifactError

__all__ = ["config_key", "save_checkpoint", "load_checkpoint"]

CHECKPOINT_VERSION = 1


def config_key(*parts: Any) -> str:
    """A short stable hash of JSON-serialisable parts (configuration, image ids, seed)."""
    blob = json.dumps([CHECKPOINT_VERSION, *parts], sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def save_checkpoint(path: Path, state: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write ``path`` (.pt state_dict) and ``path.json`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)
    path.with_suffix(".json").write_text(json.dumps({"version": CHECKPOINT_VERSION, **meta}, indent=1))


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """Return (state_dict, meta), or None if no checkpoint exists at ``path``.

    Raises ``ArtifactError`` if the files exist but are corrupt or of another version.
    """
    path = Path(path)
    side = path.with_suffix(".json")
    if not path.exists() or not side.exists():
        return None
    try:
        meta = json.loads(side.read_text())
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, ValueError, RuntimeError) as err:
        raise ArtifactError(f"cached checkpoint {path} is unreadable ({err}); delete it to retrain") from err
    if meta.get("version") != CHECKPOINT_VERSION:
        raise ArtifactError(f"checkpoint {path} has version {meta.get('version')}, expected {CHECKPOINT_VERSION}")
    return state, meta
