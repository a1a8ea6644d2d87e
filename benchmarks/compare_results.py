"""Compare the membership results of two runs (e.g. before and after a refactor).

Usage: ``python benchmarks/compare_results.py BEFORE/results.json AFTER/results.json``

Rows are matched by (teacher, student, setting, level, attack, k). Prints how many rows each run
has, the rows only one has, and the largest absolute differences in AUC, in the CI bounds and in
TPR at each FPR (a null on both sides counts as equal). Reads the JSON loosely, so results of any
schema version can be compared; exits 1 if any AUC differs by more than ``--auc-tol``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys


def _rows(path: str) -> dict[tuple, dict]:
    with open(path) as fh:
        raw = json.load(fh)
    return {(r["teacher"], r["student"], r["setting"], r["level"], r["attack"], r["k"]): r
            for r in raw["membership"]}


def _diff(a, b) -> float:
    if a is None and b is None:
        return 0.0
    if a is None or b is None or (isinstance(a, float) and math.isnan(a)) != (isinstance(b, float) and math.isnan(b)):
        return math.inf
    return abs(float(a) - float(b))


def _tprs(row: dict) -> dict[float, float | None]:
    return {float(k): v for k, v in row["tpr_at_fpr"].items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--auc-tol", type=float, default=0.0)
    parser.add_argument("--show", type=int, default=10, help="largest differences to list")
    args = parser.parse_args(argv)
    before, after = _rows(args.before), _rows(args.after)
    common = sorted(set(before) & set(after))
    print(f"rows: before {len(before)}, after {len(after)}, common {len(common)}")
    for name, only in (("only before", set(before) - set(after)), ("only after", set(after) - set(before))):
        for key in sorted(only):
            print(f"{name}: {key}")
    diffs = []
    for key in common:
        b, a = before[key], after[key]
        ci = max(_diff(x, y) for x, y in zip(b["auc_ci"], a["auc_ci"]))
        tpr = max((_diff(_tprs(b).get(f), _tprs(a).get(f)) for f in _tprs(b)), default=0.0)
        diffs.append((_diff(b["auc"], a["auc"]), ci, tpr, key))
    for label, idx in (("AUC", 0), ("CI bound", 1), ("TPR at FPR", 2)):
        worst = max((d[idx] for d in diffs), default=0.0)
        changed = sum(d[idx] > 0 for d in diffs)
        print(f"{label}: {changed} of {len(diffs)} rows differ; largest difference {worst:.6g}")
    for d in sorted(diffs, key=lambda d: -d[0])[: args.show]:
        if d[0] > 0:
            print(f"  AUC {d[0]:.6g}  CI {d[1]:.6g}  TPR {d[2]:.6g}  {d[3]}")
    worst_auc = max((d[0] for d in diffs), default=0.0)
    return int(worst_auc > args.auc_tol or set(before) != set(after))


if __name__ == "__main__":
    sys.exit(main())
