"""How records become SQLite rows and back: the store's one codec.

Columns are named after the record's dataclass fields. A value is encoded by its
Python type on the way in and decoded by the field's type hint on the way out:

- ``datetime``: fixed-width ISO-8601 UTC text with microseconds, so that comparing
  the text compares the instants (the store sorts and filters on it);
- ``date`` (a calendar day in the company's time zone): ``YYYY-MM-DD``;
- ``Decimal``: its exact string (``"87.50"`` keeps its exponent);
- ``bool``: 0 or 1; tuples and dicts: JSON text;
- ``X | None``: NULL, or ``X`` as above.
"""

from __future__ import annotations

import json
import sqlite3
import types
from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

_R = TypeVar("_R")

Decoder = Callable[[Any], Any]


# -- encoding --------------------------------------------------------------------------


def encode_ts(dt: datetime) -> str:
    """Fixed-width UTC text, e.g. ``2026-01-05T09:00:00.000000+00:00``."""
    if dt.utcoffset() is None:
        raise ValueError(f"naive datetime {dt!r}: the store keeps timezone-aware UTC")
    return dt.astimezone(UTC).isoformat(timespec="microseconds")


def decode_ts(text: str) -> datetime:
    """The aware UTC datetime stored as ``text`` by :func:`encode_ts`."""
    return datetime.fromisoformat(text).astimezone(UTC)


def encode(value: Any) -> Any:
    """``value`` as a column value, chosen by its Python type (None stays NULL)."""
    # datetime before date: every datetime is also a date.
    if isinstance(value, datetime):
        return encode_ts(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple):
        return json.dumps(list(value))
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return value


def columns(record: Any, drop: Sequence[str] = (), **extra: Any) -> dict[str, Any]:
    """The record's fields as encoded columns, minus ``drop``, plus ``extra``."""
    values = {f.name: encode(getattr(record, f.name)) for f in fields(record) if f.name not in drop}
    values.update(extra)
    return values


def insert_sql(table: str, names: Iterable[str]) -> str:
    """``INSERT INTO table (…) VALUES (:…)`` with named parameters for ``names``."""
    listed = list(names)
    placeholders = ", ".join(f":{name}" for name in listed)
    return f"INSERT INTO {table} ({', '.join(listed)}) VALUES ({placeholders})"


# -- decoding --------------------------------------------------------------------------


def _same(value: Any) -> Any:
    return value


# Types stored as themselves or decoded by one call; containers and optionals below.
_SCALARS: dict[Any, Decoder] = {
    datetime: decode_ts,
    date: date.fromisoformat,
    Decimal: Decimal,
    bool: bool,
    str: _same,
    int: _same,
}


def _decoder(hint: Any) -> Decoder:
    """The decoder for a column whose field is annotated ``hint``."""
    if hint in _SCALARS:
        return _SCALARS[hint]
    origin = get_origin(hint)
    if origin is tuple:
        return lambda text: tuple(json.loads(text))
    if origin is dict:
        return json.loads
    if origin is types.UnionType:
        present = [arg for arg in get_args(hint) if arg is not type(None)]
        if len(present) == 1 and len(get_args(hint)) == 2:
            inner = _decoder(present[0])
            return lambda value: None if value is None else inner(value)
    raise TypeError(f"no column decoding for fields of type {hint!r}")


# Built on first use of each record class: get_type_hints is too slow per row.
_DECODERS: dict[type, dict[str, Decoder]] = {}


def _decoders(cls: type) -> dict[str, Decoder]:
    found = _DECODERS.get(cls)
    if found is None:
        found = {name: _decoder(hint) for name, hint in get_type_hints(cls).items()}
        _DECODERS[cls] = found
    return found


def decode(cls: type[_R], row: sqlite3.Row, **given: Any) -> _R:
    """A ``cls`` record from ``row``; ``given`` fields are not read from it."""
    values = {name: dec(row[name]) for name, dec in _decoders(cls).items() if name not in given}
    return cls(**values, **given)
