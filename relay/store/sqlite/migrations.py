"""The SQLite migration scripts shipped with the relay: found, ordered, split.

They live in ``migrations/`` beside this module (``0001_init.sql`` …), are shipped
as package data and read with :mod:`importlib.resources`, so they are found in a
wheel or a zip as well as in a checkout.
"""

from __future__ import annotations

import re
import sqlite3
from importlib import resources

from shared.errors import ConfigError

_MIGRATION_FILE = re.compile(r"^(\d+)_\w+\.sql$")


def load_migrations() -> list[tuple[int, str, str]]:
    """``(version, file name, script)`` of every migration shipped, in order."""
    folder = resources.files("relay.store.sqlite") / "migrations"
    found: dict[int, tuple[str, str]] = {}
    for item in folder.iterdir():
        match = _MIGRATION_FILE.match(item.name)
        if match is None:
            continue
        version = int(match.group(1))
        if version in found:
            raise ConfigError(f"migrations {found[version][0]} and {item.name} share a number")
        found[version] = (item.name, item.read_text(encoding="utf-8"))
    return [(version, name, script) for version, (name, script) in sorted(found.items())]


def statements(script: str) -> list[str]:
    """Split a script into single statements (a trigger's ``BEGIN … END`` stays whole).

    ``executescript`` is not an option: under the sqlite3 module's default transaction
    control it COMMITs the open transaction first, which would break the
    one-transaction-per-migration rule.
    """
    statements: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip("; \t\r\n"):
                statements.append(pending)
            pending = ""
    if pending.strip("; \t\r\n"):
        raise ConfigError(f"migration ends inside a statement: {pending.strip()[:60]!r}")
    return statements
