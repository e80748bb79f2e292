"""Audit records of refusals: attempts that changed nothing, so there is no change
to write them with (every change carries its own audit record).

A refusal of an identified caller (a technician, an agent) is one row each: the
throttle and the caller's identity bound them. A refusal of an unauthenticated
peer (actor ``anonymous``: a bad tunnel token, a bad login, a throttled peer) is
counted in memory per (source address, reason) and written as one row per window
(``limits.audit_window_seconds``) with its ``count``, so a flood cannot flood the
table or the disk. The window's rows are written when it ends, when the buffer
holds ``limits.audit_buffer_keys`` keys, when someone reads the trail
(:meth:`Auditor.flush`) and at a graceful stop. A crash loses the counts of the
open window only; the first refusal of every (address, reason) in a window is in
the relay log at once, so the log still has it.

Every refusal also goes to the relay log (logger ``qp.security``) as one line of
``key=value`` fields: ``event``, ``actor``, ``subject``, ``peer``, ``count``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from relay.model import AuditEvent, AuditRecord
from relay.store.interface import Store
from shared.clock import Clock, iso
from shared.errors import QPError

ANONYMOUS = "anonymous"

security_log = logging.getLogger("qp.security")

_PLAIN = re.compile(r"[A-Za-z0-9._:/@+-]+")


def _field(value: Any) -> str:
    """A value for a ``key=value`` line: bare when plain, else JSON-quoted (so no
    space, quote or control character from a peer can forge or split a line)."""
    text = str(value)
    return text if _PLAIN.fullmatch(text) else json.dumps(text)


def security_line(event: str, actor: str, subject: str, count: int, detail: dict[str, Any]) -> str:
    """One structured line for the relay log."""
    fields: dict[str, Any] = {
        "event": event,
        "actor": actor,
        "subject": subject or "-",
        "peer": detail.get("peer", "-"),
        "count": count,
    }
    fields.update((k, v) for k, v in sorted(detail.items()) if k not in fields)
    return " ".join(f"{key}={_field(value)}" for key, value in fields.items())


@dataclass
class _Tally:
    """Unauthenticated refusals of one (address, reason) in the open window."""

    event: str
    subject: str
    detail: dict[str, Any]
    first_at: datetime
    opened: float  # monotonic, when the window of this key opened
    last_at: datetime
    count: int = 1
    subjects: set[str] = field(default_factory=set)


class Auditor:
    """Writes refusals to the audit trail and the security log."""

    def __init__(
        self, store: Store, clock: Clock, window_seconds: int = 60, max_keys: int = 1000
    ) -> None:
        self.store = store
        self.clock = clock
        self.window = window_seconds
        self.max_keys = max_keys
        self._open: dict[tuple[str, str], _Tally] = {}

    async def refused(self, event: str, actor: str, subject: str = "", **detail: Any) -> None:
        """Audit one refused attempt: one row for an identified ``actor``, a count in
        the open window for ``anonymous`` (keyed by ``detail['peer']``)."""
        if actor == ANONYMOUS:
            await self._count(event, subject, detail)
            return
        security_log.warning(security_line(event, actor, subject, 1, detail))
        await self.store.audit(self.clock.now(), event, actor, subject, **detail)

    async def _count(self, event: str, subject: str, detail: dict[str, Any]) -> None:
        await self.flush(due_only=True)
        now, key = self.clock.now(), (str(detail.get("peer", "?")), event)
        tally = self._open.get(key)
        if tally is not None:
            tally.count += 1
            tally.last_at = now
            if len(tally.subjects) < 100:  # bounded: a flood may try a new id each time
                tally.subjects.add(subject)
            return
        if len(self._open) >= self.max_keys:
            await self.flush()
        self._open[key] = _Tally(
            event, subject, detail, now, self.clock.monotonic(), now, subjects={subject}
        )
        security_log.warning(security_line(event, ANONYMOUS, subject, 1, detail))

    async def flush(self, due_only: bool = False) -> int:
        """Write the counted refusals (only those whose window has ended, with
        ``due_only``) as one row each; returns how many rows were written."""
        mono = self.clock.monotonic()
        keys = [k for k, t in self._open.items() if not due_only or mono - t.opened >= self.window]
        # Taken out before the write awaits: refusals meanwhile open a new window.
        tallies = [self._open.pop(k) for k in keys]
        if not tallies:
            return 0
        rows = [self._row(t) for t in tallies]
        for t in tallies:
            if t.count > 1:
                detail = {**t.detail, "window_seconds": self.window}
                security_log.warning(security_line(t.event, ANONYMOUS, t.subject, t.count, detail))
        try:
            await self.store.append_audit(rows)
        except QPError as exc:  # the log lines above keep what the table could not
            security_log.error("audit rows not written (%d): %s", len(rows), exc)
            return 0
        return len(rows)

    def _row(self, t: _Tally) -> AuditEvent:
        subject = t.subject if t.subjects == {t.subject} else ""
        detail = {
            **t.detail,
            "count": t.count,
            "last_at": iso(t.last_at),
            "window_seconds": self.window,
        }
        if not subject:
            detail["subjects"] = len(t.subjects)
        return AuditEvent(t.first_at, t.event, ANONYMOUS, subject, detail)

    async def trail(
        self, limit: int, before: int | None = None, **filters: Any
    ) -> list[AuditRecord]:
        """Records newest first, below id ``before`` (see :meth:`Store.list_audit`
        for ``filters``). The first page writes the open window first, so it is
        complete up to now."""
        if before is None:
            await self.flush()
        return await self.store.list_audit(limit, before=before, **filters)

    async def run(self) -> None:
        """Close windows as they end, until cancelled."""
        while True:
            await asyncio.sleep(max(1.0, self.window / 4))
            await self.flush(due_only=True)

    async def stop(self) -> None:
        """Write what is counted (a graceful stop loses nothing)."""
        await self.flush()
