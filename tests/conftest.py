from pathlib import Path

import pytest

from faceleaks.data.lfw import candidate_dirs, _image_folder  # noqa: PLC2701


def _have_lfw() -> bool:
    return any(_image_folder(p) is not None for p in candidate_dirs(None)[:-1])


@pytest.fixture(scope="session")
def real_lfw() -> None:
    """Skip (with the reason) when real LFW is not on this machine; CI has it in ../shared/data."""
    if not _have_lfw():
        pytest.skip("real LFW not found: set FACELEAKS_LFW_DIR or FACELEAKS_DATA_DIR, or put it in ../shared/data/lfw")


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory) -> Path:
    """One cache folder for the whole test session (cold at the start, as on a fresh machine)."""
    return tmp_path_factory.mktemp("faceleaks-cache")
