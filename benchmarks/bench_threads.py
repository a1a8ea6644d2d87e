"""In-process query speed of a saved student from the main thread and from a worker thread, at 1 and 2 torch threads.

Why the main thread once measured 20 images/s against 73-139 from a worker thread (README, "Audit a
student API"): run it twice, once as is and once with ``OMP_WAIT_POLICY=PASSIVE`` in the environment
(OpenMP reads it at start-up), and compare. Prints images per second per case and the 1-minute load
average beside it; no assertion (figures depend on the machine's load).

    python benchmarks/bench_threads.py --run RUN_DIR [--seconds 8]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_http import _in_process_loop, local_box  # noqa: E402


def measure(box, *, threads: int, worker: bool, seconds: float, seed: int) -> float:
    """Images per second at batch 64, ``threads`` torch threads, from a worker thread or the main one."""
    out: list = []

    def body() -> None:
        torch.set_num_threads(threads)
        _in_process_loop(box, seconds, 64, out, seed)

    if worker:
        t = threading.Thread(target=body)
        t.start()
        t.join()
    else:
        body()
    return out[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, required=True, help="--out folder of a faceleaks run")
    p.add_argument("--student", default="lfw-identity")
    p.add_argument("--seconds", type=float, default=8.0, help="seconds per case")
    a = p.parse_args()
    box = local_box(a.run / "students" / "victim" / a.student)
    print(f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(not set)')}, {os.cpu_count()} CPUs")
    for seed, (threads, worker) in enumerate([(2, False), (2, True), (1, False), (1, True), (2, False)]):
        ips = measure(box, threads=threads, worker=worker, seconds=a.seconds, seed=3000 + seed)
        print(f"{'worker' if worker else 'main  '} thread, {threads} torch threads: {ips:6.1f} images/s "
              f"(load {os.getloadavg()[0]:.1f})", flush=True)


if __name__ == "__main__":
    main()
