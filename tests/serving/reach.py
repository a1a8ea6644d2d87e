"""What an object leads to: a generic walk of everything reachable through its attributes.

From a root object the walk follows, recursively and without a list of attribute names:
- every instance ``__dict__`` entry and every ``__slots__`` value (over the whole MRO);
- every property value (``property``, ``functools.cached_property``, ``enum.property`` and other
  ``types.DynamicClassAttribute``), evaluated on the instance; a property that raises is skipped;
- every class attribute of a non-builtin class in the MRO (class-level registries), and for each
  function found there or anywhere else: its closure cells, default values and ``__dict__``;
- bound methods (``__self__``, ``__func__``), builtin methods' ``__self__``, ``functools.partial``
  (``func``, ``args``, ``keywords``), weak references (dereferenced);
- the items of lists, tuples, sets, frozensets, deques and dicts (keys and values), and the
  items of numpy arrays of str, bytes or objects.
It does not enter modules, classes themselves or a function's ``__globals__`` (reaching a module
namespace is an import, which the import-linter contracts govern, not an attribute).
"""

from __future__ import annotations

import collections
import functools
import types
import warnings
import weakref
from collections.abc import Iterator

import numpy as np
import torch

_LEAVES = (type(None), bool, int, float, complex, str, bytes, bytearray, range, slice)
_EVALUATED = (property, functools.cached_property, types.DynamicClassAttribute)
_SKIPPED = (types.ModuleType, type)


def _slot_names(cls: type) -> Iterator[str]:
    for klass in cls.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if name not in ("__dict__", "__weakref__"):
                yield name


def _user_classes(obj: object) -> list[type]:
    return [k for k in type(obj).__mro__ if k is not object and k.__module__ != "builtins"]


def _function_parts(fn: types.FunctionType) -> Iterator[tuple[str, object]]:
    for i, cell in enumerate(fn.__closure__ or ()):
        try:
            yield f"<closure {fn.__code__.co_freevars[i]}>", cell.cell_contents
        except ValueError:  # an empty cell
            continue
    for i, value in enumerate(fn.__defaults__ or ()):
        yield f"<default {i}>", value
    for name, value in (fn.__kwdefaults__ or {}).items():
        yield f"<default {name}>", value
    yield from fn.__dict__.items()


def _container_items(obj: object) -> Iterator[tuple[str, object]] | None:
    if isinstance(obj, dict):
        return (part for i, (k, v) in enumerate(obj.items()) for part in ((f"<key {i}>", k), (f"[{k!r:.40}]", v)))
    if isinstance(obj, (list, tuple, set, frozenset, collections.deque)):
        return ((f"[{i}]", v) for i, v in enumerate(obj))
    if isinstance(obj, np.ndarray):
        items = obj.ravel().tolist() if obj.dtype.kind in "OUSV" else []
        return ((f"[{i}]", v) for i, v in enumerate(items))
    return None


def _callable_parts(obj: object) -> Iterator[tuple[str, object]] | None:
    if isinstance(obj, types.FunctionType):
        return _function_parts(obj)
    if isinstance(obj, types.MethodType):
        return iter((("__self__", obj.__self__), ("__func__", obj.__func__)))
    if isinstance(obj, (types.BuiltinMethodType, types.MethodWrapperType)):
        return iter((("__self__", obj.__self__),))
    if isinstance(obj, functools.partial):
        return iter((("func", obj.func), ("args", obj.args), ("keywords", obj.keywords)))
    if isinstance(obj, weakref.ref):
        return iter((("<referent>", obj()),))
    if isinstance(obj, (staticmethod, classmethod)):
        return iter((("__func__", obj.__func__),))
    return None


def _instance_parts(obj: object) -> Iterator[tuple[str, object]]:
    try:
        yield from vars(obj).items()
    except TypeError:  # no __dict__
        pass
    for name in _slot_names(type(obj)):
        try:
            yield name, object.__getattribute__(obj, name)
        except AttributeError:  # an unset slot
            continue
    for klass in _user_classes(obj):
        for name, attr in vars(klass).items():
            if isinstance(attr, _EVALUATED):
                try:
                    with warnings.catch_warnings():  # e.g. a deprecated property of a client library
                        warnings.simplefilter("ignore")
                        value = getattr(obj, name)
                except Exception:  # noqa: BLE001 - a property that cannot be read reveals nothing
                    continue
                yield name, value
            elif not isinstance(attr, _SKIPPED) and name not in ("__dict__", "__weakref__", "__slots__", "__doc__"):
                yield f"<class {klass.__name__}>.{name}", attr


def children(obj: object) -> Iterator[tuple[str, object]]:
    """The objects ``obj`` leads to in one step, each with a label for the path."""
    if isinstance(obj, _LEAVES + _SKIPPED) or isinstance(obj, np.generic):
        return iter(())
    for parts in (_container_items(obj), _callable_parts(obj)):
        if parts is not None:
            return parts
    return _instance_parts(obj)


def walk(root: object, *, limit: int = 200_000) -> Iterator[tuple[str, object]]:
    """Every object reachable from ``root`` (root included) with a path, breadth-first, each once.

    Raises ``AssertionError`` if more than ``limit`` objects are reachable (the walk would be
    incomplete, so nothing could be concluded from it).
    """
    seen: dict[int, object] = {id(root): root}  # keeps temporaries alive, so ids are not reused
    queue = collections.deque([("box", root)])
    while queue:
        path, obj = queue.popleft()
        yield path, obj
        if isinstance(obj, (torch.Tensor, torch.nn.Module)):
            continue
        for label, child in children(obj):
            if id(child) not in seen:
                seen[id(child)] = child
                assert len(seen) <= limit, f"more than {limit} objects reachable from the box; walk incomplete"
                queue.append((f"{path}.{label}", child))


def leaks(root: object, secrets: tuple[str, ...]) -> list[str]:
    """Paths from ``root`` to a ``torch.nn.Module``, a ``torch.Tensor`` or a str/bytes holding a secret."""
    found = []
    for path, obj in walk(root):
        if isinstance(obj, (torch.Tensor, torch.nn.Module)):
            found.append(f"{path}: {type(obj).__name__}")
        elif isinstance(obj, str) and any(s in obj for s in secrets):
            found.append(f"{path}: member name {obj!r}")
        elif isinstance(obj, (bytes, bytearray)) and any(s.encode() in obj for s in secrets):
            found.append(f"{path}: member name in bytes")
    return found
