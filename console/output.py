"""Printing results: one JSON value with ``--json``, otherwise a table for people.

Values that came from agents (or through the relay) are untrusted: every line the
console prints goes through :func:`shared.safe_text.clean` (no escape sequences,
controls or bidi characters) and nothing is interpreted as markup. Print with
:func:`say` or :func:`show`/:func:`show_object`, never with bare ``print``
(tests/unit/test_console_output.py checks).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from shared.safe_text import clean


def safe(value: Any) -> str:
    """Printable text for a cell: no escape sequences, no markup."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    return clean(value)


def say(*parts: Any, err: bool = False, multiline: bool = False) -> None:
    """Print one line (several when ``multiline``) of text that may hold peer data,
    cleaned; to stderr when ``err``. ``say()`` prints an empty line."""
    text = clean(" ".join(str(p) for p in parts), multiline=multiline)
    print(text, file=sys.stderr if err else sys.stdout, flush=err)


def print_json(value: Any) -> None:
    """``value`` as one line of JSON; ``ensure_ascii`` escapes every control byte."""
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
        say(f"no {title or 'rows'}")
        return
    table = Table(title=Text(safe(title)) if title else None, show_lines=False)
    for _, heading in columns:
        table.add_column(Text(safe(heading)), overflow="fold")
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
        say(f"{safe(key):<{width}}  {safe(item)}")
