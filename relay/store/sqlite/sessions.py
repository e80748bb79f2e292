"""The session spine: sessions, their heartbeats and close, the time entries
closing makes, and the audit trail (tables of ``0001_init.sql``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import aiosqlite

from relay.model import (
    AuditEvent,
    AuditRecord,
    Keyset,
    Session,
    SessionBeat,
    SessionClose,
    TimeEntry,
)
from relay.store.sqlite import paging
from relay.store.sqlite.base import SQLiteBase
from relay.store.sqlite.codec import columns, decode, encode, encode_ts, insert_sql


async def end_session(db: aiosqlite.Connection, close: SessionClose) -> bool:
    """Write ``close`` onto the session if it is still open, inside the caller's
    transaction; whether it was. ``last_seen_at=None`` keeps the stored value."""
    cursor = await db.execute(
        "UPDATE sessions SET state = ?, end_reason = ?, ended_at = ?,"
        " last_seen_at = COALESCE(?, last_seen_at), bytes_to_agent = ?,"
        " bytes_to_technician = ?, active_minutes = ?, traffic_minutes = ?,"
        " store_gap_seconds = ?, quiet = COALESCE(?, quiet) WHERE id = ? AND ended_at IS NULL",
        (
            close.state,
            close.end_reason,
            encode(close.ended_at),
            encode(close.last_seen_at),
            close.bytes_to_agent,
            close.bytes_to_technician,
            close.active_minutes,
            encode(tuple(close.traffic_minutes)),
            close.store_gap_seconds,
            None if close.quiet is None else encode(tuple(close.quiet)),
            close.session_id,
        ),
    )
    return cursor.rowcount > 0


class SQLiteSessions(SQLiteBase):
    """The sessions, time entries and audit part of
    :class:`relay.store.interface.CoreStore`."""

    # -- sessions ------------------------------------------------------------------------

    async def add_session(self, session: Session, *, audit: Sequence[AuditEvent] = ()) -> None:
        """Insert as given; ConflictError on a duplicate id or an unknown agent,
        technician or customer."""
        values = columns(session)
        sql = insert_sql("sessions", values)
        await self._run(f"add session {session.id}", sql, values, audit=audit)

    async def get_session(self, session_id: str) -> Session | None:
        """By id."""
        sql = "SELECT * FROM sessions WHERE id = ?"
        rows = await self._fetch("read session", sql, (session_id,))
        return decode(Session, rows[0]) if rows else None

    async def set_session_state(
        self,
        session_id: str,
        state: str,
        started_at: datetime | None = None,
        *,
        audit: Sequence[AuditEvent] = (),
    ) -> bool:
        """Move an open session to ``state``; ``started_at=None`` keeps the stored value.
        False (nothing written) if the session is unknown or ended."""
        changed = await self._run(
            f"set state of session {session_id}",
            "UPDATE sessions SET state = ?, started_at = COALESCE(?, started_at)"
            " WHERE id = ? AND ended_at IS NULL",
            (state, encode(started_at), session_id),
            audit=audit,
        )
        return changed > 0

    async def heartbeat_sessions(self, beats: list[SessionBeat]) -> None:
        """As in :class:`Store`; a beat whose ``last_seen_at`` is None keeps the stored
        value, and beats for ended or unknown sessions are skipped."""
        if not beats:
            return
        params = [
            (
                encode(beat.last_seen_at),
                beat.bytes_to_agent,
                beat.bytes_to_technician,
                beat.active_minutes,
                encode(tuple(beat.traffic_minutes)),
                None if beat.quiet is None else encode(tuple(beat.quiet)),
                beat.session_id,
            )
            for beat in beats
        ]
        async with self._transaction("record session heartbeats") as db:
            await db.executemany(
                "UPDATE sessions SET last_seen_at = COALESCE(?, last_seen_at),"
                " bytes_to_agent = ?, bytes_to_technician = ?, active_minutes = ?,"
                " traffic_minutes = ?, quiet = COALESCE(?, quiet)"
                " WHERE id = ? AND ended_at IS NULL",
                params,
            )

    async def close_session(self, close: SessionClose, *, audit: Sequence[AuditEvent] = ()) -> bool:
        """As in :class:`Store`; ``last_seen_at=None`` keeps the stored value. If the
        entry cannot be inserted (e.g. ConflictError on a duplicate id) the session
        stays open: nothing is written."""
        entry = None if close.entry is None else columns(close.entry)
        async with self._transaction(f"close session {close.session_id}") as db:
            if not await end_session(db, close):
                return False
            if entry is not None:
                await db.execute(insert_sql("time_entries", entry), entry)
            await self._write_audit(db, audit)
        return True

    async def open_sessions(self, relay_node: str | None = None) -> list[Session]:
        """Sessions not yet ended (of one node when given), oldest first."""
        where, params = ("", ()) if relay_node is None else (" AND relay_node = ?", (relay_node,))
        rows = await self._fetch(
            "list open sessions",
            f"SELECT * FROM sessions WHERE ended_at IS NULL{where} ORDER BY created_at, id",
            params,
        )
        return [decode(Session, row) for row in rows]

    async def list_sessions(self, limit: int = 200, page: Keyset | None = None) -> list[Session]:
        """Most recent sessions first: ``limit`` of them, or one page."""
        sql, params = paging.select(
            "SELECT * FROM sessions", page or Keyset(limit), ("created_at", "id"), descending=True
        )
        rows = await self._fetch("list sessions", sql, params)
        return [decode(Session, row) for row in rows]

    # -- time entries ------------------------------------------------------------------------

    async def list_time_entries(self, limit: int = 1000) -> list[TimeEntry]:
        """Most recent entries first."""
        sql = "SELECT * FROM time_entries ORDER BY created_at DESC, id DESC LIMIT ?"
        rows = await self._fetch("list time entries", sql, (limit,))
        return [decode(TimeEntry, row) for row in rows]

    async def get_time_entry(self, entry_id: str) -> TimeEntry | None:
        """By id, as the spine sees it (billing's fields left out)."""
        sql = "SELECT * FROM time_entries WHERE id = ?"
        rows = await self._fetch("read time entry", sql, (entry_id,))
        return decode(TimeEntry, rows[0]) if rows else None

    # -- audit -------------------------------------------------------------------------------

    async def audit(
        self, at: datetime, event: str, actor: str, subject: str = "", **detail: Any
    ) -> None:
        """Append one record on its own; detail values JSON cannot hold are stored
        as ``str()``."""
        async with self._transaction(f"record audit event {event!r}") as db:
            await self._write_audit(db, [AuditEvent(at, event, actor, subject, detail)])

    async def append_audit(self, records: Sequence[AuditEvent]) -> None:
        """Append ``records`` in one transaction."""
        if records:
            async with self._transaction(f"record {len(records)} audit events") as db:
                await self._write_audit(db, records)

    async def list_audit(
        self,
        limit: int = 200,
        *,
        offset: int = 0,
        before: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        actor: str | None = None,
        event: str | None = None,
        subject: str | None = None,
    ) -> list[AuditRecord]:
        """Most recently appended first; every filter given must match."""
        where, params = ["1 = 1"], list[Any]()
        # Timestamps are fixed-width UTC text, so text order is time order.
        for clause, value in (
            ("at >= ?", encode_ts(since) if since else None),
            ("at < ?", encode_ts(until) if until else None),
            ("actor = ?", actor),
            ("event = ?", event),
            ("subject = ?", subject),
            ("id < ?", before),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        sql = f"SELECT * FROM audit WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ? OFFSET ?"
        rows = await self._fetch("list audit records", sql, (*params, limit, offset))
        return [decode(AuditRecord, row) for row in rows]
