"""report.html in headless Chromium: no console errors, every image decodes, a full-page screenshot.

Chromium is Debian's ``chromium`` package (``.ci/run`` installs it). Without it the tests skip,
except under CI (``CI`` set), where they fail. Screenshots go to the test's temporary folder and,
when ``FACELEAKS_SCREENSHOT_DIR`` is set, are copied there to be looked at.
"""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import subprocess
from pathlib import Path
from xml.etree import ElementTree

import pytest
from PIL import Image

from faceleaks.evaluation.audit import write_audit
from faceleaks.evaluation.inclusion_results import write_inclusion
from faceleaks.evaluation.results import write_results
from faceleaks.report.html import write_html_report
from tests.report.audit_records import audit_record
from tests.report.defence_records import defence_records, write_sweep
from tests.report.records import inclusion_record, run_record

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0", "--hide-scrollbars")


def _chromium(fallback: Path = Path("/usr/bin/chromium")) -> str:
    path = shutil.which("chromium") or (str(fallback) if fallback.exists() else None)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing under CI: .ci/run must apt-get install chromium before the tests")
        pytest.skip("Chromium not installed (Debian: apt-get install chromium)")
    return path


def render(page: Path, screenshot: Path, tmp_path: Path) -> tuple[int, str]:
    """Load ``page`` in headless Chromium, write a 1280x4000 screenshot; returns (exit code, stderr)."""
    profile = tmp_path / "chromium-profile"
    profile.mkdir(exist_ok=True)
    proc = subprocess.run([_chromium(), *FLAGS, f"--user-data-dir={profile}", f"--screenshot={screenshot}",
                           "--window-size=1280,4000", page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stderr


def console_messages(stderr: str) -> list[str]:
    """The page's console messages in Chromium's log (``...:CONSOLE:line] "message", source: ...``)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def _check_images(html: str) -> int:
    """Decode every ``<img>`` data URI (PIL) and parse every inline ``<svg>``; returns how many."""
    uris = re.findall(r'<img[^>]*\ssrc="([^"]+)"', html)
    for uri in uris:
        assert uri.startswith("data:image/png;base64,"), f"not an embedded PNG: {uri[:40]}"
        Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).verify()
    svgs = re.findall(r"<svg.*?</svg>", html, flags=re.S)
    for svg in svgs:
        ElementTree.fromstring(svg)
    return len(uris) + len(svgs)


def _keep(screenshot: Path) -> None:
    if os.environ.get("FACELEAKS_SCREENSHOT_DIR"):
        shutil.copy(screenshot, Path(os.environ["FACELEAKS_SCREENSHOT_DIR"]) / screenshot.name)


@pytest.mark.parametrize("kind", ["run", "inclusion", "audit", "defences"])
def test_the_page_renders_without_console_errors_and_every_image_decodes(tmp_path, kind):
    out = tmp_path / kind
    out.mkdir()
    if kind == "run":
        write_results(run_record(), out / "results.json")
    elif kind == "audit":
        write_audit(audit_record(), out)
    elif kind == "defences":
        write_sweep(out, defence_records())
    else:
        write_inclusion(inclusion_record(), out / "inclusion.json")
    page = write_html_report(out)
    html = page.read_text()
    fetches = re.findall(r'(?:src|href)\s*=\s*"(?:https?:)?//|url\(\s*["\']?(?:https?:)?//|@import', html)
    assert fetches == [] and "<script" not in html  # text may name a URL (an audit's endpoint); nothing loads one
    assert _check_images(html) >= {"run": 2}.get(kind, 1)
    shot = tmp_path / f"report-{kind}.png"
    code, stderr = render(page, shot, tmp_path)
    assert code == 0, stderr[-2000:]
    assert console_messages(stderr) == []
    with Image.open(shot) as img:
        assert img.size == (1280, 4000)
        assert len(img.convert("L").getcolors(maxcolors=1 << 16) or range(1 << 16)) > 50  # not a blank page
    _keep(shot)


def test_the_console_check_sees_a_page_that_logs_an_error(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text('<html><body><script>console.error("report-test-error")</script></body></html>')
    code, stderr = render(page, tmp_path / "bad.png", tmp_path)
    assert code == 0 and any("report-test-error" in m for m in console_messages(stderr))


def test_a_missing_chromium_fails_under_ci_and_skips_elsewhere(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="Chromium is missing under CI"):
        _chromium(fallback=tmp_path / "no-chromium")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        _chromium(fallback=tmp_path / "no-chromium")
