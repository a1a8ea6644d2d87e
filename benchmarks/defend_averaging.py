"""How much the averaging attack undoes output noise: AUC of the consistency gap on noisy posteriors,
plain and averaged over n repeats (jittered or identical), against fresh and HMAC-seeded noise.

    python benchmarks/defend_averaging.py [--quick] [--sigma 0.05] [--out DIR]

Prints one line per (setting, attack): AUC [95 % CI], queries sent to the victim box, seconds.
Uses ``faceleaks.evaluation.defend.run_defend`` (cached teachers; results under DIR/defend/).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

from faceleaks.cli.main import default_cache_dir
from faceleaks.config import AttackSpec, ExperimentConfig, quick_config
from faceleaks.config.defence import DefenceSetting, DefendConfig, OutputDefenceSpec
from faceleaks.evaluation.defend import run_defend


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sigma", type=float, default=0.05)
    parser.add_argument("--out", type=Path, default=Path("/tmp/faceleaks-defend-averaging"))
    args = parser.parse_args()
    cfg = replace(quick_config() if args.quick else ExperimentConfig(), output_dir=str(args.out))
    s = args.sigma
    grid = (DefenceSetting(f"gauss-{s}", OutputDefenceSpec("gaussian", {"sigma": s})),
            DefenceSetting(f"gauss-{s}-hmac", OutputDefenceSpec("gaussian", {"sigma": s, "same_noise_per_image": True})))
    attacks = (AttackSpec("base-diff", {"statistic": "consistency_gap"}),
               *(AttackSpec("averaging", {"n_repeats": n, "variants": v, "floor": f})
                 for n, v, f in ((4, "jitter", s / 2), (16, "jitter", s / 4), (16, "jitter", 0.0),
                                 (4, "same", s / 2))))
    t0 = time.perf_counter()
    records = run_defend(cfg, DefendConfig(grid=grid, attacks=attacks), out_dir=args.out, cache_dir=default_cache_dir())
    for r in records:
        for m in r.membership:
            if m.level == "identity":
                print(f"{r.setting:18s} {m.attack:48s} AUC {m.auc:.3f} [{m.auc_ci[0]:.2f}, {m.auc_ci[1]:.2f}] "
                      f"queries {m.n_queries:6d} {m.seconds:6.1f} s")
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
