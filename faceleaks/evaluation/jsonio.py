"""The one JSON reader/writer of typed results (``results.json``, ``attributes.json``), torch-free.

Writing turns a frozen dataclass into JSON values: NaN floats become ``null`` (here and nowhere
else), tuples become lists and float dict keys (FPR fractions) become their shortest repr
(``0.001`` -> ``"0.001"``). Reading walks the dataclass's type hints back: ``null`` becomes NaN
where the field is a ``float`` (``None`` where it is ``float | None``), lists become tuples where
the field is a tuple, and ``"0.001"`` becomes ``0.001`` where the key is a float. Every file
carries ``schema_version``; a file of another version raises ``ArtifactError``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import numbers
import types
import typing
from pathlib import Path
from typing import Any, TypeVar, Union

from faceleaks.atomic import atomic_write_text
from faceleaks.errors import ArtifactError

__all__ = ["SCHEMA_VERSION", "to_jsonable", "from_jsonable", "check_schema", "write_json", "read_json"]

SCHEMA_VERSION = 2
"""Version of the JSON layout of results. 1: untyped dicts, FPR keys written as strings by the
writer (before typed records); 2: typed records (this module)."""

T = TypeVar("T")


def to_jsonable(x: Any) -> Any:
    """``x`` as JSON values: dataclasses -> dicts, tuples -> lists, NaN -> None, float keys -> str.

    Examples
    --------
    >>> to_jsonable({0.001: float("nan"), "a": (1, 2.5)})
    {'0.001': None, 'a': [1, 2.5]}
    """
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {f.name: to_jsonable(getattr(x, f.name)) for f in dataclasses.fields(x)}
    if isinstance(x, float):
        return None if math.isnan(x) else x
    if isinstance(x, dict):
        return {_key(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    return x


def _key(k: Any) -> str:
    return float.__repr__(float(k)) if isinstance(k, float) else str(k)


@functools.lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_jsonable(tp: Any, raw: Any) -> Any:
    """Inverse of :func:`to_jsonable` for a value of type ``tp`` (a dataclass, container or scalar).

    Raises
    ------
    ArtifactError
        If ``raw`` does not fit ``tp`` (a missing or unknown field, a list where a dict belongs).

    Examples
    --------
    >>> from_jsonable(dict[float, float], {"0.001": None})
    {0.001: nan}
    """
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return None if raw is None and len(inner) < len(args) else from_jsonable(inner[0], raw)
    if dataclasses.is_dataclass(tp):
        return _dataclass(tp, raw)
    if tp is float:
        return float("nan") if raw is None else float(raw)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_jsonable(args[0], v) for v in _expect(raw, list, tp))
        return tuple(from_jsonable(a, v) for a, v in zip(args, _expect(raw, list, tp), strict=True))
    if origin is list:
        return [from_jsonable(args[0], v) for v in _expect(raw, list, tp)]
    if origin is dict:
        return {_unkey(args[0], k): from_jsonable(args[1], v) for k, v in _expect(raw, dict, tp).items()}
    if tp in (int, str, bool):
        return _expect(raw, tp, tp)
    return raw


def _unkey(tp: Any, key: str) -> Any:
    try:
        return tp(key) if tp in (float, int) else key
    except ValueError as err:
        raise ArtifactError(f"expected a {tp.__name__} key in the JSON, found {key!r}") from err


def _expect(raw: Any, kind: type, tp: Any) -> Any:
    if kind is int and isinstance(raw, numbers.Integral) and not isinstance(raw, bool):
        return int(raw)  # numpy integers from in-memory callers
    if kind is int or not isinstance(raw, kind):
        raise ArtifactError(f"expected {tp} in the JSON, found {type(raw).__name__} {raw!r:.60}")
    return raw


def _dataclass(cls: type[T], raw: Any) -> T:
    hints = _hints(cls)
    unknown = sorted(set(_expect(raw, dict, cls)) - set(hints))
    if unknown:
        raise ArtifactError(f"unknown field(s) {unknown} for {cls.__name__} in the JSON: the file was "
                            "written by another faceleaks version; rerun to regenerate it")
    try:
        return cls(**{name: from_jsonable(hints[name], value) for name, value in raw.items()})
    except TypeError as err:  # a required field is missing
        raise ArtifactError(f"{cls.__name__} in the JSON is incomplete ({err}); rerun to regenerate it") from err


def check_schema(raw: Any, where: str) -> None:
    """Raise ``ArtifactError`` unless ``raw`` is a dict with ``schema_version == SCHEMA_VERSION``.

    ``where`` names the file or record in the message (e.g. the path of ``results.json``).
    """
    found = raw.get("schema_version") if isinstance(raw, dict) else None
    if found != SCHEMA_VERSION:
        what = "no schema_version (written before versioned results)" if found is None else f"schema_version {found}"
        raise ArtifactError(f"{where} has {what}; this faceleaks reads schema_version {SCHEMA_VERSION}: rerun "
                            "`faceleaks run` (or `faceleaks attributes`) to regenerate it, old results are not converted")


def write_json(record: Any, path: Path) -> None:
    """Write a typed record (a dataclass with ``schema_version``) to ``path`` as indented JSON (NaN -> null).

    Atomic (``faceleaks.atomic``): a full disk or a crash leaves the previous file, never a torn one.
    Raises ``ArtifactError`` (one line naming the path) if the folder cannot be written.
    """
    atomic_write_text(path, json.dumps(to_jsonable(record), indent=1, allow_nan=False) + "\n")


def read_json(cls: type[T], path: Path) -> T:
    """Read a record of type ``cls`` written by :func:`write_json`.

    Raises
    ------
    ArtifactError
        If the file is not JSON, is of another ``schema_version`` (or has none), or does not fit ``cls``.
    """
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise ArtifactError(f"cannot read {path} ({err}); rerun to regenerate it") from err
    check_schema(raw, str(path))
    try:
        return from_jsonable(cls, raw)
    except ArtifactError as err:
        raise ArtifactError(f"{path}: {err}") from err
