"""Why does the negative control read off chance for LiRA? Redraw the shadows' coin flips.

Usage: ``python benchmarks/diag_lira_control.py [--salts 0 1 2] [--seed 0] [--shadows 8]``

The control teacher saw none of the audited people, so a control AUC far from 0.5 means either the
two groups differ in something the attack sees (photo counts, how the shadows treat them), or the
attack's own randomness happened to line up with the labels. This script keeps the victim, the
control, the people and their photos fixed and redraws only the attacker's coin flips (which
audited person goes IN which shadow teacher; ``--salts``, salt 0 = the run's own draw). A cause in
the groups would keep the control off chance under every draw; alignment by chance moves with the
draw. For each draw it prints the victim's and the control's AUC (training photos, lfw-identity
student, k = ``--k``) of online LiRA on each statistic, and the Spearman correlation of the
control's scores with the people's photo counts.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

from scipy.stats import spearmanr

import faceleaks.evaluation.lira_shadows as lira_shadows
from faceleaks.config import AttackSpec, ExperimentConfig
from faceleaks.evaluation.attacker import TeacherPublicBase, make_attacker_data
from faceleaks.evaluation.experiment import _attack_students
from faceleaks.evaluation.membership import AttackPlan, held_photos
from faceleaks.evaluation.owner import add_control, build_owner, build_students, build_teacher
from faceleaks.models.dlib_teacher import dlib_base_teacher
from faceleaks.progress import set_enabled
from faceleaks.seeding import derive_seed

STATISTICS = ("compactness", "residual_norm", "residual_coherence")


def _salted(salt: int):
    original = lira_shadows.plan_lira_shadows

    def plan(attacker, targets, *, n_shadows, seed):
        return original(attacker, targets, n_shadows=n_shadows, seed=seed if salt == 0 else derive_seed(seed, f"salt{salt}"))

    return plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--salts", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shadows", type=int, default=8)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--cache-dir", type=Path, default=Path("~/.cache/faceleaks").expanduser())
    args = parser.parse_args()
    set_enabled(False)
    specs = tuple(AttackSpec("lira", {"statistic": s, "online": True}) for s in STATISTICS)
    cfg = ExperimentConfig(seed=args.seed)
    cfg = dataclasses.replace(cfg, attack=dataclasses.replace(cfg.attack, ks=(args.k,), membership=specs,
                                                              n_shadow_teachers=args.shadows))
    out = Path(tempfile.mkdtemp(prefix="diag-lira-"))
    owner = build_owner(cfg, out_dir=out, cache_dir=args.cache_dir, verify=False)
    data = owner.data
    attacker = make_attacker_data(data.split, train_fraction=cfg.split.member_train_fraction, seed=cfg.seed)
    shadow_teacher = build_teacher(data, cfg, attacker.shadow_train, name="shadow-teacher", cache_dir=args.cache_dir)
    shadows = build_students(shadow_teacher, data, cfg, shadow=True, prefix="shadow")
    add_control(owner, cfg, out_dir=out, cache_dir=args.cache_dir, shadow_teacher=shadow_teacher)
    owner.students = {"lfw-identity": owner.students["lfw-identity"]}
    owner.control_students = {"lfw-identity": owner.control_students["lfw-identity"]}
    public_base = TeacherPublicBase(dlib_base_teacher(cfg.teacher, cache_dir=args.cache_dir, name="attacker-dlib-base"))
    targets = {"training-photos": held_photos(data, "training-photos", cfg)}
    n_photos = {p: len(data.split.photos[p]) for p in targets["training-photos"]}
    for salt in args.salts:
        lira_shadows.plan_lira_shadows = _salted(salt)
        built = lira_shadows.build_lira_shadows(data, cfg, attacker, targets, cache_dir=args.cache_dir)
        plan = AttackPlan(data, attacker, cfg, public_base, built.models)
        reports, _ = _attack_students(owner, shadows, plan)
        for r in sorted(reports, key=lambda r: (r.attack, r.teacher)):
            if r.setting != "training-photos" or r.level != "identity":
                continue
            scores = {**r.member_scores, **r.nonmember_scores}
            rho = spearmanr(list(scores.values()), [n_photos[p] for p in scores])[0]
            print(f"salt {salt}  {r.teacher:8s} {r.attack:40s} AUC {r.auc:.3f} "
                  f"[{r.auc_ci[0]:.2f}, {r.auc_ci[1]:.2f}]  spearman(score, photos) {rho:+.2f}", flush=True)


if __name__ == "__main__":
    main()
