"""LFW verification accuracy of the unmodified dlib face recognition ResNet (PyTorch port).

Official protocol (``pairs.txt``: 10 folds x (300 matched + 300 mismatched) pairs): for each fold
the distance threshold maximising accuracy on the other 9 folds is applied to the held-out fold;
mean +- std (ddof=1) over the 10 folds. Euclidean distance on dlib's raw descriptors (dlib's own
rule, fixed threshold 0.6, is reported too) and cosine distance. dlib reports 99.38 % +- 0.27 on the
original LFW photos with each descriptor averaged over 100 jittered copies, and 99.13 % without
jittering (comment in dlib's ``examples/dnn_face_recognition_ex.cpp``); this script uses no jittering
and the deep-funneled photos.

Usage::

    python benchmarks/lfw_pairs_dlib.py [--detector fixed|hog] [--threads N] [--lfw-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def find_lfw(arg: str | None) -> Path:
    for root in (arg, os.environ.get("FACELEAKS_LFW_DIR"), REPO.parent / "shared" / "data" / "lfw"):
        if root and (Path(root) / "pairs.txt").is_file():
            return Path(root)
    sys.exit("LFW with pairs.txt not found: pass --lfw-dir or set FACELEAKS_LFW_DIR")


def read_pairs(path: Path) -> tuple[list[tuple[str, str]], np.ndarray, np.ndarray]:
    """(image ids of each pair, same-person bool (6000,), fold index (6000,)) from pairs.txt."""
    lines = path.read_text().split("\n")
    n_folds, n_per = (int(v) for v in lines[0].split())
    pairs, same = [], []
    for line in lines[1:1 + 2 * n_folds * n_per]:
        f = line.split("\t")
        if len(f) == 3:
            pairs.append((f"{f[0]}/{f[0]}_{int(f[1]):04d}", f"{f[0]}/{f[0]}_{int(f[2]):04d}"))
        else:
            pairs.append((f"{f[0]}/{f[0]}_{int(f[1]):04d}", f"{f[2]}/{f[2]}_{int(f[3]):04d}"))
        same.append(len(f) == 3)
    folds = np.repeat(np.arange(n_folds), 2 * n_per)
    return pairs, np.array(same), folds


def best_threshold(d: np.ndarray, same: np.ndarray) -> float:
    """Threshold t maximising accuracy of ``same = d < t`` (midpoints between sorted distances)."""
    order = np.argsort(d)
    ds, ss = d[order], same[order]
    # predicting "same" for the first k sorted pairs: correct = same among them + different after
    correct = np.concatenate([[0], np.cumsum(ss)]) + np.concatenate([[(~ss).sum()], (~ss).sum() - np.cumsum(~ss)])
    k = int(np.argmax(correct))
    lo, hi = (ds[k - 1] if k > 0 else ds[0] - 1), (ds[k] if k < len(ds) else ds[-1] + 1)
    return float((lo + hi) / 2)


def ten_fold(d: np.ndarray, same: np.ndarray, folds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    accs, ths = [], []
    for k in np.unique(folds):
        t = best_threshold(d[folds != k], same[folds != k])
        accs.append(np.mean((d[folds == k] < t) == same[folds == k]))
        ths.append(t)
    return np.array(accs), np.array(ths)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--detector", choices=["fixed", "hog"], default="fixed")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lfw-dir", default=None)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()

    import torch
    from PIL import Image

    from faceleaks.data.chips import align_chips, face_boxes
    from faceleaks.models.dlib_resnet import load_dlib_resnet, preprocess_dlib

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    root = find_lfw(args.lfw_dir)
    pairs, same, folds = read_pairs(root / "pairs.txt")
    ids = sorted({i for p in pairs for i in p})
    index = {i: n for n, i in enumerate(ids)}
    print(f"LFW {root}: {len(pairs)} pairs, {len(ids)} images; detector={args.detector}, threads={args.threads}")

    t = time.perf_counter()
    photos = np.stack([np.asarray(Image.open(root / "lfw-deepfunneled" / f"{i}.jpg").convert("RGB")) for i in ids])
    t_read = time.perf_counter() - t
    t = time.perf_counter()
    boxes, found = face_boxes(photos, detector=args.detector)
    chips = align_chips(photos, boxes)
    t_chips = time.perf_counter() - t
    if args.detector == "hog":
        print(f"HOG box used for {found.mean():.2%} of images ({(~found).sum()} fell back to the fixed box)")

    model = load_dlib_resnet()
    desc = np.empty((len(ids), 128), np.float32)
    with torch.inference_mode():
        model(preprocess_dlib(chips[: args.batch_size]))  # warm-up
        t = time.perf_counter()
        for s in range(0, len(ids), args.batch_size):
            desc[s:s + args.batch_size] = model(preprocess_dlib(chips[s:s + args.batch_size])).numpy()
        t_desc = time.perf_counter() - t
    print(f"throughput: read+decode {len(ids) / t_read:.0f} img/s, chips {len(ids) / t_chips:.0f} chips/s, "
          f"descriptors {len(ids) / t_desc:.1f} desc/s (batch {args.batch_size}, {args.threads} thread(s))")

    report_accuracy(desc[[index[p[0]] for p in pairs]], desc[[index[p[1]] for p in pairs]], same, folds)


def report_accuracy(a: np.ndarray, b: np.ndarray, same: np.ndarray, folds: np.ndarray) -> None:
    """Print 10-fold accuracy for euclidean and cosine distances between paired descriptors a, b."""
    dist = {"euclidean": np.linalg.norm(a - b, axis=1),
            "cosine": 1 - np.sum(a * b, 1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)}
    for name, d in dist.items():
        accs, ths = ten_fold(d, same, folds)
        print(f"10-fold accuracy ({name}): {100 * accs.mean():.2f} % +- {100 * accs.std(ddof=1):.2f} "
              f"(thresholds {ths.min():.3f}..{ths.max():.3f}; folds {np.round(100 * accs, 2).tolist()})")
    fixed = np.mean((dist["euclidean"] < 0.6) == same)
    print(f"dlib's fixed rule (euclidean < 0.6) on all 6000 pairs: {100 * fixed:.2f} %")


if __name__ == "__main__":
    main()
