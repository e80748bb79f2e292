"""Reading a console call's parameters: one helper per kind of value, each raising
:class:`UsageError` (``bad_request``) with a line that names the parameter and says
what is wrong. Handlers read every parameter through these, never with a bare
``int()``/``Decimal()``/``date`` call on what the console sent: a malformed or
out-of-range value is the caller's mistake, not an internal error
(tests/unit/test_api_fuzz.py calls every method with random values)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from relay.model import Keyset
from shared.errors import BadRequestError
from shared.protocol.messages import MAX_CONTROL_MESSAGE

Params = dict[str, Any]
_R = TypeVar("_R")

MAX_NAME = 120
#: JSON of a page's items: with the reply's envelope, well inside the one control
#: message a console accepts (64 KiB), however large the rows.
PAGE_BYTES = MAX_CONTROL_MESSAGE * 3 // 4
DEFAULT_PAGE = 100  # rows of a list page unless the caller gives ``limit``
MAX_PAGE = 500
MAX_CURSOR = 4096  # characters; a cursor holds one row's sort key (names, ids, times)
#: The largest row id or offset: SQLite's INTEGER is a signed 64-bit number.
MAX_ID = 2**63 - 1
#: Days a console may name: any real bill fits, and a day's start and end in any
#: time zone stay inside what ``datetime`` can hold.
FIRST_YEAR, LAST_YEAR = 1970, 9000
#: Hours in one prepaid block or warning threshold (a sanity bound, not a policy).
MAX_HOURS = 1_000_000


def name(params: Params, key: str, required: bool = True, default: str = "") -> str:
    """A short string (a name, an id, a key), stripped; non-empty when required."""
    value = params.get(key, default)
    if not isinstance(value, str) or (required and not value.strip()):
        raise BadRequestError(f"{key} must be a non-empty string")
    value = value.strip()
    if len(value) > MAX_NAME and key not in ("public_key",):
        raise BadRequestError(f"{key} is longer than {MAX_NAME} characters")
    return value


def text(params: Params, key: str, limit: int = 200, required: bool = False) -> str | None:
    """A string parameter, stripped; None when absent (UsageError when required)."""
    value = params.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise BadRequestError(f"{key} is required")
        return None
    if not isinstance(value, str):
        raise BadRequestError(f"{key} must be text")
    if len(value) > limit:
        raise BadRequestError(f"{key} is longer than {limit} characters")
    return value.strip()


def required_text(params: Params, key: str, limit: int = 200) -> str:
    """:func:`text` for a parameter that must be given."""
    return text(params, key, limit, required=True) or ""


def whole(params: Params, key: str, default: int, low: int, high: int) -> int:
    """A whole number within ``low``..``high``."""
    value = params.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise BadRequestError(f"{key} must be a whole number from {low} to {high}")
    return value


def offset(params: Params) -> int:
    """Where a paged list goes on (``offset``, default 0)."""
    value = params.get("offset", 0)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_ID:
        raise BadRequestError("offset must be a whole number")
    return value


def flag(params: Params, key: str, default: bool = False) -> bool:
    """A yes/no parameter: ``true`` or ``false`` (absent or null: ``default``)."""
    value = params.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise BadRequestError(f"{key} must be true or false")
    return value


def row_id(params: Params, key: str) -> int | None:
    """A numeric id (a snapshot's, say); None when absent."""
    if params.get(key) is None:
        return None
    return whole(params, key, 0, 1, MAX_ID)


def names(params: Params, key: str, most: int = 1000) -> list[str]:
    """A list of names (default empty), each a short string."""
    value = params.get(key, [])
    if (
        not isinstance(value, list)
        or len(value) > most
        or not all(isinstance(n, str) and len(n) <= MAX_NAME for n in value)
    ):
        raise BadRequestError(f"{key} must be a list of at most {most} names")
    return value


def hours_as_minutes(params: Params, key: str, zero: bool = False) -> int:
    """Hours (``10``, ``2.5``, or as text) as whole minutes: positive, or with
    ``zero`` also 0; at most :data:`MAX_HOURS`."""
    value = params.get(key)
    least = "0 or more" if zero else "positive"
    wrong = BadRequestError(
        f"{key} must be hours, {least}, up to {MAX_HOURS}, that come to whole minutes "
        "(e.g. 10 or 2.5)"
    )
    if isinstance(value, bool) or not isinstance(value, (int, float, str)) or len(str(value)) > 40:
        raise wrong
    try:
        hours = Decimal(str(value).strip())
    except InvalidOperation:
        raise BadRequestError(f"{key} {str(value)[:40]!r} is not a number") from None
    if not hours.is_finite() or not 0 <= hours <= MAX_HOURS:
        raise wrong
    with localcontext() as exact:
        exact.prec = 60  # the bound above keeps every allowed value exact
        minutes = hours * 60
    if (minutes == 0 and not zero) or minutes != minutes.to_integral_value():
        raise wrong
    return int(minutes)


def month(params: Params, key: str) -> str:
    """A month written as ``2026-11``, within the years a console may name."""
    value = required_text(params, key, limit=20)
    year, _, number = value.partition("-")
    if not (year.isdigit() and len(year) == 4 and number.isdigit() and len(number) == 2):
        raise BadRequestError(f"{key} {value!r} should be a month such as 2026-11")
    _within_years(int(year), key, value)
    return value


def _within_years(year: int, key: str, value: str) -> None:
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise BadRequestError(
            f"{key} {value!r} is out of range: give a year from {FIRST_YEAR} to {LAST_YEAR}"
        )


def day(value: str, key: str) -> date:
    """A calendar day written as ``2026-11-03``, from :data:`FIRST_YEAR` to
    :data:`LAST_YEAR`."""
    if not isinstance(value, str):
        raise BadRequestError(f"{key} should be a date such as 2026-11-03")
    try:
        found = date.fromisoformat(value)
    except ValueError:
        raise BadRequestError(f"{key} {value!r} should be a date such as 2026-11-03") from None
    _within_years(found.year, key, value)
    return found


def moment(value: str, key: str, tz: ZoneInfo) -> datetime:
    """A moment written as ``2026-11-03 14:00`` (company time) or with an offset,
    from :data:`FIRST_YEAR` to :data:`LAST_YEAR`.

    A company time the clocks skip (spring forward) or show twice (fall back) is
    refused: only an offset says which moment is meant.
    """
    if not isinstance(value, str):
        raise BadRequestError(f"{key} should be a time such as '2026-11-03 14:00'")
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadRequestError(
            f"{key} {value!r} should be a time such as '2026-11-03 14:00'"
        ) from None
    _within_years(when.year, key, value)
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
        raise BadRequestError(
            f"{key} {text!r} happens twice in {tz.key} (the clocks go back); give the offset: "
            f"'{text}{before}' for the first, '{text}{after}' for the second"
        )
    raise BadRequestError(
        f"{key} {text!r} does not exist in {tz.key} (the clocks go forward); give the "
        f"offset, e.g. '{text}{before}'"
    )


def _offset(when: datetime) -> str:
    """``+01:00`` for a UTC offset of one hour."""
    text = when.strftime("%z")
    return f"{text[:3]}:{text[3:]}"


def keyset(
    params: Params, kinds: Sequence[str], customer_ids: Sequence[str] | None = None
) -> Keyset:
    """Which page of a list the caller asks for: ``limit`` rows (default
    :data:`DEFAULT_PAGE`, at most :data:`MAX_PAGE`) after ``cursor`` (the ``next`` of
    the page before; absent for the first). ``kinds`` are the types of the list's
    sort key, one of ``text``, ``int``, ``time``. The store is asked for one row
    more than the page holds: that row only says whether there is a next page."""
    limit = whole(params, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
    cursor = params.get("cursor")
    after = None if cursor is None else _read_cursor(cursor, kinds)
    scope = None if customer_ids is None else tuple(customer_ids)
    return Keyset(limit + 1, after, scope)


def page(
    found: Sequence[_R],
    asked: Keyset,
    row: Callable[[_R], dict[str, Any]],
    key: Callable[[_R], tuple[Any, ...]],
) -> dict[str, Any]:
    """One page of a list: ``{"items": [...], "next": cursor or null}``.

    ``found`` is what the store returned for ``asked`` (up to one row more than the
    page). Items stop at the page's row count or at :data:`PAGE_BYTES` of JSON,
    whichever comes first, so that a reply fits one control message whatever the
    rows hold; ``next`` is the sort key of the last item shown, as an opaque cursor,
    and null when nothing follows.
    """
    used, items, last = 0, list[dict[str, Any]](), None
    for record in found[: asked.limit - 1]:
        item = row(record)
        size = len(json.dumps(item, separators=(",", ":")))
        if items and used + size > PAGE_BYTES:
            break
        used += size
        items.append(item)
        last = record
    if last is None or len(items) == len(found):
        return {"items": items, "next": None}
    return {"items": items, "next": _write_cursor(key(last))}


def _write_cursor(key: tuple[Any, ...]) -> str:
    """A sort key as an opaque, URL-safe string."""
    values = [v.isoformat() if isinstance(v, datetime) else v for v in key]
    raw = json.dumps(values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_cursor(cursor: Any, kinds: Sequence[str]) -> tuple[Any, ...]:
    """The sort key a cursor of :func:`_write_cursor` holds; UsageError if it is
    not one this list gave (wrong shape or types)."""
    wrong = BadRequestError("cursor is not one this list gave; start again without it")
    if not isinstance(cursor, str) or len(cursor) > MAX_CURSOR:
        raise wrong
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:
        raise wrong from None
    if not isinstance(values, list) or len(values) != len(kinds):
        raise wrong
    return tuple(_key_value(value, kind, wrong) for value, kind in zip(values, kinds, strict=True))


def _key_value(value: Any, kind: str, wrong: BadRequestError) -> Any:
    if kind == "text" and isinstance(value, str):
        return value
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        if -(2**63) <= value < 2**63:  # what SQLite can compare
            return value
    if kind == "time" and isinstance(value, str):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            raise wrong from None
        if when.tzinfo is not None:
            return when.astimezone(UTC)
    raise wrong
