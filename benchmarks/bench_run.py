"""Time a whole run, cold (empty cache) and warm (rerun), and print per-stage seconds.

    python benchmarks/bench_run.py            # the --quick preset
    python benchmarks/bench_run.py --default  # the default settings (several minutes)

Goals (2-core machine): default cold run <= 10 min, --quick <= 90 s; a warm rerun much faster.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from faceleaks.config import ExperimentConfig, quick_config
from faceleaks.evaluation.experiment import run_experiment
from faceleaks.progress import set_enabled


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--default", action="store_true", help="default settings instead of --quick")
    parser.add_argument("--teacher", default=None)
    args = parser.parse_args()
    set_enabled(False)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = ExperimentConfig() if args.default else quick_config()
        if args.teacher:
            import dataclasses

            cfg = dataclasses.replace(cfg, teacher=dataclasses.replace(cfg.teacher, kind=args.teacher))
        for label in ("cold", "warm"):
            out = Path(tmp) / label
            out.mkdir()
            t0 = time.perf_counter()
            record = run_experiment(cfg, out_dir=out, cache_dir=Path(tmp) / "cache")
            total = time.perf_counter() - t0
            stages = ", ".join(f"{k} {v:.1f}" for k, v in record.timings_s.items())
            print(f"{'default' if args.default else 'quick'} {cfg.teacher.kind} {label}: {total:.1f} s ({stages})")


if __name__ == "__main__":
    main()
