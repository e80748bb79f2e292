"""The console API: every method a technician's console may call.

Each domain module exports its own method table; this package merges them
explicitly (a name defined twice is an error at import) and dispatches one call:
the caller's role is checked against the method's roles, the handler parses its
parameters, calls a service and shapes the result. :mod:`relay.api.reference`
documents every method; a test keeps it in step with these tables.
"""

from __future__ import annotations

from relay.api import audit, billing, company, diagnostics, directory, sessions, time
from relay.api.context import Method


def _merge(*tables: dict[str, Method]) -> dict[str, Method]:
    merged: dict[str, Method] = {}
    for table in tables:
        clash = merged.keys() & table.keys()
        if clash:
            raise RuntimeError(f"console methods defined twice: {', '.join(sorted(clash))}")
        merged.update(table)
    return merged


METHODS: dict[str, Method] = _merge(
    directory.METHODS,
    sessions.METHODS,
    diagnostics.METHODS,
    time.METHODS,
    billing.METHODS,
    company.METHODS,
    audit.METHODS,
)
