"""Figure state for ``PlotlyFigure``: the wire format, merge/diff rules and read-only access.

Arrays travel as ``{"dtype", "shape", "buffer"}`` where buffer is a memoryview (widget state,
which ipywidgets turns into binary buffers) or the index of a buffer sent with a message.
Merge rules (Python and JS alike): a dict merges into a dict, ``None`` deletes the key, anything
else (arrays, lists, numbers, strings) replaces the value.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np

_MISSING = object()


def _array_spec(arr: np.ndarray, buffers: list[memoryview] | None) -> Any:
    """An array as ``{"dtype", "shape", "buffer"}`` (buffer: memoryview, or its index in buffers)."""
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    elif arr.dtype.kind in "iu" and arr.dtype.itemsize == 8:  # JS has no friendly int64 array
        small = arr.size == 0 or (arr.min() >= -(2**31) and arr.max() < 2**31)
        arr = arr.astype(np.int32 if small else np.float64)
    elif arr.dtype == np.float16:
        arr = arr.astype(np.float32)
    elif arr.dtype.kind not in "iuf":
        return arr.tolist()  # strings and objects go as JSON
    if arr.ndim > 2:
        raise ValueError(f"plot arrays have 1 or 2 dimensions, got shape {arr.shape}")
    view = memoryview(np.ascontiguousarray(arr).reshape(-1).view(np.uint8))
    if buffers is None:
        buffer: Any = view
    else:
        buffers.append(view)
        buffer = len(buffers) - 1
    return {"dtype": arr.dtype.name, "shape": list(arr.shape), "buffer": buffer}


def encode(value: Any, buffers: list[memoryview] | None = None) -> Any:
    """Copy of ``value`` that JSON can carry: numpy arrays become binary array specs."""
    if isinstance(value, np.ndarray):
        return _array_spec(value, buffers)
    if isinstance(value, Mapping):
        return {str(k): encode(v, buffers) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode(v, buffers) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return False
        return a.dtype == b.dtype and a.shape == b.shape and bool(np.array_equal(a, b))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def diff(current: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """The part of ``patch`` that would change ``current`` (so unchanged values are not re-sent)."""
    out: dict[str, Any] = {}
    for key, value in patch.items():
        cur = current.get(key, _MISSING)
        if value is None:
            if cur is not _MISSING:
                out[key] = None
        elif isinstance(value, Mapping) and isinstance(cur, Mapping):
            sub = diff(cur, value)
            if sub:
                out[key] = sub
        elif cur is _MISSING or not _equal(cur, value):
            out[key] = value
    return out


def owned_copy(value: Any) -> Any:
    """A private copy of a property value (arrays copied, dicts and lists deep-copied)."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, Mapping):
        return {str(k): owned_copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [owned_copy(v) for v in value]
    return copy.copy(value)


def merge(target: dict[str, Any], patch: Mapping[str, Any], *, keep_none: bool = False) -> None:
    """Apply ``patch`` to ``target`` in place (``keep_none``: store None instead of deleting)."""
    for key, value in patch.items():
        if value is None and not keep_none:
            target.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(target.get(key), dict):
            merge(target[key], value, keep_none=keep_none)
        else:
            target[key] = owned_copy(value)


class Props:
    """Read-only attribute access to figure state: ``fig.data[0].marker.color``.

    Unset properties read as None, as in plotly. Edit through ``PlotlyFigure`` methods.
    """

    __slots__ = ("_d",)

    def __init__(self, d: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_d", d)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name: str) -> Any:
        value = self._d.get(name)
        return Props(value) if isinstance(value, Mapping) else value

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(
            f"figure state is read-only here (tried to set {name!r}): use "
            "PlotlyFigure.update_traces({index: {...}}) or update_layout({...})"
        )

    def __contains__(self, name: str) -> bool:
        return name in self._d

    def __repr__(self) -> str:
        return f"Props({sorted(self._d)})"

    def to_dict(self) -> dict[str, Any]:
        """A deep copy of these properties as plain dicts."""
        return owned_copy(self._d)
