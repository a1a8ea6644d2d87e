"""Chip cache: seconds per photo to load N LFW photos cold (chipped and cached) and warm (cache hits).

Run from a checkout: ``python benchmarks/bench_chip_cache.py [N]`` (real LFW: ``FACELEAKS_DATA_DIR`` or
``../shared/data``). Uses a fresh temporary cache, so the shared one is neither read nor filled.
Prints measured figures only.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from faceleaks.data.chips import DlibChipper
from faceleaks.data.faces import load_faces
from faceleaks.data.lfw import find_lfw_root, index_lfw


def main(n: int) -> None:
    records = index_lfw(find_lfw_root(None, download=False))[:n]
    args = ([r.path for r in records], [r.image_id for r in records], [r.identity for r in records], DlibChipper())
    with tempfile.TemporaryDirectory() as tmp:
        for label in ("cold", "warm", "warm"):
            start = time.perf_counter()
            faces = load_faces(*args, cache_dir=Path(tmp))
            seconds = time.perf_counter() - start
            print(f"{label}: {len(faces)} photos in {seconds:.2f} s ({1e3 * seconds / len(records):.3f} ms per photo)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
