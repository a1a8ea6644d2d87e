"""The shared search order for data folders (LFW and UTKFace) and the named-folder check."""

import pytest

from faceleaks.data import folders
from faceleaks.data.folders import check_named_dirs, search_dirs
from faceleaks.data.utkface import find_utkface_root
from faceleaks.errors import DataError


@pytest.fixture
def clean_env(tmp_path, monkeypatch):
    for var in ("FACELEAKS_DATA_DIR", "FACELEAKS_LFW_DIR", "FACELEAKS_UTKFACE_DIR"):
        monkeypatch.delenv(var, raising=False)
    work = tmp_path / "work" / "main"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    monkeypatch.setattr(folders, "REPO_ROOT", tmp_path / "repo" / "main")
    return tmp_path


def test_search_order_is_setting_env_data_dir_shared_then_fallbacks(clean_env, monkeypatch):
    t = clean_env
    monkeypatch.setenv("FACELEAKS_UTKFACE_DIR", str(t / "env"))
    monkeypatch.setenv("FACELEAKS_DATA_DIR", str(t / "data"))
    got = search_dirs("utkface", t / "named", "FACELEAKS_UTKFACE_DIR", fallbacks=[t / "last"])
    assert got == [t / "named", t / "env", t / "data" / "utkface", t / "work" / "shared" / "data" / "utkface",
                   t / "repo" / "shared" / "data" / "utkface", t / "last"]


def test_search_lists_each_folder_once(clean_env, monkeypatch):
    t = clean_env
    monkeypatch.setattr(folders, "REPO_ROOT", t / "work" / "main")  # checkout = working directory
    monkeypatch.setenv("FACELEAKS_DATA_DIR", str(t / "work" / "shared" / "data"))
    got = search_dirs("lfw", None, "FACELEAKS_LFW_DIR")
    assert got == [t / "work" / "shared" / "data" / "lfw"]


def test_named_folder_without_data_is_an_error_naming_it(tmp_path):
    ok, empty = tmp_path / "ok", tmp_path / "empty"
    check_named_dirs([("a_dir", None), ("A_ENV", ok)], lambda p: p == ok, "photos; fix it")
    with pytest.raises(DataError, match=r"A_ENV='.*empty' holds no photos; fix it"):
        check_named_dirs([("a_dir", ok), ("A_ENV", empty)], lambda p: p == ok, "photos; fix it")


def test_utkface_found_beside_the_checkout_and_missing_lists_each_place_once(clean_env):
    t = clean_env
    with pytest.raises(DataError, match="UTKFace not found") as err:
        find_utkface_root(None)
    lines = str(err.value).splitlines()
    assert str(t / "repo" / "shared" / "data" / "utkface") in lines[2] and len(lines) == len(set(lines))
    shared = t / "repo" / "shared" / "data" / "utkface"
    shared.mkdir(parents=True)
    (shared / "labels.csv").write_text("path,age,gender,race\n")
    assert find_utkface_root(None) == shared
    with pytest.raises(DataError, match="utkface_dir=.*nowhere.* holds no UTKFace photos"):
        find_utkface_root(t / "nowhere")
