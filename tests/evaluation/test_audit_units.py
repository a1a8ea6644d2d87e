"""Audit pieces without a model: p-values, verdicts, labels, pseudonyms, purge, scoring on fakes."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from faceleaks.errors import ConfigError, DataError
from faceleaks.evaluation.audit import Redactor, purge_audit, read_labels, verdict
from faceleaks.evaluation.audit_scoring import audit_scores, p_values
from tests.fakes import fake_box, make_images


@given(st.lists(st.floats(-2, 2, allow_subnormal=False), min_size=1, max_size=30), st.floats(-2, 2, allow_subnormal=False))
def test_p_value_counts_references_at_or_above(null, s):
    p = p_values(np.array([s]), np.array(null))[0]
    assert p == (1 + sum(v >= s for v in null)) / (1 + len(null))
    assert 1 / (1 + len(null)) <= p <= 1


def test_verdicts_need_enough_reference_people():
    assert verdict(0.01, 99, 0.01) == "insufficient evidence"
    assert verdict(0.01, 100, 0.01) == "member"
    assert verdict(0.0101, 100, 0.01) == "not flagged"
    assert verdict(0.05, 20, 0.05) == "member"


def test_labels_file(tmp_path):
    f = tmp_path / "labels.csv"
    f.write_text("person,member\nAna,1\nBo,no\n")
    assert read_labels(f) == {"Ana": True, "Bo": False}
    f.write_text("Ana,maybe\n")
    with pytest.raises(ConfigError, match="line 1"):
        read_labels(f)


def test_pseudonyms_are_stable_per_output_folder_and_hide_the_name(tmp_path):
    a, again, other = Redactor(tmp_path / "a"), Redactor(tmp_path / "a"), Redactor(tmp_path / "b")
    assert a.name("Bill_Gates") == again.name("Bill_Gates") != other.name("Bill_Gates")
    assert "Bill" not in a.photo("Bill_Gates/Bill_Gates_0001.jpg")
    assert a.photo("Bill_Gates/x.jpg").startswith(a.name("Bill_Gates") + "/")


def test_purge_deletes_ledger_and_caches_only(tmp_path):
    for name in ("ledger.sqlite", "ledger.sqlite-wal", "results.json"):
        (tmp_path / name).write_text("x")
    (tmp_path / ".audit-cache" / "chips").mkdir(parents=True)
    gone = purge_audit(tmp_path)
    assert {p.name for p in gone} == {"ledger.sqlite", "ledger.sqlite-wal", ".audit-cache"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


class _Base:
    """A public base that embeds the fake images' identity code plus noise."""

    def embed(self, images):
        rng = np.random.default_rng(0)
        x = images[:, 0, 0].astype(float)
        return np.hstack([x, rng.normal(0, 1, (len(images), 5))])


def test_members_score_higher_than_references_on_the_fake_student():
    ref, ref_ids, _, _ = make_images(list(range(30)), [False] * 30, 4, offset=1)
    probe, probe_ids, _, truth = make_images(list(range(10)), [i < 5 for i in range(10)], 4, offset=2)
    s = audit_scores(fake_box(), _Base(), probe, probe_ids, ref, ref_ids, k=4)
    assert s.n_queries_probe == 40 and s.n_queries_reference == 120 and len(s.null) == 30
    member = np.array([truth[probe_ids == p][0] for p in s.people])
    assert s.scores[member].mean() > s.scores[~member].mean()
    assert s.p_values[member].mean() < s.p_values[~member].mean()


def test_too_few_reference_people_is_a_clear_error():
    ref, ref_ids, _, _ = make_images([0, 1, 2], [False] * 3, 4, offset=1)
    with pytest.raises(DataError, match="reference people"):
        audit_scores(fake_box(), _Base(), ref, ref_ids, ref, ref_ids, k=4)
