"""Following a paged list: the one helper every list command uses.

Every list method of the relay answers a page, ``{"items": [...], "next": cursor}``
(``next`` null on the last); :func:`follow` asks for page after page and yields the
items as they come, so a long list starts printing at once and never has to fit
one message. ``--limit N`` stops after N items, ``--all`` takes every one.
``--json`` prints one JSON array, written as the pages arrive (one item a line).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any

from console.output import safe, say

if TYPE_CHECKING:
    from console.rpc import RelayClient

MAX_PAGE = 500  # the most rows the relay gives in one page

Row = dict[str, Any]


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return value


def add_flags(parser: argparse.ArgumentParser, default: int | None = None) -> None:
    """``--limit N`` and ``--all`` on a list command; ``default`` items are shown
    when neither is given (None: all of them)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--limit", type=_count, metavar="N", help="stop after N items")
    shown = "the default" if default is None else f"default: the first {default}"
    group.add_argument("--all", action="store_true", help=f"every item ({shown})")
    parser.set_defaults(page_default=default)


def wanted(args: argparse.Namespace) -> int | None:
    """How many items the command line asks for (None: all)."""
    if getattr(args, "all", False):
        return None
    limit: int | None = getattr(args, "limit", None)
    return limit if limit is not None else getattr(args, "page_default", None)


async def follow(
    relay: RelayClient, method: str, limit: int | None = None, **params: Any
) -> AsyncIterator[Row]:
    """The items of list ``method``, page after page, at most ``limit`` of them."""
    cursor: str | None = None
    left = limit
    while left is None or left > 0:
        asked = dict(params)
        if cursor is not None:
            asked["cursor"] = cursor
        asked["limit"] = MAX_PAGE if left is None else min(left, MAX_PAGE)
        value = await relay.call(method, **asked)
        items: list[Row] = value["items"]
        for item in items[:left]:
            yield item
        if left is not None:
            left -= len(items)
        cursor = value["next"]
        if cursor is None:
            return


async def collect(
    relay: RelayClient, method: str, limit: int | None = None, **params: Any
) -> list[Row]:
    """Every item of list ``method`` (at most ``limit``) in one list."""
    return [item async for item in follow(relay, method, limit, **params)]


async def show_list(
    relay: RelayClient,
    args: argparse.Namespace,
    method: str,
    columns: Sequence[tuple[str, str]],
    title: str,
    shape: Callable[[Row], Row] | None = None,
    **params: Any,
) -> int:
    """Follow ``method`` and print its items as they come: with ``--json`` one
    JSON array, otherwise a table (``shape`` adds the shown fields to a row).
    When the default count cut the list short, a line on stderr says so."""
    limit = wanted(args)
    as_json = bool(getattr(args, "json", False))
    page: list[Row] = []
    printed = 0
    table = _Table(columns, title)

    def flush() -> None:
        nonlocal printed
        if as_json:
            for item in page:
                sys.stdout.write(("[" if printed == 0 else ",\n") + json.dumps(item))
                printed += 1
        elif page:
            table.print([shape(item) for item in page] if shape else page)
            printed += len(page)
        sys.stdout.flush()
        page.clear()

    # One more than asked: only to learn whether the default cut anything off.
    probe = None if limit is None else limit + 1
    async for item in follow(relay, method, probe, **params):
        if limit is not None and printed + len(page) == limit:
            if not getattr(args, "all", False) and getattr(args, "limit", None) is None:
                flush()
                _finish(as_json, printed, title)
                say(f"showing the first {limit} {title}; --all for every one", err=True)
                return 0
            break
        page.append(item)
        if len(page) >= MAX_PAGE // 5:
            flush()
    flush()
    _finish(as_json, printed, title)
    return 0


def _finish(as_json: bool, printed: int, title: str) -> None:
    if as_json:
        sys.stdout.write("[]\n" if printed == 0 else "]\n")
    elif printed == 0:
        say(f"no {title}")
    sys.stdout.flush()


class _Table:
    """A table printed a chunk of rows at a time that reads as one: the title and
    headings once, then rows in the columns the first chunk set (a longer cell
    later folds within its column)."""

    def __init__(self, columns: Sequence[tuple[str, str]], title: str) -> None:
        self.columns = columns
        self.title = title
        self.widths: list[int] | None = None

    def print(self, rows: Sequence[Row]) -> None:
        from rich import box
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        # Piped output gets room to stay one row per line; a terminal keeps its width.
        console = Console(width=None if sys.stdout.isatty() else 200)
        first = self.widths is None
        cells = [[safe(row.get(key)) for key, _ in self.columns] for row in rows]
        if self.widths is None:
            self.widths = [
                max([len(heading), *(len(line[i]) for line in cells)])
                for i, (_, heading) in enumerate(self.columns)
            ]
            if sum(self.widths) + 3 * len(self.widths) > console.width:
                self.widths = []  # too wide to pin: let each chunk fit the screen
        table = Table(
            title=self.title if first else None,
            box=box.SIMPLE_HEAD,
            show_header=first,
            show_edge=False,
            pad_edge=False,
        )
        for i, (_, heading) in enumerate(self.columns):
            width = self.widths[i] if self.widths else None
            table.add_column(heading, overflow="fold", min_width=width, max_width=width)
        for line in cells:
            table.add_row(*(Text(cell) for cell in line))
        console.print(table)
