import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import faceleaks

ROOT = Path(__file__).resolve().parents[1]


def test_public_api_names_resolve():
    for name in faceleaks.__all__:
        assert getattr(faceleaks, name) is not None, name
    assert sorted(faceleaks.__all__) == sorted(set(faceleaks.__all__))


def test_importing_faceleaks_does_not_load_torch():
    code = "import sys, faceleaks, faceleaks.report.tables; assert 'torch' not in sys.modules, 'torch loaded'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.mark.skipif(shutil.which("lint-imports") is None, reason="import-linter not installed (pip install -e .[dev])")
def test_import_contracts():
    result = subprocess.run(["lint-imports"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
