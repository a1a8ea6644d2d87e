"""What DP-SGD costs the teacher's owner: identification accuracy on held-out member photos, epsilon, time.

    python benchmarks/dp_utility.py [--set quick|large] [--settings none,photo-s1,...] [--unfreeze 2]
    python benchmarks/dp_utility.py --modes      # per-sample gradient modes: seconds per batch

``--set quick``: the members of the ``--quick`` preset (seed 0; 24 people), trained on their
training half, evaluated on the other half. ``--set large``: every LFW person with at least
``--min-photos`` photos (at most 20 each; half train, half held out), the largest member set LFW
allows. Each setting fine-tunes the dlib teacher with the regularised recipe and the settings'
``teacher.privacy`` through ``faceleaks.models.dlib_teacher.fit_tail`` (the pipeline's code) and
prints: the head's identification accuracy on held-out photos (top-1 over the members), the
nearest-centroid accuracy of the teacher's descriptors (centroids: mean training descriptors;
the unmodified dlib model is the ``base`` row), epsilon at delta = 1e-5 (RDP accountant), noise
multiplier, steps and seconds. Face chips and frozen activations come from the usual cache
(``$FACELEAKS_CACHE_DIR`` or ``~/.cache/faceleaks``); teachers are not cached. Seconds are wall
time with ``--threads`` torch threads on a shared machine: compare within one run only.

Measured 5 December (seed 0, regularised recipe: Adam 3e-4 cosine, 20 epochs; C = 1, delta = 1e-5,
random head unless ``nm``; 1 thread on the shared 2-core machine at load 8-18, so seconds are
inflated and only comparable within a block). Head = held-out top-1 over the members (chance 1/24 =
0.042 and 1/610 = 0.0016); the nearest-centroid accuracy stayed at the base model's in every DP
row (0.995 quick, 0.981-0.982 large): at these epsilons the DP tail hardly moves from dlib's.

quick members (24 people, 210 / 209 photos), ``--unfreeze 1``:
none 0.995 | ls0.1 0.995 | photo sigma 0.5 / 1 / 2: 0.110 / 0.067 / 0.038 (eps 66.8 / 17.9 / 6.2,
q 0.25, 80 steps) | identity sigma 0.5 / 1 / 2: 0.048 / 0.033 / 0.048 (same eps, over identities) |
noisy-means head: photo sigma 1 / 2: 0.191 / 0.148 (eps 17.9 / 6.4), identity sigma 1 / 2 (head
noise 1): 0.072 / 0.057 (eps 19.0 / 8.2) | Adam 3e-3: photo 0.196 / 0.091, identity 0.053 / 0.053.
quick members, ``--unfreeze 2`` (the default teacher): none 0.995 (38 s) | ls0.1 0.995 (29 s) |
photo sigma 1: 0.120 (eps 17.9, 314 s) | identity sigma 1: 0.091 (eps 17.9, 254 s).
quick members, ``--unfreeze 2``, target epsilon with a noisy-means head (5 December, session 4, load about
4): photo eps 8, head noise 4 (the grid's first DP setting) 0.196 | head noise 1: 0.636 | head noise 0.7:
0.713 (the SGD phase then gets sigma 3.6) | photo eps 50, head noise 1 / 0.7: 0.823 / 0.923 | identity eps 8,
head noise 1: 0.086. Most of the budget on the head's Gaussian mechanism is the tuning that matters here.
large (610 people with >= 4 photos, 2433 / 2517 photos), ``--unfreeze 1``: none 0.967 (42 s) |
photo sigma 1, q 0.026, 780 steps: 0.003 (eps 5.0, 311 s) | photo sigma 1 / 2, q 0.091, 220 steps:
0.007 / 0.007 (eps 10.5 / 3.5) | identity sigma 1, q 0.25, 80 steps: 0.002 (eps 17.9, 413 s).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from faceleaks.config import PrivacyConfig, TeacherConfig, quick_config
from faceleaks.data.faces import load_faces
from faceleaks.data.lfw import find_lfw_root, index_lfw
from faceleaks.data.splits import n_train_photos
from faceleaks.evaluation.dataset import chippers, prepare_data
from faceleaks.models.activations import activation_store, dlib_base_network
from faceleaks.models.dlib_teacher import Tail, fit_tail
from faceleaks.models.training import configure_torch, predict_batches
from faceleaks.progress import set_enabled

_P, _I = dict(mode="photo"), dict(mode="identity")
#: name -> (teacher.privacy, other TeacherConfig values); ``nm``: head from noisy class means, ``lr``: Adam's rate
SETTINGS = {
    "none": (PrivacyConfig(), {}),
    "ls0.1": (PrivacyConfig(label_smoothing=0.1), {}),
    **{f"photo-s{s}": (PrivacyConfig(**_P, noise_multiplier=s), {}) for s in (0.5, 1, 2, 4)},
    **{f"identity-s{s}": (PrivacyConfig(**_I, noise_multiplier=s), {}) for s in (0.5, 1, 2, 4)},
    "photo-eps8": (PrivacyConfig(**_P, target_epsilon=8.0), {}),
    "identity-eps8": (PrivacyConfig(**_I, target_epsilon=8.0), {}),
    **{f"photo-s{s}-nm": (PrivacyConfig(**_P, noise_multiplier=s, head_init="noisy-means"), {}) for s in (1, 2)},
    **{f"identity-s{s}-nm": (PrivacyConfig(**_I, noise_multiplier=s, head_init="noisy-means", head_noise_multiplier=1.0),
                             {}) for s in (1, 2)},
    **{f"photo-s{s}-lr3e-3": (PrivacyConfig(**_P, noise_multiplier=s), {"finetune_learning_rate": 3e-3}) for s in (1, 2)},
    **{f"identity-s{s}-lr3e-3": (PrivacyConfig(**_I, noise_multiplier=s), {"finetune_learning_rate": 3e-3})
       for s in (1, 2)},
    **{f"photo-s{s}-q0.1": (PrivacyConfig(**_P, noise_multiplier=s, sample_rate=0.1), {}) for s in (1, 2)},
    # the grid's DP settings (target epsilon, noisy-means head at the default head noise 4) and the same with
    # most of the budget on the head's noisy class means (head noise 1)
    **{f"{u}-eps{e}-nm{h}": (PrivacyConfig(**(_P if u == "photo" else _I), target_epsilon=float(e),
                                           head_init="noisy-means", head_noise_multiplier=float(h)), {})
       for u in ("photo", "identity") for e in (8, 50) for h in (4, 1, 0.7)},
}


def quick_members(cache: Path) -> tuple[object, dict[str, list[str]], dict[str, list[str]]]:
    """(faces, train ids, held-out ids) per member of the quick preset's split (seed 0)."""
    with tempfile.TemporaryDirectory() as out:
        data = prepare_data(quick_config(), out_dir=Path(out), cache_dir=cache)
    split = data.split
    train = {p: split.member_train[p] for p in split.identities("member")}
    test = {p: [i for i in split.photos[p] if i not in set(train[p])] for p in train}
    return data.faces, train, test


def large_members(cache: Path, min_photos: int, cap: int = 20) -> tuple[object, dict, dict]:
    """Every LFW person with >= ``min_photos`` photos (first ``cap`` by id): half train, half held out."""
    records = index_lfw(find_lfw_root(None, download=False))
    by_person: dict[str, list] = {}
    for r in records:
        by_person.setdefault(r.identity, []).append(r)
    people = {p: sorted(rs, key=lambda r: r.image_id)[:cap] for p, rs in by_person.items() if len(rs) >= min_photos}
    chosen = [r for rs in people.values() for r in rs]
    faces = load_faces([r.path for r in chosen], [r.image_id for r in chosen], [r.identity for r in chosen],
                       chippers(quick_config())[0], cache_dir=cache, description="reading LFW photos")
    have = set(faces.image_ids.tolist())
    ids = {p: [r.image_id for r in rs if r.image_id in have] for p, rs in people.items()}
    train = {p: v[: n_train_photos(len(v), 0.5)] for p, v in ids.items() if len(v) >= 2}
    return faces, train, {p: ids[p][len(train[p]):] for p in train}


def _arrays(faces, ids: dict[str, list[str]], start: int, cache: Path) -> tuple[torch.Tensor, np.ndarray]:
    classes = sorted(ids)
    sub = faces.subset([i for p in classes for i in ids[p]])
    h = torch.from_numpy(activation_store(start, cache).get(sub.images))
    return h, np.searchsorted(classes, sub.identities)


def _centroid_accuracy(embed, h_train, y_train, h_test, y_test, n_classes: int) -> float:
    e_tr = nn.functional.normalize(predict_batches(embed, h_train), dim=1)
    e_te = nn.functional.normalize(predict_batches(embed, h_test), dim=1)
    cent = torch.zeros(n_classes, e_tr.shape[1]).index_add_(0, torch.as_tensor(y_train), e_tr)
    pred = (e_te @ nn.functional.normalize(cent, dim=1).T).argmax(1).numpy()
    return float((pred == y_test).mean())


def evaluate(faces, train, test, names: list[str], unfreeze: int, cache: Path, seed: int) -> None:
    start = dlib_base_network().n_stages - unfreeze
    h_tr, y_tr = _arrays(faces, train, start, cache)
    h_te, y_te = _arrays(faces, test, start, cache)
    n = len(train)
    print(f"members {n}, training photos {len(h_tr)}, held-out photos {len(h_te)}, unfrozen stages {unfreeze}")
    base = Tail(dlib_base_network(), start).eval()
    print(f"{'base':>14}  head   -    centroid {_centroid_accuracy(base, h_tr, y_tr, h_te, y_te, n):.3f}")
    for name in names:
        privacy, extra = SETTINGS[name]
        cfg = TeacherConfig(unfreeze_last_n=unfreeze, privacy=privacy, **extra)
        t0 = time.perf_counter()
        model, meta = fit_tail(Tail(dlib_base_network(), start), h_tr, y_tr, n, cfg, seed, name)
        secs = time.perf_counter() - t0
        model.eval()
        head = float((predict_batches(model, h_te).argmax(1).numpy() == y_te).mean())
        cen = _centroid_accuracy(model[0], h_tr, y_tr, h_te, y_te, n)
        dp = (f"eps {meta['dp_epsilon']:7.2f} sigma {meta['dp_noise_multiplier']:.3f} q {meta['dp_sample_rate']:.3f} "
              f"steps {meta['dp_steps']}") if "dp_epsilon" in meta else "eps     inf (no DP)"
        print(f"{name:>14}  head {head:.3f}  centroid {cen:.3f}  train {meta['train_accuracy']:.3f}  {dp}  "
              f"{secs:6.1f} s", flush=True)


def modes(threads: int) -> None:
    """Seconds per batch of 64 for per-sample gradients of the 2-stage tail + head, per Opacus mode."""
    from opacus.grad_sample import GradSampleModule

    import faceleaks.models.privacy as privacy  # registers our grad samplers
    from faceleaks.models.heads import CosineHead

    base = dlib_base_network()
    x, y = torch.randn(64, 256, 4, 4), torch.randint(0, 24, (64,))
    for mode in ("plain", "registered", "functorch-fallback", "force-functorch"):
        model = nn.Sequential(Tail(base, base.n_stages - 2), CosineHead(torch.randn(24, 128))).train()
        saved = dict(GradSampleModule.GRAD_SAMPLERS)
        if mode == "functorch-fallback":
            for cls in (privacy.Affine, CosineHead):
                GradSampleModule.GRAD_SAMPLERS.pop(cls)
        run = model if mode == "plain" else GradSampleModule(model, force_functorch=mode == "force-functorch")
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            run.zero_grad()
            nn.functional.cross_entropy(run(x), y).backward()
            times.append(time.perf_counter() - t0)
        GradSampleModule.GRAD_SAMPLERS.update(saved)
        print(f"{mode:>20}: {min(times):.3f} s per batch of 64 (best of 5, {threads} thread(s))")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=("quick", "large"), default="quick")
    parser.add_argument("--settings", default="none,photo-s0.5,photo-s1,photo-s2,identity-s0.5,identity-s1,identity-s2")
    parser.add_argument("--unfreeze", type=int, default=2)
    parser.add_argument("--min-photos", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--modes", action="store_true")
    args = parser.parse_args()
    set_enabled(False)
    configure_torch(args.threads)
    warnings.filterwarnings("ignore", message=".*(Secure RNG|Full backward hook|Optimal order).*")
    if args.modes:
        return modes(args.threads)
    cache = Path(os.environ.get("FACELEAKS_CACHE_DIR", Path.home() / ".cache" / "faceleaks"))
    faces, train, test = quick_members(cache) if args.set == "quick" else large_members(cache, args.min_photos)
    evaluate(faces, train, test, args.settings.split(","), args.unfreeze, cache, args.seed)


if __name__ == "__main__":
    main()
