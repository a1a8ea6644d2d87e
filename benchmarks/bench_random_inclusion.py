"""Time the random-inclusion (N-victim) run and print its per-victim and per-identity cost.

    python benchmarks/bench_random_inclusion.py                       # N chosen for 3,000 non-member decisions
    python benchmarks/bench_random_inclusion.py --victims 16 --cache DIR --out DIR
    python benchmarks/bench_random_inclusion.py --cold                # empty cache first, then a rerun

Goal (2-core machine): the N-victim run <= 30 min. Prints measured figures only; the machine's load
average is printed beside them, since other jobs on the machine slow every figure down.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from faceleaks.config import ExperimentConfig, load_config
from faceleaks.evaluation.random_inclusion import run_random_inclusion
from faceleaks.progress import set_enabled
from faceleaks.report.inclusion import write_inclusion_report


def _once(cfg: ExperimentConfig, n_victims: int | None, out: Path, cache: Path, label: str) -> None:
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    record = run_random_inclusion(cfg, out_dir=out, cache_dir=cache, n_victims=n_victims)
    total = time.perf_counter() - t0
    write_inclusion_report(record, out)
    c = record.cost
    stages = ", ".join(f"{k} {v:.1f}" for k, v in record.timings_s.items())
    print(f"{label}: N = {record.n_victims} victims, pool {len(record.pool.people)} people, {total:.1f} s "
          f"({stages}); load average {load0:.1f} -> {os.getloadavg()[0]:.1f}")
    print(f"  per victim {c.seconds_per_victim:.2f} s; per audited (victim, person) pair "
          f"{c.seconds_per_audited_identity * 1000:.2f} ms and {c.victim_queries_per_audited_identity:.1f} victim queries; "
          f"victims fine-tuned now {c.n_trained_this_run}, fine-tuning seconds recorded {c.train_seconds}")
    measured = [v.seconds for v in record.victims if not v.resumed]
    if measured:
        print(f"  students + statistics per victim: mean {sum(measured) / len(measured):.2f} s over {len(measured)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--victims", type=int, default=None, help="N (default: chosen for 3,000 non-member decisions)")
    parser.add_argument("--config", type=Path, default=None, help="TOML settings (e.g. another recipe)")
    parser.add_argument("--cache", type=Path, default=None, help="cache folder (default: a fresh temporary one)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: temporary)")
    parser.add_argument("--cold", action="store_true", help="with a fresh cache, run twice: cold, then warm")
    args = parser.parse_args()
    set_enabled(False)
    cfg = load_config(args.config, ExperimentConfig()) if args.config else ExperimentConfig()
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache or Path(tmp) / "cache"
        out = args.out or Path(tmp) / "out"
        _once(cfg, args.victims, out / "first", cache, "first" if args.cache else "cold")
        if args.cold or not args.cache:
            _once(cfg, args.victims, out / "second", cache, "warm (cached teachers, new output folder)")


if __name__ == "__main__":
    main()
