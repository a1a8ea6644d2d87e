"""Data-set fingerprints: the sorted (relative path, size) list of photo files, hashed."""

from __future__ import annotations

import dataclasses

from faceleaks.evaluation.provenance import data_hashes, folder_digest, photo_list_digest
from faceleaks.evaluation.results import write_results
from faceleaks.report.html import write_html_report
from tests.report.numerals import numerals_not_in_record, visible_text
from tests.report.records import run_record


def _tree(root, files):
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def test_the_digest_sees_added_renamed_and_resized_photos_but_not_order_or_other_files(tmp_path):
    files = {"A/a_0001.jpg": b"xx", "B/b_0001.jpg": b"yyy"}
    one = folder_digest(_tree(tmp_path / "one", files))
    assert one == folder_digest(_tree(tmp_path / "two", dict(reversed(files.items()))))
    assert one == photo_list_digest(tmp_path / "one", [tmp_path / "one" / "B/b_0001.jpg", tmp_path / "one" / "A/a_0001.jpg"])
    (tmp_path / "one" / "README.txt").write_text("not a photo")
    assert folder_digest(tmp_path / "one") == one
    changes = [{"A/a_0001.jpg": b"xxz", "B/b_0001.jpg": b"yyy"}, {"A/a_0002.jpg": b"xx", "B/b_0001.jpg": b"yyy"},
               {**files, "C/c_0001.png": b"z"}]
    for n, other in enumerate(changes):
        assert folder_digest(_tree(tmp_path / f"c{n}", other)) != one, other
    assert one.startswith("sha256:") and len(one) == len("sha256:") + 64


def test_data_hashes_leave_out_missing_folders(tmp_path):
    root = _tree(tmp_path / "lfw", {"A/a.jpg": b"1"})
    assert data_hashes({"LFW": root, "UTKFace": tmp_path / "none", "other": None}) == {"LFW": folder_digest(root)}


def test_the_run_page_gives_the_data_hashes_and_every_numeral_stays_in_results_json(tmp_path):
    record = run_record()
    hashes = data_hashes({"LFW": _tree(tmp_path / "lfw", {"A/a_0001.jpg": b"1"}),
                          "UTKFace": _tree(tmp_path / "utk", {"20_1_0_1.jpg": b"22"})})
    record = dataclasses.replace(record, data=dataclasses.replace(record.data, hashes=hashes))
    out = tmp_path / "out"
    out.mkdir()
    write_results(record, out / "results.json")
    html = write_html_report(out).read_text()
    assert f"LFW {hashes['LFW']}; UTKFace {hashes['UTKFace']}" in visible_text(html)
    assert numerals_not_in_record(html, out / "results.json") == []
