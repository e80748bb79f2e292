"""Frozen dataclasses to and from JSON values, with caps for untrusted input.

A schema is a set of frozen dataclasses with full type hints; :func:`from_plain`
walks those hints to check and build a value received from a peer. Supported types:
``str``, ``int`` (64-bit), ``float`` (finite), ``bool``, ``datetime`` (ISO 8601),
``Literal[...]`` of strings, ``X | None``, ``tuple[X, ...]``, nested dataclasses
and generic dataclasses (``Section[Data]``).

Caps travel with the fields: :func:`items` bounds a tuple, :func:`text` a string
(every string loses control characters, see :func:`clean_text`). Unknown keys are
ignored; a missing field without a default, a wrong type or a non-finite number is a
:class:`RemoteProtocolError` naming the field.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import field
from datetime import datetime
from functools import cache
from typing import Any, Literal, TypeVar

from shared.clock import iso, parse_iso
from shared.errors import LocalProtocolError, RemoteProtocolError
from shared.safe_text import clean

#: Cap on a string field that declares none.
DEFAULT_STRING_LENGTH = 256

_INT_LIMIT = 2**63
_MAX_ITEMS = "qp_max_items"
_MAX_LEN = "qp_max_len"


def items(limit: int) -> Any:
    """A tuple field (default empty) holding at most ``limit`` items once parsed."""
    return field(default=(), metadata={_MAX_ITEMS: limit})


def text(limit: int, default: str = "") -> Any:
    """A string field cut to ``limit`` characters once parsed."""
    return field(default=default, metadata={_MAX_LEN: limit})


def clean_text(value: str, limit: int = DEFAULT_STRING_LENGTH) -> str:
    """``value`` without control, bidi or surrogate characters, at most ``limit`` long.

    Tabs and line breaks become spaces (one-line display); escape sequences and other
    control characters are dropped (:func:`shared.safe_text.clean`).
    A cut string ends with ``…``."""
    return clean(value, limit=limit)


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON; NaN and infinities are refused (``ValueError``)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def loads(data: bytes) -> Any:
    """Parse JSON text; ``ValueError``/``RecursionError`` on bad input, no NaN."""
    return json.loads(data, parse_constant=_refuse_constant)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def to_plain(value: Any) -> Any:
    """Dataclasses, tuples and datetimes as JSON-ready dicts, lists and strings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [to_plain(item) for item in value]
    if isinstance(value, datetime):
        return iso(value)
    return value


def from_plain(tp: Any, value: Any, what: str, path: str) -> Any:
    """Check ``value`` against type ``tp`` and build it with every cap applied.

    ``what`` names the document in error messages, ``path`` the value inside it."""
    return _decode(tp, value, _Where(what, path), {}, {})


@dataclasses.dataclass(frozen=True)
class _Where:
    what: str
    path: str

    def __truediv__(self, part: str) -> _Where:
        return _Where(self.what, f"{self.path}{part}")


class _Bad(RemoteProtocolError):
    def __init__(self, where: _Where, expected: str, value: object) -> None:
        super().__init__(f"{where.what}: {where.path} must be {expected}, not {_kind(value)}")


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "a list"
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    return names.get(type(value), "an object")


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _decode(tp: Any, value: Any, where: _Where, bound: dict[Any, Any], meta: Any) -> Any:
    if isinstance(tp, TypeVar):
        return _decode(bound[tp], value, where, bound, meta)
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in typing.get_args(tp):
            return None
        (inner,) = [arg for arg in typing.get_args(tp) if arg is not type(None)]
        return _decode(inner, value, where, bound, meta)
    if origin is Literal:
        choices = typing.get_args(tp)
        if not isinstance(value, str) or value not in choices:
            raise _Bad(where, "one of " + ", ".join(choices), value)
        return value
    if origin is tuple:
        return _decode_tuple(tp, value, where, bound, meta)
    cls = origin or tp
    if dataclasses.is_dataclass(cls):
        assert isinstance(cls, type)
        params = getattr(cls, "__parameters__", ())
        inner_bound = dict(zip(params, typing.get_args(tp), strict=True)) if origin else {}
        return _decode_dataclass(cls, value, where, inner_bound)
    return _decode_scalar(tp, value, where, meta)


def _decode_tuple(tp: Any, value: Any, where: _Where, bound: dict[Any, Any], meta: Any) -> Any:
    if not isinstance(value, list):
        raise _Bad(where, "a list", value)
    if _MAX_ITEMS not in meta:
        raise LocalProtocolError(f"schema declares no cap for {where.path}")
    item_type, _ = typing.get_args(tp)
    kept = value[: meta[_MAX_ITEMS]]
    return tuple(
        _decode(item_type, item, where / f"[{i}]", bound, {}) for i, item in enumerate(kept)
    )


def _decode_dataclass(cls: type, value: Any, where: _Where, bound: dict[Any, Any]) -> Any:
    if not isinstance(value, dict):
        raise _Bad(where, "an object", value)
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        inner = where / f".{f.name}"
        if f.name not in value:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise RemoteProtocolError(f"{where.what}: {inner.path} is missing")
            continue
        kwargs[f.name] = _decode(hints[f.name], value[f.name], inner, bound, f.metadata)
    return cls(**kwargs)


def _decode_scalar(tp: Any, value: Any, where: _Where, meta: Any) -> Any:
    if tp is str:
        if not isinstance(value, str):
            raise _Bad(where, "a string", value)
        return clean_text(value, meta.get(_MAX_LEN, DEFAULT_STRING_LENGTH))
    if tp is bool:
        if not isinstance(value, bool):
            raise _Bad(where, "a boolean", value)
        return value
    if tp is int:
        if type(value) is not int or not -_INT_LIMIT <= value < _INT_LIMIT:
            raise _Bad(where, "a 64-bit integer", value)
        return value
    if tp is float:
        if type(value) is int and -_INT_LIMIT <= value < _INT_LIMIT:
            return float(value)
        if type(value) is not float or not math.isfinite(value):
            raise _Bad(where, "a finite number", value)
        return value
    if tp is datetime:
        return _decode_time(value, where)
    raise LocalProtocolError(f"schema has an unsupported type at {where.path}: {tp!r}")


def _decode_time(value: Any, where: _Where) -> datetime:
    if not isinstance(value, str):
        raise _Bad(where, "an ISO 8601 time", value)
    try:
        parsed = parse_iso(value[:40])
    except (ValueError, OverflowError):
        raise _Bad(where, "an ISO 8601 time", value) from None
    assert parsed is not None
    return parsed
