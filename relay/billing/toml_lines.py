"""Find the line a TOML key was written on, so errors about a value can name it.

``tomllib`` forgets positions once a document parses. This scanner re-reads the
text line by line, tracking table headers (``[a.b]``, ``[[a.b]]`` with their
index) and keys, including the keys of one-line inline tables. It is a helper
for error messages only: anything it cannot place falls back to the nearest
enclosing key it did see.
"""

from __future__ import annotations

import re

Path = tuple[str | int, ...]

_BARE = r"[A-Za-z0-9_-]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"|\'[^\']*\''
_KEY = rf"(?:{_BARE}|{_QUOTED})(?:\s*\.\s*(?:{_BARE}|{_QUOTED}))*"
_ARRAY_HEADER = re.compile(rf"^\s*\[\[\s*({_KEY})\s*\]\]")
_TABLE_HEADER = re.compile(rf"^\s*\[\s*({_KEY})\s*\]")
_ASSIGN = re.compile(rf"^\s*({_KEY})\s*=")
_INLINE_KEY = re.compile(rf"(?:\{{|,)\s*({_KEY})\s*=")
_PART = re.compile(rf"{_BARE}|{_QUOTED}")


def _split(key: str) -> tuple[str, ...]:
    parts = []
    for part in _PART.findall(key):
        if part[0] in "\"'":
            part = part[1:-1]
        parts.append(part)
    return tuple(parts)


def key_lines(text: str) -> dict[Path, int]:
    """Map each key path seen in ``text`` to its 1-based line number.

    Elements of an array of tables get an integer index in the path
    (``("surcharges", "window", 2, "from")``).
    """
    lines: dict[Path, int] = {}
    counts: dict[tuple[str, ...], int] = {}
    table: Path = ()
    in_multiline = False
    for number, line in enumerate(text.splitlines(), start=1):
        if in_multiline:
            if line.count('"""') % 2 == 1 or line.count("'''") % 2 == 1:
                in_multiline = False
            continue
        if match := _ARRAY_HEADER.match(line):
            name = _split(match.group(1))
            index = counts.get(name, 0)
            counts[name] = index + 1
            table = (*name, index)
            lines.setdefault(name, number)
            lines[table] = number
        elif match := _TABLE_HEADER.match(line):
            table = _split(match.group(1))
            lines.setdefault(table, number)
        elif match := _ASSIGN.match(line):
            path = (*table, *_split(match.group(1)))
            lines.setdefault(path, number)
            rest = line[match.end() :]
            if rest.lstrip().startswith("{"):
                for inner in _INLINE_KEY.finditer(rest):
                    lines.setdefault((*path, *_split(inner.group(1))), number)
            if rest.count('"""') % 2 == 1 or rest.count("'''") % 2 == 1:
                in_multiline = True
    return lines


def line_of(text: str, path: Path) -> int:
    """The line of ``path``, else of its nearest enclosing key found, else 1."""
    lines = key_lines(text)
    for end in range(len(path), 0, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return 1
