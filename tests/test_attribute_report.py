"""AttributeConfig validation, the record's JSON form, and the report table/figure (torch-free)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from faceleaks.errors import ConfigError
from faceleaks.evaluation.attribute_results import AttributeConfig, AttributeRecord, AttributeScore, LabelSummary
from faceleaks.report.attribute_report import attribute_markdown, budget_figure, budget_order, first_winning_budget

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("changes", [
    {"budgets": ()}, {"budgets": (0, "all")}, {"budgets": (5, 5)}, {"budgets": (1, "most")},
    {"identity_budget": 7}, {"attacks": ("logreg", "logreg")}, {"attacks": (3,)}, {"outputs": ("logits",)},
    {"ks": (0,)}, {"n_bootstrap": 0}, {"n_utk_aux": -1}, {"max_lfw_photos_per_person": True},
])
def test_config_rejects_bad_settings(changes):
    with pytest.raises(ConfigError):
        AttributeConfig(**changes)


def test_config_defaults():
    cfg = AttributeConfig()
    assert cfg.budgets == (1, 5, 10, 50, "all") and cfg.max_numeric_budget == 50
    assert AttributeConfig(budgets=("all",), identity_budget="all").max_numeric_budget == 0


def _row(budget, bacc, ci, *, attack="logreg", role="attack", student="lfw-identity", level="instance", k=1):
    return AttributeScore("gender", "cross-dataset", level, k, student, "posterior", attack, role, budget, 2, 100,
                          bacc, ci, 0.5, (0.4, 0.6), float("nan"), (float("nan"), float("nan")), 2)


def _record():
    scores = (_row("1", 0.52, (0.45, 0.58)), _row("5", 0.70, (0.62, 0.77)), _row("all", 0.9, (0.85, 0.95)))
    prior = tuple(_row(b, 0.5, (0.5, 0.5), attack="prior-only", role="prior-only", student="-") for b in ("1", "5", "all"))
    white = (_row("all", 0.97, (0.95, 0.99), role="white-box", student="teacher-embedding"),)
    ident = tuple(_row("all", 0.8 + 0.02 * k, (0.7, 0.9), level="identity", k=k) for k in (1, 2, 5))
    labels = (LabelSummary("gender", "lfw-targets", ("male", "female"), (70, 30), {"ambiguous": 1}),)
    return AttributeRecord(0, {"budgets": [1, 5, "all"]}, scores, prior + white, ident, labels, {"lfw-identity/posterior": 9},
                           {"attribute-attacks": 1.5}, ("a warning",))


def test_record_json_round_trip_turns_nan_into_null():
    rec = _record()
    raw = rec.to_dict()
    text = json.dumps(raw, allow_nan=False)
    assert raw["scores"][0]["auc"] is None and raw["scores"][0]["auc_ci"] == [None, None]
    back = AttributeRecord.from_dict(json.loads(text))
    assert back.scores[1].balanced_accuracy_ci == (0.62, 0.77) and math.isnan(back.scores[0].auc)
    assert back.labels == rec.labels and back.rows()[-1].k == 5


def test_first_winning_budget_needs_non_overlapping_cis():
    rec = _record()
    assert budget_order(["all", "10", "5", "1"]) == ["1", "5", "10", "all"]
    assert first_winning_budget(rec, attribute="gender", variant="cross-dataset", student="lfw-identity",
                                attack="logreg") == "5"
    assert first_winning_budget(rec, attribute="gender", variant="cross-dataset", student="lfw-identity",
                                attack="knn") is None


def test_markdown_and_figure():
    md = attribute_markdown(_record())
    assert "| gender | cross-dataset | lfw-identity | posterior | logreg |" in md
    assert "0.700 [0.62, 0.77]" in md and "k=5" in md and "ambiguous 1" in md and "a warning" in md
    fig = budget_figure(_record())
    assert isinstance(fig, Figure) and fig.axes[0].get_title() == "gender — cross-dataset"
    with pytest.raises(ValueError):
        attribute_markdown(_record(), metric="accuracy")


def test_report_module_does_not_import_torch():
    code = ("import sys, faceleaks.report.attribute_report, faceleaks.evaluation.attribute_results; "
            "assert 'torch' not in sys.modules, 'torch loaded'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_record_file_round_trip_and_old_schema(tmp_path):
    from faceleaks.errors import ArtifactError

    rec = _record()
    rec.to_json(tmp_path / "attributes.json")
    back = AttributeRecord.from_json(tmp_path / "attributes.json")
    assert back.to_dict() == rec.to_dict() and back.labels == rec.labels
    assert back.scores[1].balanced_accuracy_ci == (0.62, 0.77) and math.isnan(back.scores[1].auc)
    with pytest.raises(ArtifactError, match="schema_version 1.*rerun"):
        AttributeRecord.from_dict({**rec.to_dict(), "schema_version": 1})


def test_attribute_auc_ci_is_the_shared_stratified_bootstrap():
    import numpy as np

    from faceleaks.evaluation.attribute_results import classification_metrics
    from faceleaks.metrics import bootstrap_auc_replicates

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 40)
    proba = rng.dirichlet([1, 1], size=(3, 40))
    m = classification_metrics(y, proba, proba.argmax(-1), 2, n_bootstrap=200, seed=5)
    gen = np.random.default_rng(5)
    gen.integers(0, 40, size=(200, 40)), gen.integers(0, 3, size=200)  # the balanced-accuracy draws come first
    aucs = bootstrap_auc_replicates(y, proba[..., 1], n_bootstrap=200, seed=gen)
    alpha = (1.0 - 0.95) / 2.0
    assert m.auc_ci == tuple(float(v) for v in np.quantile(aucs, [alpha, 1.0 - alpha]))
