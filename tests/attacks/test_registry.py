"""The configured attack list: the default plan is exactly the attack set of issue 13, written out by hand."""

import dataclasses

import pytest

from faceleaks.attacks.base import Level
from faceleaks.attacks.registry import check_attack_specs, create_attack, plan_attacks, registered_attacks
from faceleaks.config import DEFAULT_MEMBERSHIP_ATTACKS, AttackSpec, ExperimentConfig, config_from_dict, load_config
from faceleaks.errors import ConfigError
from faceleaks.seeding import derive_seed
from faceleaks.serving.protocol import OutputKind

COMBINED = ("compactness", "mean_max_posterior", "label_agreement", "consistency_gap")


def expected_default_specs(level, k, output, *, public_base=False, lira=False, pool=False):
    """The default attacks at one setting, written independently of ``DEFAULT_MEMBERSHIP_ATTACKS``.

    Issue 13 (part 1): base-model diffing on the consistency gap replaces the residual ``combined``
    score; LiRA online + offline on ``consistency_gap`` (posteriors, public base, reference pool)
    come before LiRA on compactness; LiRA on the residual statistics leaves the defaults; the shadow
    combination runs over (compactness, mean_max_posterior, label_agreement, consistency_gap).
    Everything else is as before (thresholds, shadow classifiers, label-output LiRA).
    """
    if level is Level.INSTANCE:
        if output is OutputKind.LABEL:
            return []
        return [("threshold", {"feature": f, "level": "instance"})
                for f in ("max_posterior", "neg_entropy", "neg_modified_entropy")] + [
            ("shadow", {"features": ("max_posterior", "top2_posterior", "top3_posterior", "neg_entropy"),
                        "level": "instance"})]
    if output is OutputKind.LABEL:
        feats = ("label_agreement",) if k >= 2 else ()
    else:
        feats = ("mean_max_posterior", "mean_neg_entropy") + (("compactness", "label_agreement") if k >= 2 else ())
    specs = [("threshold", {"feature": f, "level": "identity", "k": k}) for f in feats if f != "mean_neg_entropy"]
    if feats:
        specs.append(("shadow", {"features": feats, "level": "identity", "k": k}))
    gap = public_base and pool and k >= 2 and output is OutputKind.POSTERIOR
    if gap:
        specs += [("base-diff", {"statistic": s, "k": k}) for s in ("consistency_gap", "fisher_gap")]
    if lira and k >= 2:
        if gap:
            specs += [("lira", {"statistic": "consistency_gap", "k": k, "online": True}),
                      ("lira", {"statistic": "fisher_gap", "k": k, "online": True}),
                      ("lira", {"statistic": "consistency_gap", "k": k, "online": False})]
        stat = "compactness" if output is not OutputKind.LABEL else "label_agreement"
        specs += [("lira", {"statistic": stat, "k": k, "online": True}),
                  ("lira", {"statistic": stat, "k": k, "online": False})]
        if output is OutputKind.POSTERIOR:
            specs.append(("shadow-combination", {"statistics": COMBINED, "k": k}))
    return specs


SETTINGS = [(lvl, k, kind, pb, sh, po) for lvl, ks in ((Level.INSTANCE, (1,)), (Level.IDENTITY, (1, 2, 5, 10)))
            for k in ks for kind in (OutputKind.POSTERIOR, OutputKind.TOPK, OutputKind.LABEL)
            for pb in (False, True) for sh in (False, True) for po in (False, True)]


@pytest.mark.parametrize("level,k,kind,public_base,shadows,pool", SETTINGS,
                         ids=[f"{lv.value}-k{k}-{kd.value}-pb{int(pb)}-sh{int(sh)}-pool{int(po)}"
                              for lv, k, kd, pb, sh, po in SETTINGS])
def test_default_plan_is_the_issue_13_attack_set(level, k, kind, public_base, shadows, pool):
    seed = 7
    plan = plan_attacks(ExperimentConfig().attack.membership, level=level, k=k, output_kind=kind,
                        has_public_base=public_base, has_shadows=shadows, has_pool=pool, seed=seed)
    expected = []
    for name, params in expected_default_specs(level, k, kind, public_base=public_base, lira=shadows, pool=pool):
        extra = {"seed": derive_seed(seed, "attack", name)} if name in ("shadow", "base-diff", "lira",
                                                                        "shadow-combination") else {}
        expected.append(create_attack(name, **params, **extra))
    assert [(type(a), a.name, a.get_params()) for a in plan] == [(type(a), a.name, a.get_params()) for a in expected]


def test_default_plan_is_not_empty_where_attacks_ran():
    """Guards the comparison above against two empty lists everywhere, and pins the headline names."""
    n = sum(len(expected_default_specs(lv, k, kd, public_base=pb, lira=sh, pool=po))
            for lv, k, kd, pb, sh, po in SETTINGS)
    assert n > 400
    from faceleaks.config.defence import ADAPTIVE_MEMBERSHIP_ATTACKS  # registered, run by `faceleaks defend`

    assert {a for a in registered_attacks()} == {s.name for s in DEFAULT_MEMBERSHIP_ATTACKS + ADAPTIVE_MEMBERSHIP_ATTACKS}
    names = [a.name for a in plan_attacks(DEFAULT_MEMBERSHIP_ATTACKS, level=Level.IDENTITY, k=5,
                                          output_kind=OutputKind.POSTERIOR, has_public_base=True,
                                          has_shadows=True, has_pool=True, seed=0)]
    assert {"base-diff-consistency_gap@k=5", "lira-online-consistency_gap@k=5", "lira-offline-consistency_gap@k=5",
            "lira-online-compactness@k=5", "lira-offline-compactness@k=5", "shadow-combination@k=5"} <= set(names)
    assert not [n for n in names if "residual" in n or "combined" in n]


def test_without_the_pool_no_consistency_gap_attack_is_planned():
    plan = plan_attacks(DEFAULT_MEMBERSHIP_ATTACKS, level=Level.IDENTITY, k=5, output_kind=OutputKind.POSTERIOR,
                        has_public_base=True, has_shadows=True, seed=0)
    assert not [a.name for a in plan if "consistency_gap" in a.name]
    assert [a for a in plan if a.name.startswith("shadow-combination")]  # it drops the gap and runs


def test_specs_load_from_toml_and_round_trip(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[[attack.membership]]\nname = "threshold"\nparams = {feature = "compactness"}\n'
                 '[[attack.membership]]\nname = "shadow"\nparams = {features = ["label_agreement"]}\n'
                 'outputs = ["label"]\n')
    cfg = load_config(p)
    assert cfg.attack.membership == (AttackSpec("threshold", {"feature": "compactness"}),
                                     AttackSpec("shadow", {"features": ("label_agreement",)}, ("label",)))
    again = config_from_dict({"attack": dataclasses.asdict(cfg.attack)})
    assert again.attack.membership == cfg.attack.membership
    assert config_from_dict({"seed": 1}).attack.membership == DEFAULT_MEMBERSHIP_ATTACKS
    check_attack_specs(cfg.attack.membership, ks=cfg.attack.ks)
    names = {kind: [a.name for a in plan_attacks(cfg.attack.membership, level=Level.IDENTITY, k=2, output_kind=kind,
                                                 has_public_base=False, has_shadows=False, seed=0)]
             for kind in (OutputKind.LABEL, OutputKind.POSTERIOR)}
    assert names == {OutputKind.LABEL: ["shadow-set-classifier@k=2"], OutputKind.POSTERIOR: ["compactness@k=2"]}


@pytest.mark.parametrize("spec, match", [
    ({"name": "oracle"}, "unknown attack 'oracle'"),
    ({"name": "threshold", "params": {"feature": "compactness", "depth": 3}}, r"no parameter\(s\) \['depth'\]"),
    ({"name": "threshold"}, r"needs parameter\(s\) \['feature'\]"),
    ({"name": "threshold", "params": {"feature": "nope"}}, "applies at no level"),
    ({"name": "lira", "params": {"statistic": "nope"}}, "unknown identity statistic 'nope'"),
])
def test_unknown_names_and_params_fail_at_run_start(spec, match):
    cfg = config_from_dict({"attack": {"membership": [spec]}})
    with pytest.raises(ConfigError, match=match):
        check_attack_specs(cfg.attack.membership, ks=cfg.attack.ks)


@pytest.mark.parametrize("value, match", [
    ([{"name": "lira", "params": {"k": 5}}], r"set per level and k"),
    ([{"name": "lira", "outputs": ["logits"]}], "outputs must be among"),
    ([{"name": "lira", "colour": 1}], "must be a table with name"),
    ([{"name": "lira"}, {"name": "lira"}], "distinct attacks"),
    ([], "distinct attacks"),
])
def test_bad_specs_are_config_errors(value, match):
    with pytest.raises(ConfigError, match=match):
        config_from_dict({"attack": {"membership": value}})


def test_removed_shadow_switch_is_an_unknown_setting():
    with pytest.raises(ConfigError, match="unknown setting"):
        config_from_dict({"attack": {"shadow": False}})


@pytest.mark.parametrize("params, needle", [
    ({"statistic": "compactness", "online": "false"}, "online='false' must be of type bool"),
    ({"statistic": "compactness", "ridge": "big"}, "ridge='big' must be of type float"),
    ({"statistic": 3}, "unknown identity statistic 3"),
])
def test_parameter_values_of_the_wrong_type_are_refused_at_start(params, needle):
    with pytest.raises(ConfigError, match=needle):
        check_attack_specs((AttackSpec("lira", params),), ks=(5,))


def test_a_misspelled_feature_is_named_with_the_known_ones():
    with pytest.raises(ConfigError, match=r"unknown identity feature.*compactnes.*known"):
        check_attack_specs((AttackSpec("threshold", {"feature": "compactnes"}),), ks=(2, 5))


def test_a_config_whose_attacks_cannot_use_the_output_is_refused():
    posterior_only = (AttackSpec("lira", {"statistic": "residual_coherence", "online": True}),
                      AttackSpec("threshold", {"feature": "compactness"}))
    check_attack_specs(posterior_only, ks=(5,), output_kind=OutputKind.POSTERIOR)
    with pytest.raises(ConfigError, match="no attack in attack.membership can use label outputs"):
        check_attack_specs(posterior_only, ks=(5,), output_kind=OutputKind.LABEL)
    for kind in OutputKind:  # the default set runs on every output
        check_attack_specs(DEFAULT_MEMBERSHIP_ATTACKS, ks=(1, 2, 5, 10), output_kind=kind)
