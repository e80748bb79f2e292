"""Keyset paging in SQL: the conditions and the ``ORDER BY … LIMIT`` of one page.

A page starts after the sort key of the last row the caller saw, compared as a row
value (``(name, id) > (?, ?)``), so reading page N costs the same as page 1 and a
row added or removed meanwhile neither repeats nor skips another.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from relay.model import Keyset
from relay.store.sqlite.codec import encode


def conditions(
    page: Keyset | None, order: Sequence[str], descending: bool, scope: str | None
) -> tuple[list[str], list[Any]]:
    """The ``WHERE`` terms (to join with AND) and their parameters for ``page``:
    rows after ``page.after`` in ``order``, and of ``page.customer_ids`` in the
    column ``scope`` when both are given."""
    terms: list[str] = []
    params: list[Any] = []
    if page is None:
        return terms, params
    if page.customer_ids is not None and scope is not None:
        if page.customer_ids:
            terms.append(f"{scope} IN ({', '.join('?' for _ in page.customer_ids)})")
            params += page.customer_ids
        else:
            terms.append("0")
    if page.after is not None:
        if len(page.after) != len(order):
            raise ValueError(f"a sort key of {len(order)} values was expected")
        marks = ", ".join("?" for _ in order)
        terms.append(f"({', '.join(order)}) {'<' if descending else '>'} ({marks})")
        params += [encode(value) for value in page.after]
    return terms, params


def tail(page: Keyset | None, order: Sequence[str], descending: bool) -> tuple[str, list[Any]]:
    """`` ORDER BY …`` in ``order`` (every column one way) and `` LIMIT ?`` for ``page``."""
    way = " DESC" if descending else ""
    sql = " ORDER BY " + ", ".join(f"{column}{way}" for column in order)
    if page is None:
        return sql, []
    return sql + " LIMIT ?", [page.limit]


def where(terms: Sequence[str]) -> str:
    """`` WHERE a AND b`` (or "")."""
    return " WHERE " + " AND ".join(terms) if terms else ""


def select(
    base: str,
    page: Keyset | None,
    order: Sequence[str],
    descending: bool = False,
    scope: str | None = "customer_id",
    terms: Sequence[str] = (),
    params: Sequence[Any] = (),
) -> tuple[str, list[Any]]:
    """``base`` (a ``SELECT … FROM …``) with ``terms`` and the page's own conditions,
    its order and limit: the statement and its parameters."""
    more, more_params = conditions(page, order, descending, scope)
    end, end_params = tail(page, order, descending)
    sql = base + where([*terms, *more]) + end
    return sql, [*params, *more_params, *end_params]
