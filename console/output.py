"""Printing results: one JSON value with ``--json``, otherwise a table for people.

Values that came from agents are untrusted: control characters are replaced and
nothing is interpreted as markup.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any


def safe(value: Any) -> str:
    """Printable text for a cell: no escape sequences, no markup."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    return "".join(ch if ch.isprintable() else "\ufffd" for ch in str(value))


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=None)
    sys.stdout.write("\n")


def print_table(
    rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]], title: str = ""
) -> None:
    """``columns`` is ``(key, heading)`` pairs."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    if not rows:
        print(f"no {title or 'rows'}")
        return
    table = Table(title=title or None, show_lines=False)
    for _, heading in columns:
        table.add_column(heading, overflow="fold")
    for row in rows:
        table.add_row(*(Text(safe(row.get(key))) for key, _ in columns))
    # Piped output gets room to stay one row per line; a terminal keeps its width.
    Console(width=None if sys.stdout.isatty() else 200).print(table)


def show(rows: Any, columns: Sequence[tuple[str, str]], as_json: bool, title: str = "") -> None:
    if as_json:
        print_json(rows)
    else:
        print_table(rows, columns, title)


def show_object(value: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(value)
        return
    width = max(len(k) for k in value) if value else 0
    for key, item in value.items():
        print(f"{key:<{width}}  {safe(item)}")
