"""Loopback load test of `faceleaks serve`, and HTTP vs in-process throughput at batch 64 (issue 15).

Serves a student saved by a run (`faceleaks serve` in a subprocess on 127.0.0.1, a temporary key
store, no rate limit), then for each concurrency level sends batches of fresh random 150x150 crops
(fresh so that no memo answers them) from that many client threads for `--seconds`, and prints
throughput (images/s), p50/p99 request latency and the error count. The ratio compares the same
student (`LocalBlackBox`) queried in this process from a worker thread, as the server calls it,
with HTTP at concurrency 1, in `--rounds` alternating windows of `--window` s (so both sides see
the same load on a shared machine); the main-thread figure is printed for reference. Stops by
itself; only 127.0.0.1 is used.

    python benchmarks/bench_http.py --run faceleaks-out --student lfw-identity [--seconds 60] [--rounds 4 --window 20]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from faceleaks.serving.keys import KeyStore  # noqa: E402
from faceleaks.serving.server import free_port  # noqa: E402
from faceleaks.serving.wire import encode_images  # noqa: E402


def _batches(seed: int, batch: int, size: int):
    rng = np.random.default_rng(seed)
    while True:
        yield rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8)


def _in_process_loop(box, seconds: float, batch: int, out: list, seed: int) -> None:
    n, start, gen = 0, time.perf_counter(), _batches(seed, batch, box.input_size)
    while time.perf_counter() - start < seconds:
        box.query(next(gen))
        n += batch
    out.append(n / (time.perf_counter() - start))


def local_box(folder: Path):
    """The student saved in ``folder`` as an in-process box, warmed up (progress bars off)."""
    from faceleaks.models.saving import load_student
    from faceleaks.progress import set_enabled
    from faceleaks.serving.local import LocalBlackBox

    set_enabled(False)
    box = LocalBlackBox(load_student(folder))
    box.query(next(_batches(99, 64, box.input_size)))
    return box


def in_process(box, seconds: float, batch: int, *, thread: bool, seed: int) -> float:
    """Images per second of ``box`` queried in this process, from the main thread or a worker thread
    (as the server calls it: ``run_in_threadpool``); ``seed`` must differ between calls, so that
    no image is answered from the student's memo."""
    out: list = []
    if not thread:
        _in_process_loop(box, seconds, batch, out, seed)
        return out[0]
    worker = threading.Thread(target=_in_process_loop, args=(box, seconds, batch, out, seed))
    worker.start()
    worker.join()
    return out[0]


def _worker(url, secret, seed, batch, size, stop_at, lat, errors, counts) -> None:
    gen = _batches(seed, batch, size)
    with httpx.Client(timeout=600) as client:
        while time.perf_counter() < stop_at:
            body = encode_images(next(gen))
            t = time.perf_counter()
            try:
                r = client.post(f"{url}/query", content=body,
                                headers={"X-API-Key": secret, "content-type": "application/x-npy"})
                ok = r.status_code == 200
            except httpx.HTTPError:
                ok = False
            lat.append(time.perf_counter() - t)
            counts.append(batch if ok else 0)
            errors.append(0 if ok else 1)


def load_level(url: str, secret: str, concurrency: int, seconds: float, batch: int, size: int, seed: int = 0) -> dict:
    """Throughput and latency of ``concurrency`` client threads for ``seconds`` (fresh images per seed)."""
    lat, errors, counts = [], [], []
    start = time.perf_counter()
    threads = [threading.Thread(target=_worker, args=(url, secret, 1000 * concurrency + 100 * seed + i, batch, size,
                                                      start + seconds, lat, errors, counts))
               for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    ms = np.array(lat) * 1000
    return {"concurrency": concurrency, "requests": len(lat), "images_per_s": sum(counts) / elapsed,
            "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)), "errors": int(sum(errors))}


def _start_server(run: Path, student: str, keys: Path, port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "faceleaks.cli.main", "serve", str(run), "--student", student, "--keys", str(keys),
           "--port", str(port), "--rate", "0", "--max-batch", "256"]
    proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not start within 120 s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, required=True, help="--out folder of a faceleaks run")
    p.add_argument("--student", default="lfw-identity")
    p.add_argument("--role", default="victim")
    p.add_argument("--seconds", type=float, default=60.0, help="seconds per concurrency level")
    p.add_argument("--concurrency", default="1,4,16")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--rounds", type=int, default=4, help="alternating in-process / HTTP windows for the ratio")
    p.add_argument("--window", type=float, default=20.0, help="seconds per window of the ratio")
    a = p.parse_args()
    folder = a.run / "students" / a.role / a.student
    print(f"student {a.role}/{a.student}, batch {a.batch}, {a.seconds:g} s per level, {os.cpu_count()} CPUs")
    box = local_box(folder)
    with tempfile.TemporaryDirectory() as tmp:
        store = KeyStore(Path(tmp) / "keys.sqlite")
        _, secret = store.create("bench", budget=10**12)
        port = free_port()
        server = _start_server(a.run, a.student, Path(tmp) / "keys.sqlite", port)
        try:
            url = f"http://127.0.0.1:{port}"
            load_level(url, secret, 1, min(5.0, a.seconds), a.batch, 150, seed=7)  # warm-up (model load)
            for c in [int(c) for c in a.concurrency.split(",")]:
                r = load_level(url, secret, c, a.seconds, a.batch, 150)
                print(f"HTTP concurrency {c:>2}: {r['images_per_s']:.1f} images/s, p50 {r['p50_ms']:.0f} ms, "
                      f"p99 {r['p99_ms']:.0f} ms per request of {a.batch}, {r['requests']} requests, {r['errors']} errors")
            ratios = []
            for i in range(a.rounds):  # alternate, so both sides see the same load on a shared machine
                local = in_process(box, a.window, a.batch, thread=True, seed=500 + i)
                http = load_level(url, secret, 1, a.window, a.batch, 150, seed=20 + i)["images_per_s"]
                ratios.append(http / local)
                print(f"round {i + 1}: in-process {local:.1f} images/s (worker thread), HTTP {http:.1f}, ratio {http / local:.2f}")
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"in-process from the main thread: {in_process(box, a.window, a.batch, thread=False, seed=600):.1f} images/s")
    print(f"HTTP / in-process throughput at batch {a.batch}, concurrency 1: median {np.median(ratios):.2f} "
          f"over {a.rounds} alternating rounds of {a.window:g} s (min {min(ratios):.2f}, max {max(ratios):.2f})")


if __name__ == "__main__":
    main()
