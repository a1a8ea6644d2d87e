"""Activations of dlib's frozen first stages, computed once per chip and cached on disk.

Every dlib teacher (victim, shadow, control, base) starts from the same frozen stages, so their
activations are computed once per distinct chip (memoised by content with
:class:`faceleaks.memo.ImageMemo`) and kept as ``.npz`` shards under the cache folder.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import torch

from faceleaks.atomic import atomic_write_with
from faceleaks.memo import ImageMemo, image_keys
from faceleaks.models.dlib_resnet import DlibResNet, load_dlib_resnet, preprocess_dlib
from faceleaks.progress import track

__all__ = ["ActivationStore", "activation_store", "dlib_base_network"]

_BASE: list[DlibResNet] = []


def dlib_base_network() -> DlibResNet:
    """dlib's public face ResNet with its own weights, loaded once per process (eval mode, CPU)."""
    if not _BASE:
        _BASE.append(load_dlib_resnet())
    return _BASE[0]


class ActivationStore:
    """Activations entering stage ``stop`` of dlib's base network, per chip, memoised by content.

    ``get(chips)`` returns float32 (n, C, h, w); new ones are computed in batches of exactly
    ``BATCH`` (the last one zero-padded) and appended to ``<cache_dir>/dlib-activations/stop<stop>-batch32/``
    as one ``.npz`` shard per call. The fixed batch shape matters: with a smaller batch the CPU
    kernels differ in the last bits (~2e-6), training amplifies that, and a run would then depend on
    which chips an earlier run had cached (measured: up to 0.13 AUC on ``--quick``). With it, a chip's
    activations are bitwise the same whatever it is computed with, so results do not depend on the
    cache's state.

    Parameters
    ----------
    stop : int, 0 .. 16, the stage the activations enter
    cache_dir : folder of the on-disk shards, or None to keep them in memory only
    """

    BATCH = 32

    def __init__(self, stop: int, cache_dir: Path | None) -> None:
        self.stop = stop
        self.folder = Path(cache_dir) / "dlib-activations" / f"stop{stop}-batch{self.BATCH}" if cache_dir else None
        self._memo = ImageMemo()
        if self.folder and self.folder.exists():
            for shard in sorted(self.folder.glob("*.npz")):
                if not shard.name.endswith(".tmp.npz"):  # a temporary of a killed run is never read
                    self._load_shard(shard)

    def _load_shard(self, shard: Path) -> None:
        """Memoise one shard; a torn or foreign one is logged and skipped (its chips are computed again)."""
        try:
            with np.load(shard) as z:
                self._memo.update([bytes(k) for k in z["keys"]], z["acts"])
        except Exception as err:  # noqa: BLE001  torn or foreign (numpy may even raise SyntaxError): skipped
            logging.getLogger(__name__).warning("skipping unreadable activation shard %s: %s: %s", shard,
                                                type(err).__name__, " ".join(str(err).split())[:200])

    def get(self, chips: np.ndarray) -> np.ndarray:
        """Activations of ``chips`` (n, 150, 150, 3) uint8 dlib chips: float32 (n, C, h, w)."""
        keys = image_keys(chips)
        todo = self._memo.missing(keys)  # first occurrence of each unseen chip, in input order
        if todo:
            acts = self._forward(chips[todo])
            new_keys = [keys[i] for i in todo]
            self._memo.update(new_keys, acts)
            self._save(new_keys, acts)
        return self._memo.get(chips, self._forward, keys=keys, empty_shape=(0,))

    def _forward(self, chips: np.ndarray) -> np.ndarray:
        """float32 activations of distinct chips, computed in zero-padded batches of ``BATCH``."""
        net, b = dlib_base_network(), self.BATCH
        acts = []
        for s in track(range(0, len(chips), b), f"dlib ResNet on {len(chips)} new chip{'s' if len(chips) != 1 else ''}"):
            x = preprocess_dlib(chips[s : s + b])
            n = len(x)
            if n < b:  # always a full batch: a chip's activations then do not depend on its batch-mates
                x = torch.cat([x, x.new_zeros((b - n, *x.shape[1:]))])
            with torch.no_grad():
                acts.append(net.forward_to(x, self.stop)[:n].numpy())
        return np.concatenate(acts).astype(np.float32)

    def _save(self, keys: list[bytes], acts: np.ndarray) -> None:
        if self.folder is None:
            return
        name = hashlib.sha1(b"".join(keys)).hexdigest()[:16]
        key_array = np.array([np.frombuffer(k, np.uint8) for k in keys])
        atomic_write_with(self.folder / f"{name}.npz", lambda fh: np.savez(fh, keys=key_array, acts=acts))


_STORES: dict[tuple[int, str], ActivationStore] = {}


def activation_store(stop: int, cache_dir: Path | None) -> ActivationStore:
    """The process-wide store for (stop, cache folder): its shards are read from disk once."""
    key = (stop, str(Path(cache_dir).resolve()) if cache_dir else "")
    if key not in _STORES:
        _STORES[key] = ActivationStore(stop, cache_dir)
    return _STORES[key]
