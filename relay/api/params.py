"""Reading a console call's parameters: one helper per kind of value, each raising
:class:`UsageError` with a line that says what is wrong."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from shared.errors import UsageError

Params = dict[str, Any]

MAX_NAME = 120
PAGE_BYTES = 56_000  # of JSON per page, inside one 64 KiB control message


def name(params: Params, key: str, required: bool = True, default: str = "") -> str:
    """A short string (a name, an id, a key), stripped; non-empty when required."""
    value = params.get(key, default)
    if not isinstance(value, str) or (required and not value.strip()):
        raise UsageError(f"{key} must be a non-empty string")
    value = value.strip()
    if len(value) > MAX_NAME and key not in ("public_key",):
        raise UsageError(f"{key} is longer than {MAX_NAME} characters")
    return value


def text(params: Params, key: str, limit: int = 200, required: bool = False) -> str | None:
    """A string parameter, stripped; None when absent (UsageError when required)."""
    value = params.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise UsageError(f"{key} is required")
        return None
    if not isinstance(value, str):
        raise UsageError(f"{key} must be text")
    if len(value) > limit:
        raise UsageError(f"{key} is longer than {limit} characters")
    return value.strip()


def required_text(params: Params, key: str, limit: int = 200) -> str:
    """:func:`text` for a parameter that must be given."""
    return text(params, key, limit, required=True) or ""


def whole(params: Params, key: str, default: int, low: int, high: int) -> int:
    """A whole number within ``low``..``high``."""
    value = params.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise UsageError(f"{key} must be a whole number from {low} to {high}")
    return value


def offset(params: Params) -> int:
    """Where a paged list goes on (``offset``, default 0)."""
    value = params.get("offset", 0)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise UsageError("offset must be a whole number")
    return value


def day(value: str, key: str) -> date:
    """A calendar day written as ``2026-11-03``."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{key} {value!r} should be a date such as 2026-11-03") from None


def moment(value: str, key: str, tz: ZoneInfo) -> datetime:
    """A moment written as ``2026-11-03 14:00`` (company time) or with an offset.

    A company time the clocks skip (spring forward) or show twice (fall back) is
    refused: only an offset says which moment is meant.
    """
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{key} {value!r} should be a time such as '2026-11-03 14:00'") from None
    if when.tzinfo is None:
        when = _local(when, value.strip(), key, tz)
    return when.astimezone(UTC).replace(microsecond=0)


def _local(wall: datetime, text: str, key: str, tz: ZoneInfo) -> datetime:
    """``wall`` in ``tz``; UsageError asking for the offset when it is not one moment."""
    first, second = wall.replace(tzinfo=tz, fold=0), wall.replace(tzinfo=tz, fold=1)
    before, after = _offset(first), _offset(second)
    if before == after:
        return first
    if first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall:
        raise UsageError(
            f"{key} {text!r} happens twice in {tz.key} (the clocks go back); give the offset: "
            f"'{text}{before}' for the first, '{text}{after}' for the second"
        )
    raise UsageError(
        f"{key} {text!r} does not exist in {tz.key} (the clocks go forward); give the "
        f"offset, e.g. '{text}{before}'"
    )


def _offset(when: datetime) -> str:
    """``+01:00`` for a UTC offset of one hour."""
    text = when.strftime("%z")
    return f"{text[:3]}:{text[3:]}"


def page(rows: list[dict[str, Any]], start: int, more: bool) -> dict[str, Any]:
    """As many of ``rows`` as fit :data:`PAGE_BYTES`; ``next`` says where to go on."""
    used, items = 0, list[dict[str, Any]]()
    for row in rows:
        size = len(json.dumps(row, separators=(",", ":")))
        if items and used + size > PAGE_BYTES:
            break
        used += size
        items.append(row)
    done = len(items) == len(rows) and not more
    return {"items": items, "next": None if done else start + len(items)}
