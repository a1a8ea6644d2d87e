"""``faceleaks defend``: the grid's configuration, resume, the report, and the quick preset end to end."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from faceleaks.cli.main import app
from faceleaks.config import AttackSpec, quick_config
from faceleaks.config.defence import (DEFAULT_DEFENCE_GRID, DefenceSetting, DefendConfig, OutputDefenceSpec,
                                      load_grid, setting_key)
from faceleaks.errors import ConfigError
from faceleaks.evaluation.defend_results import read_defence

CHEAP_ATTACKS = (AttackSpec("threshold", {"feature": "max_posterior"}),
                 AttackSpec("base-diff", {"statistic": "fisher_gap"}),
                 AttackSpec("label-only", {"statistic": "agreement", "n_augment": 1}),
                 AttackSpec("averaging", {"n_repeats": 2, "pool_size": 100}))
GRID = (DefenceSetting("none"), DefenceSetting("label-only", OutputDefenceSpec("label")),
        DefenceSetting("round-1", OutputDefenceSpec("rounding", {"decimals": 1})),
        DefenceSetting("gauss-hmac", OutputDefenceSpec("gaussian", {"sigma": 0.05, "same_noise_per_image": True})))


def test_default_grid_is_the_issues_grid():
    names = [s.name for s in DEFAULT_DEFENCE_GRID]
    assert len(names) == len(set(names)) == 18  # the README's count
    assert {s.output.name for s in DEFAULT_DEFENCE_GRID} == {"none", "rounding", "topk", "label", "gaussian", "laplace"}
    modes = {s.teacher.get("privacy", {}).get("mode") for s in DEFAULT_DEFENCE_GRID}
    assert {"photo", "identity"} <= modes  # DP-SGD at both units of privacy
    assert any("unfreeze_last_n" in s.teacher for s in DEFAULT_DEFENCE_GRID)
    assert any(s.teacher.get("privacy", {}).get("label_smoothing") for s in DEFAULT_DEFENCE_GRID)


def test_a_privacy_override_reaches_the_teacher_config():
    from faceleaks.evaluation.defend import _setting_config

    dp = next(s for s in DEFAULT_DEFENCE_GRID if s.teacher.get("privacy", {}).get("mode") == "identity")
    cfg = _setting_config(quick_config(), dp, DefendConfig(grid=(dp,)))
    assert cfg.teacher.privacy.mode == "identity" and cfg.teacher.privacy.target_epsilon == 8.0
    assert cfg.teacher.unfreeze_last_n == quick_config().teacher.unfreeze_last_n


def test_averaging_runs_only_against_noise_with_a_floor_from_the_scale():
    dcfg = DefendConfig(grid=GRID, attacks=CHEAP_ATTACKS)
    assert "averaging" not in [a.name for a in dcfg.attacks_for(OutputDefenceSpec("rounding", {"decimals": 1}))]
    avg = [a for a in dcfg.attacks_for(OutputDefenceSpec("laplace", {"scale": 0.08})) if a.name == "averaging"]
    assert avg[0].params["floor"] == pytest.approx(0.08 / 2 ** 0.5)


def test_shadow_teachers_add_lira_behind_the_same_defence():
    assert not [a for a in DefendConfig(grid=GRID).attacks_for(OutputDefenceSpec()) if a.name == "lira"]
    lira = [a for a in DefendConfig(grid=GRID, n_shadow_teachers=4).attacks_for(OutputDefenceSpec()) if a.name == "lira"]
    assert {a.params["statistic"] for a in lira} == {"fisher_gap", "consistency_gap", "compactness", "label_agreement"}


@pytest.mark.parametrize("kwargs,match", [({"grid": ()}, "distinct"), ({"n_shadow_teachers": 2}, "shadow"), ({"grid": GRID + GRID[:1]}, "distinct"),
                                          ({"k": 1}, "k must"), ({"photo_settings": ("all",)}, "photo_settings")])
def test_bad_defend_config(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        DefendConfig(**kwargs)


def test_bad_settings_are_named():
    with pytest.raises(ConfigError, match="folder-safe"):
        DefenceSetting("a/b")
    with pytest.raises(ConfigError, match="epochs"):
        DefenceSetting("x", teacher={"epochs": 3})


def test_grid_from_toml(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text('[[setting]]\nname = "r2"\noutput = {name = "rounding", params = {decimals = 2}}\n'
                    '[[setting]]\nname = "wd"\nteacher = {finetune_weight_decay = 0.005}\n')
    grid = load_grid(path)
    assert [s.name for s in grid] == ["r2", "wd"] and grid[0].output.params == {"decimals": 2}
    path.write_text('[[setting]]\nname = "bad"\noutput = {name = "blur"}\n')
    with pytest.raises(ConfigError, match="blur"):
        load_grid(path)


def test_setting_key_changes_with_the_setting_and_the_run():
    a = setting_key(GRID[0], {"seed": 0})
    assert a == setting_key(GRID[0], {"seed": 0})
    assert a != setting_key(GRID[1], {"seed": 0}) and a != setting_key(GRID[0], {"seed": 1})


@pytest.fixture(scope="module")
def defended(real_lfw, session_cache, tmp_path_factory):
    from faceleaks.evaluation.defend import run_defend

    out = tmp_path_factory.mktemp("defend")
    cfg = replace(quick_config(), output_dir=str(out))
    dcfg = DefendConfig(grid=GRID, attacks=CHEAP_ATTACKS)
    first = run_defend(cfg, dcfg, out_dir=out, cache_dir=session_cache)
    mtimes = {s.name: (out / "defend" / s.name / "results.json").stat().st_mtime_ns for s in GRID}
    again = run_defend(cfg, dcfg, out_dir=out, cache_dir=session_cache)
    return out, first, again, mtimes


def test_every_setting_has_its_results_file_with_utility_and_privacy(defended):
    out, records, _, _ = defended
    assert [r.setting for r in records] == [s.name for s in GRID]
    for r in records:
        back = read_defence(out / "defend" / r.setting / "results.json")
        assert back.key == r.key and len(back.membership) == len(r.membership)
        assert 0.5 < r.identification_accuracy <= 1 and r.n_identification_photos > 0  # the teacher's own head
        assert 0.5 < r.enrolment_accuracy <= 1 and 0.5 < r.base_enrolment_accuracy <= 1
        assert r.privacy == "none" and r.dp_epsilon != r.dp_epsilon  # no DP: epsilon NaN
        assert r.gender is not None and 0 <= r.gender.balanced_accuracy <= 1 and r.gender.output == r.output_kind
        assert r.queries["attributes/lfw-identity"] > 0
        assert any(a.role == "prior-only" for a in r.attributes)
        assert 0 < r.defended_student_accuracy["lfw-identity"] <= 1 and set(r.student_accuracy) == {"lfw-identity",
                                                                                                  "utk-age"}
        assert r.best_adaptive is not None and r.queries["lfw-identity"] > 0
    none, label, rounded, noise = records
    assert rounded.output_kind == "posterior" and rounded.headline is not None  # a rounded API still has posteriors
    assert rounded.row_sum_tolerance >= 2 * 0.5 * 10 ** -1  # n_classes * 0.5 * 10^-d, n_classes >= 2
    assert none.headline is not None and label.headline is None  # no posteriors to diff behind labels only
    assert label.output_kind == "label" and label.best_adaptive.attack.startswith(("label-only", "label_agreement"))
    assert label.defended_student_accuracy["lfw-identity"] == pytest.approx(none.student_accuracy["lfw-identity"])
    assert any(m.attack.startswith("averaging-jitterx2") for m in noise.membership)
    assert noise.queries["lfw-identity"] > none.queries["lfw-identity"]  # the averaging repeats are counted
    assert noise.row_sum_tolerance == pytest.approx(1e-9)


def test_a_finished_setting_is_read_back_not_rerun(defended):
    out, first, again, mtimes = defended
    assert [r.key for r in again] == [r.key for r in first]
    assert {s.name: (out / "defend" / s.name / "results.json").stat().st_mtime_ns for s in GRID} == mtimes


def test_report_table_and_plot(defended):
    from faceleaks.report.defend import write_defend_report

    out, records, _, _ = defended
    paths = write_defend_report(records, out)
    table = paths["summary"].read_text()
    assert all(f"| {s.name} |" in table for s in GRID) and paths["plot"].stat().st_size > 10_000
    assert "base-diff-fisher_gap" in table and f"{records[0].gender.balanced_accuracy:.3f}" in table
    raw = json.loads((out / "defend" / "none" / "results.json").read_text())
    assert raw["schema_version"] == 2 and raw["setting"] == "none"


def test_cli_names_an_unknown_setting():
    result = CliRunner().invoke(app, ["defend", "--quick", "--only", "nosuch"])
    assert result.exit_code == 2 and "nosuch" in result.output and "Traceback" not in result.output


def test_seeds_table_means_over_seeds(defended):
    from faceleaks.report.defend import seeds_table

    _, records, _, _ = defended
    table = seeds_table({0: records, 1: records})
    assert "seeds [0, 1]" in table and all(f"| {s.name} |" in table for s in GRID)
    head = records[0].headline.auc
    assert f"{head:.3f} ± 0.000" in table  # the same run twice: sd 0


def test_an_unreadable_results_file_is_rerun_not_trusted(tmp_path):
    from faceleaks.evaluation.defend import _finished

    path = tmp_path / "results.json"
    assert _finished(path, "k") is None
    path.write_text("{not json")
    assert _finished(path, "k") is None
    path.write_text('{"schema_version": 1}')
    assert _finished(path, "k") is None
