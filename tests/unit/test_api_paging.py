"""One paging convention for every console list: ``limit`` and an opaque ``cursor``
in, ``{items, next}`` out, each reply inside one control message whatever the rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from relay.api.params import DEFAULT_PAGE, MAX_PAGE, keyset, page
from relay.model import Keyset
from shared.errors import UsageError
from shared.protocol.messages import MAX_CONTROL_MESSAGE, Message, encode

KINDS = ("time", "text", "int")
WHEN = datetime(2026, 11, 3, 13, 0, 0, 123456, tzinfo=UTC)


def _rows(n: int, size: int = 10) -> list[tuple[datetime, str, int]]:
    return [(WHEN, "x" * size, i) for i in range(n)]


def _page(found: list[Any], asked: Keyset) -> dict[str, Any]:
    return page(found, asked, lambda r: {"id": r[2], "text": r[1]}, lambda r: r)


def test_the_first_page_asks_one_row_more_than_it_shows() -> None:
    assert keyset({}, KINDS) == Keyset(DEFAULT_PAGE + 1)
    assert keyset({"limit": 5}, KINDS, ["cus-1"]) == Keyset(6, None, ("cus-1",))


def test_next_is_the_last_shown_key_and_null_at_the_end() -> None:
    asked = keyset({"limit": 3}, KINDS)
    first = _page(_rows(4), asked)  # the store found one more than the page
    assert [i["id"] for i in first["items"]] == [0, 1, 2]
    assert keyset({"cursor": first["next"]}, KINDS).after == (WHEN, "x" * 10, 2)
    last = _page(_rows(3), asked)
    assert len(last["items"]) == 3 and last["next"] is None
    assert _page([], asked) == {"items": [], "next": None}


def test_large_rows_are_cut_to_fit_one_message() -> None:
    asked = keyset({"limit": MAX_PAGE}, KINDS)
    found = _rows(MAX_PAGE + 1, size=2000)
    shown, after = 0, None
    while True:
        value = _page(found[shown:], asked)
        reply = encode(Message("result", {"value": value}, 7))
        assert len(reply.encode()) < MAX_CONTROL_MESSAGE * 0.8
        assert value["items"], "a page always shows at least one row"
        shown += len(value["items"])
        if value["next"] is None:
            break
        after = keyset({"cursor": value["next"]}, KINDS).after
        assert after == found[shown - 1]
    assert shown == len(found)


def test_escaped_text_counts_as_it_travels() -> None:
    """Non-ASCII is sent as \\uXXXX escapes: six bytes a character, measured so."""
    asked = keyset({"limit": MAX_PAGE}, KINDS)
    value = _page([(WHEN, "é" * 2000, i) for i in range(MAX_PAGE + 1)], asked)
    assert len(encode(Message("result", {"value": value}, 7)).encode()) < MAX_CONTROL_MESSAGE


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": MAX_PAGE + 1},
        {"limit": True},
        {"limit": "10"},
        {"cursor": 5},
        {"cursor": ""},
        {"cursor": "not base64 at all!"},
        {"cursor": "é"},
        {"cursor": "W10"},  # [] : wrong length
        {"cursor": "x" * 5000},
    ],
)
def test_bad_paging_parameters_are_one_clear_line(params: dict[str, Any]) -> None:
    with pytest.raises(UsageError) as caught:
        keyset(params, KINDS)
    assert "\n" not in str(caught.value)


def test_a_cursor_of_another_list_is_refused() -> None:
    other = _page(_rows(3), keyset({"limit": 1}, ("time", "text", "int")))["next"]
    with pytest.raises(UsageError, match="cursor is not one this list gave"):
        keyset({"cursor": other}, ("text", "text"))
    with pytest.raises(UsageError, match="cursor is not one this list gave"):
        keyset({"cursor": other}, ("int", "text", "int"))
    numbers = page(
        [(True, 1), (2**70, 2)], Keyset(2), lambda r: {"n": r[1]}, lambda r: (r[0], r[1])
    )["next"]
    with pytest.raises(UsageError):  # a bool is not a number, nor is one beyond 64 bits
        keyset({"cursor": numbers}, ("int", "int"))
