"""``faceleaks audit`` against a student saved by a real ``--quick`` run, served by a real uvicorn.

Probe and reference folders are built from raw LFW photos (symlinks) of people the run's
``split.json`` marks as members, non-members and references.
"""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from faceleaks.cli.main import app
from faceleaks.data.lfw import candidate_dirs, _image_folder  # noqa: PLC2701
from faceleaks.evaluation.audit_results import read_audit
from faceleaks.serving.keys import KeyStore
from faceleaks.serving.ledger import Ledger
from faceleaks.serving.server import Faults, load_api, serve_in_thread
from tests.report.numerals import numerals_not_in_record

ROOT = Path(__file__).resolve().parents[2]
K = 3
STUDENT = ("victim", "lfw-identity")


def _lfw() -> Path:
    return next(f for f in (_image_folder(p) for p in candidate_dirs(None)[:-1]) if f is not None)


def _folder(dst: Path, people: list[str], lfw: Path, n: int) -> Path:
    for person in people:
        (dst / person).mkdir(parents=True, exist_ok=True)
        for photo in sorted((lfw / person).glob("*.jpg"))[:n]:
            (dst / person / photo.name).symlink_to(photo)
    return dst


@pytest.fixture(scope="module")
def world(real_lfw, session_cache, tmp_path_factory):
    """A quick run's saved student, probe/reference folders, labels, and a key store.

    ``$FACELEAKS_TEST_QUICK_RUN`` may name the --out folder of an existing ``run --quick`` to reuse.
    """
    base = tmp_path_factory.mktemp("audit")
    run = Path(os.environ.get("FACELEAKS_TEST_QUICK_RUN", base / "run"))
    if not (run / "split.json").exists():
        result = CliRunner().invoke(app, ["run", "--quick", "--out", str(run), "--cache-dir", str(session_cache),
                                          "--no-progress"])
        assert result.exit_code == 0, result.output
    roles = json.loads((run / "split.json").read_text())["roles"]
    lfw = _lfw()
    probe_people = roles["member"][:4] + roles["nonmember"][:4]
    labels = base / "labels.csv"
    labels.write_text("person,member\n" + "".join(f"{p},{int(p in roles['member'])}\n" for p in probe_people))
    keys = KeyStore(base / "keys.sqlite")
    _, secret = keys.create("auditor", budget=1_000_000)
    (base / "key.txt").write_text(secret + "\n")
    return {"run": run, "probe": _folder(base / "probe", probe_people, lfw, K + 1),
            "reference": _folder(base / "reference", roles["reference"], lfw, K), "labels": labels,
            "keys": keys, "key_file": base / "key.txt", "members": set(roles["member"]), "cache": session_cache}


def _student(world):
    return load_api(world["run"] / "students" / STUDENT[0] / STUDENT[1], cache_dir=world["cache"])


def _audit(url, world, out, *extra):
    return CliRunner().invoke(app, ["audit", "--url", url, "--key-file", str(world["key_file"]), "--probe",
                                    str(world["probe"]), "--reference", str(world["reference"]), "--k", str(K),
                                    "--fpr", "0.05", "--out", str(out), "--no-progress", *extra])


@pytest.fixture(scope="module")
def in_process(world, tmp_path_factory):
    """The audit's record with the in-process box (same student, photos and seed)."""
    from faceleaks.config import TeacherConfig
    from faceleaks.evaluation.attacker import TeacherPublicBase
    from faceleaks.evaluation.audit import read_labels, run_audit
    from faceleaks.evaluation.audit_data import read_people
    from faceleaks.models.dlib_teacher import dlib_base_teacher

    cache = tmp_path_factory.mktemp("in-process-cache")
    base = TeacherPublicBase(dlib_base_teacher(TeacherConfig(), cache_dir=cache))
    return run_audit(_student(world), base, read_people(world["probe"], cache_dir=cache),
                     read_people(world["reference"], cache_dir=cache), k=K, fpr=0.05, endpoint="in-process",
                     labels=read_labels(world["labels"]))


def _scores(path: Path) -> dict[str, tuple[float, float, str]]:
    people = json.loads(path.read_text())["people"]
    return {p["person"]: (p["score"], p["p_value"], p["verdict"]) for p in people}


def _check_same(results: Path, record) -> None:
    over_http = _scores(results)
    assert sorted(over_http) == sorted(p.person for p in record.people)
    for p in record.people:
        score, p_value, verdict = over_http[p.person]
        assert score == pytest.approx(p.score, rel=1e-5, abs=1e-6)  # batches differ: ~1e-7 in float32
        assert (p_value, verdict) == (p.p_value, p.verdict)


def test_audit_over_http_equals_the_in_process_box(world, in_process, tmp_path):
    with serve_in_thread(_student(world), keys=world["keys"]) as url:
        result = _audit(url, world, tmp_path / "out", "--labels", str(world["labels"]))
    assert result.exit_code == 0, result.output
    _check_same(tmp_path / "out" / "results.json", in_process)
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert len(data["people"]) == 8 and data["n_reference"] == len(in_process.reference_scores) >= 20
    assert data["session"]["sent"] == data["n_queries_probe"] + data["n_queries_reference"]
    assert in_process.auc is not None and data["auc"] == pytest.approx(in_process.auc, abs=1e-12)
    assert all(p["n_queries"] == K for p in data["people"])
    record = read_audit(tmp_path / "out" / "results.json")  # the typed record, and the page written from it
    assert record.session.sent == data["session"]["sent"] and set(record.photo_hashes) == {"probe", "reference"}
    html = (tmp_path / "out" / "report.html").read_text()
    assert numerals_not_in_record(html, tmp_path / "out" / "results.json") == []


def test_redact_fail_above_and_purge(world, in_process, tmp_path):
    out = tmp_path / "out"
    with serve_in_thread(_student(world), keys=world["keys"]) as url:
        result = _audit(url, world, out, "--redact", "--fail-above", "--fpr", "0.5")
    data = json.loads((out / "results.json").read_text())
    flagged = [p for p in data["people"] if p["verdict"] == "member"]
    assert result.exit_code == (3 if flagged else 0), result.output
    text = "".join((out / f).read_text() for f in ("results.json", "summary.md", "report.html")) + result.output
    assert not [p for p in in_process.people if p.person in text] and data["redacted"]
    purge = CliRunner().invoke(app, ["audit", "purge", "--out", str(out)])
    assert purge.exit_code == 0 and not (out / "ledger.sqlite").exists() and (out / "results.json").exists()


def test_an_audit_through_a_server_failing_10_percent_of_requests_ends_identical(world, in_process, tmp_path):
    faults = Faults(rate=0.1, delay=2.0, seed=1)  # half 503, half answered after the client's 1 s timeout
    with serve_in_thread(_student(world), keys=world["keys"], faults=faults) as url:
        result = _audit(url, world, tmp_path / "out", "--batch-size", "4", "--timeout", "1", "--retries", "20")
    assert result.exit_code == 0, result.output
    _check_same(tmp_path / "out" / "results.json", in_process)
    assert read_audit(tmp_path / "out" / "results.json").session.retries >= 1  # faults happened and were retried


def _cli(url, world, out, ledger=None):
    cmd = [sys.executable, "-m", "faceleaks.cli.main", "audit", "--url", url, "--key-file", str(world["key_file"]),
           "--probe", str(world["probe"]), "--reference", str(world["reference"]), "--k", str(K), "--fpr", "0.05",
           "--out", str(out), "--no-progress", "--batch-size", "8"] + (["--ledger", str(ledger)] if ledger else [])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


class _Slow:
    """The served student, 0.1 s slower per batch (so the audit can be killed mid-way)."""

    def __init__(self, box):
        self.output_kind, self.input_size, self._box = box.output_kind, box.input_size, box

    def query(self, images):
        time.sleep(0.1)
        return self._box.query(images)


@pytest.mark.slow
def test_audit_killed_mid_way_resumes_without_resending_and_ends_identical(world, in_process, tmp_path):
    out, served = tmp_path / "out", Counter()
    with serve_in_thread(_Slow(_student(world)), keys=world["keys"], served=served) as url:
        proc = _cli(url, world, out)
        ledger, deadline = out / "ledger.sqlite", time.monotonic() + 300
        while (not ledger.exists() or Ledger(ledger, f"{url} posterior").count() < 24) and time.monotonic() < deadline:
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        held = Ledger(ledger, f"{url} posterior").count()
        again = _cli(url, world, out)
        output = again.communicate(timeout=600)[0]
    assert again.returncode == 0, output
    session = json.loads((out / "results.json").read_text())["session"]
    assert held >= 24 and session["from_ledger"] >= held
    twice = [h for h, n in served.items() if n > 1]
    assert len(twice) <= 8  # at most the batch in flight at the kill went again
    _check_same(out / "results.json", in_process)


@pytest.mark.slow
def test_two_audits_sharing_one_ledger(world, in_process, tmp_path):
    shared, served = tmp_path / "shared.sqlite", Counter()
    with serve_in_thread(_student(world), keys=world["keys"], served=served) as url:
        procs = [_cli(url, world, tmp_path / f"out{i}", ledger=shared) for i in (1, 2)]
        outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    for i in (1, 2):
        _check_same(tmp_path / f"out{i}" / "results.json", in_process)
    ledger = Ledger(shared, f"{url} posterior")
    assert ledger.check() == "ok" and ledger.count() == len(served)
    assert np.all(np.array(list(served.values())) <= 2)


def test_serve_command_serves_the_saved_student(world, tmp_path):
    from faceleaks.serving.client import HttpBlackBox
    from faceleaks.serving.server import free_port

    keys = KeyStore(tmp_path / "keys.sqlite")
    _, secret = keys.create("a", budget=5)
    port = free_port()
    cmd = [sys.executable, "-m", "faceleaks.cli.main", "serve", str(world["run"]), "--student", STUDENT[1],
           "--keys", str(tmp_path / "keys.sqlite"), "--port", str(port), "--output", "label"]
    proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                box = HttpBlackBox(f"http://127.0.0.1:{port}", key=secret, retries=1, timeout=5)
                break
            except Exception:
                assert time.monotonic() < deadline and proc.poll() is None, proc.stdout.read() if proc.poll() else ""
                time.sleep(0.5)
        assert box.output_kind.value == "label" and box.input_size == 150
        chips = np.stack([np.full((150, 150, 3), 60 * i, np.uint8) for i in range(3)])
        assert box.query(np.concatenate([chips, chips[:1]])).values.shape == (4,)
        assert box.remaining == 2  # 3 distinct images charged: the repeated one is not sent twice
    finally:
        proc.terminate()
        proc.wait(timeout=30)
