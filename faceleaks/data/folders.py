"""Where a data set is looked for: the one search order shared by LFW and UTKFace.

In order: the folder named by a setting (``--lfw-dir``, ``[data] utkface_dir`` ...), the data set's
own environment variable (``$FACELEAKS_LFW_DIR``, ``$FACELEAKS_UTKFACE_DIR``),
``$FACELEAKS_DATA_DIR/<name>``, then ``../shared/data/<name>`` from the working directory and from
the faceleaks checkout, then any fallbacks of the data set (e.g. scikit-learn's data home for LFW).
A folder the user named explicitly must hold the data: there is no silent fallback to another one.
That includes ``$FACELEAKS_DATA_DIR/<name>`` when no more specific folder is named (``named_dirs``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from faceleaks.errors import DataError

__all__ = ["search_dirs", "check_named_dirs", "named_dirs", "REPO_ROOT"]

#: The faceleaks checkout (the folder holding ``faceleaks/``); ``../shared/data`` is looked for beside it.
REPO_ROOT = Path(__file__).resolve().parents[2]


def search_dirs(name: str, named: str | os.PathLike | None, env_var: str, *,
                fallbacks: Sequence[Path] = ()) -> list[Path]:
    """The folders searched for data set ``name``, in order, each listed once.

    Parameters
    ----------
    name : folder name of the data set under ``$FACELEAKS_DATA_DIR`` and ``shared/data`` (``"lfw"``)
    named : the folder given by a setting, or None
    env_var : the data set's environment variable (``"FACELEAKS_LFW_DIR"``)
    fallbacks : folders looked in last

    Returns
    -------
    list of Path, without two entries resolving to the same folder (the first is kept)
    """
    out = [Path(named).expanduser()] if named else []
    if os.environ.get(env_var):
        out.append(Path(os.environ[env_var]).expanduser())
    if os.environ.get("FACELEAKS_DATA_DIR"):
        out.append(Path(os.environ["FACELEAKS_DATA_DIR"]).expanduser() / name)
    out += [Path.cwd().parent / "shared" / "data" / name, REPO_ROOT.parent / "shared" / "data" / name, *fallbacks]
    unique: list[Path] = []
    for path in out:
        if path.resolve() not in {q.resolve() for q in unique}:
            unique.append(path)
    return unique


def named_dirs(name: str, setting: str, named: str | os.PathLike | None,
               env_var: str) -> list[tuple[str, str | os.PathLike | None]]:
    """The folders the user named for data set ``name``, as ``(label, folder)`` pairs for ``check_named_dirs``.

    The setting (``lfw_dir``) and the data set's variable (``FACELEAKS_LFW_DIR``) always; and
    ``$FACELEAKS_DATA_DIR/<name>`` when neither is set, so a ``FACELEAKS_DATA_DIR`` pointing
    nowhere is an error as ``FACELEAKS_LFW_DIR`` is, not a silent fall back to other folders.
    """
    pairs = [(setting, named), (env_var, os.environ.get(env_var))]
    data_dir = os.environ.get("FACELEAKS_DATA_DIR")
    if data_dir and not any(folder for _, folder in pairs):
        pairs.append((f"FACELEAKS_DATA_DIR ({name}/ inside it)", Path(data_dir).expanduser() / name))
    return pairs


def check_named_dirs(named: Sequence[tuple[str, str | os.PathLike | None]], holds: Callable[[Path], bool],
                     what: str) -> None:
    """Raise if a folder the user named does not hold the data.

    Parameters
    ----------
    named : (label, folder or None) pairs, e.g. ``[("lfw_dir", cfg_value), ("FACELEAKS_LFW_DIR", env)]``
    holds : ``holds(folder) -> bool``, True when ``folder`` has the data
    what : what the folder should hold and how to fix it, completing "<label>='<folder>' holds no ..."

    Raises
    ------
    DataError
        For the first named folder (in ``named`` order) that ``holds`` rejects.
    """
    for label, folder in named:
        if folder and not holds(Path(folder).expanduser()):
            raise DataError(f"{label}={str(folder)!r} holds no {what}")
