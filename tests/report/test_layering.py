"""The report layer reads typed records only: no import circle inside it, no torch, and nothing of
the package but the core modules and the evaluation's record modules (STYLE.md section 1)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = {"faceleaks", "faceleaks.errors", "faceleaks.metrics", "faceleaks.seeding", "faceleaks.config",
           "faceleaks.evaluation", "faceleaks.evaluation.results", "faceleaks.evaluation.attribute_results",
           "faceleaks.evaluation.jsonio", "faceleaks.evaluation.inclusion_results",
           "faceleaks.evaluation.sweep_results", "faceleaks.evaluation.defend_results", "faceleaks.atomic",
           "faceleaks.evaluation.audit_results",
           "faceleaks.metric_inputs",
           "faceleaks.people_bootstrap"}


def _graph():
    grimp = pytest.importorskip("grimp", reason="grimp comes with import-linter (pip install -e .[dev])")
    return grimp.build_graph("faceleaks", cache_dir=None)  # imports inside functions count too


def test_report_modules_do_not_import_each_other_in_a_circle():
    graph = _graph()
    report = sorted(m for m in graph.modules if m.startswith("faceleaks.report."))
    assert "faceleaks.report.format" in report
    for module in report:
        for other in report:
            if module != other and graph.chain_exists(module, other) and graph.chain_exists(other, module):
                pytest.fail(f"import circle between {module} and {other}")


def test_report_reads_only_records_and_core_modules():
    graph = _graph()
    outside = set()
    for module in (m for m in graph.modules if m.startswith("faceleaks.report")):
        outside |= {m for m in graph.find_upstream_modules(module)
                    if m.startswith("faceleaks") and not m.startswith("faceleaks.report")}
    extra = {m for m in outside - ALLOWED if not m.startswith("faceleaks.config.")}
    assert not extra, f"the report layer reaches {sorted(extra)}: it should read records only"



def test_importing_every_report_module_does_not_load_torch():
    modules = sorted(p.stem for p in (ROOT / "faceleaks" / "report").glob("*.py") if p.stem != "__init__")
    code = ("import sys\n" + "".join(f"import faceleaks.report.{m}\n" for m in modules)
            + "assert 'torch' not in sys.modules, 'torch loaded'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
