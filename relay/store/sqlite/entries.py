"""Billable time entries: rate cards, entries and their edit history, approvals,
and closing a session into an entry (tables of ``0004_billing.sql``).

An entry's ``revision`` guards every replacement (``WHERE revision = expected``),
so two writers can never lose each other's changes; an invoiced entry is locked.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

import aiosqlite

from relay.model import (
    AuditEvent,
    BillableEntry,
    EntryEdit,
    EntryQuery,
    EntryUpdate,
    RateCardRecord,
    SessionClose,
)
from relay.store.interface import OverlapError
from relay.store.sqlite.base import SQLiteBase
from relay.store.sqlite.codec import columns, decode, decode_ts, encode, insert_sql
from relay.store.sqlite.sessions import end_session
from shared.errors import ConflictError, NotFoundError

# Bulk reads leave out the bulky explanation (EntryQuery.with_details=False).
_LIGHT_COLUMNS = ", ".join(f.name for f in fields(BillableEntry) if f.name != "details")

_INSERT_EDIT = insert_sql("time_entry_edits", (f.name for f in fields(EntryEdit)))


def _entry(row: sqlite3.Row, with_details: bool = True) -> BillableEntry:
    return decode(BillableEntry, row) if with_details else decode(BillableEntry, row, details={})


async def insert_edits(db: aiosqlite.Connection, edits: Iterable[EntryEdit]) -> None:
    """Append ``edits`` to the entries' histories inside the caller's transaction."""
    await db.executemany(_INSERT_EDIT, (columns(edit) for edit in edits))


async def replace_entry(db: aiosqlite.Connection, update: EntryUpdate, draft_only: bool) -> bool:
    """Overwrite the entry if it is at the expected revision (and a draft, or at
    least not invoiced), inside the caller's transaction; whether it was."""
    values = columns(update.entry, drop=("id", "created_at"))
    values["revision"] = update.expected_revision + 1
    assignments = ", ".join(f"{name} = :{name}" for name in values)
    guard = "status = 'draft'" if draft_only else "status <> 'invoiced'"
    cursor = await db.execute(
        f"UPDATE time_entries SET {assignments} WHERE id = :_id AND revision = :_expected"
        f" AND {guard}",
        {**values, "_id": update.entry.id, "_expected": update.expected_revision},
    )
    return cursor.rowcount == 1


class SQLiteEntries(SQLiteBase):
    """The rate cards and time entries of :class:`relay.store.interface.BillingStore`."""

    # -- rate cards ----------------------------------------------------------------------

    async def add_rate_card(
        self, card: RateCardRecord, *, audit: Sequence[AuditEvent] = ()
    ) -> bool:
        """Store an imported card; False (nothing written) if its digest is stored."""
        values = columns(card)
        sql = insert_sql("rate_cards", values).replace("INSERT", "INSERT OR IGNORE", 1)
        return await self._run("store rate card", sql, values, audit=audit) > 0

    async def list_rate_cards(self) -> list[RateCardRecord]:
        """Every card ever imported, by effective date, then import time."""
        sql = "SELECT * FROM rate_cards ORDER BY effective_from, imported_at, digest"
        return [decode(RateCardRecord, row) for row in await self._fetch("list rate cards", sql)]

    async def get_rate_card(self, digest: str) -> RateCardRecord | None:
        """By digest."""
        sql = "SELECT * FROM rate_cards WHERE digest = ?"
        rows = await self._fetch("read rate card", sql, (digest,))
        return decode(RateCardRecord, rows[0]) if rows else None

    # -- entries -------------------------------------------------------------------------

    async def get_entry(self, entry_id: str) -> BillableEntry | None:
        """By id, with every billing field."""
        sql = "SELECT * FROM time_entries WHERE id = ?"
        rows = await self._fetch("read time entry", sql, (entry_id,))
        return _entry(rows[0]) if rows else None

    async def query_entries(self, query: EntryQuery) -> list[BillableEntry]:
        """Entries matching ``query``, by start time, then id."""
        where: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("customer_id = ?", query.customer_id),
            ("technician_id = ?", query.technician_id),
            ("status = ?", query.status),
            ("invoice_id = ?", query.invoice_id),
            ("started_at >= ?", query.started_from),
            ("started_at < ?", query.started_before),
        ):
            if value is not None:
                where.append(column)
                params.append(encode(value))
        if query.after is not None:
            # Keyset: the page after the entry with this (started_at, id).
            where.append("(started_at, id) > (?, ?)")
            params += [encode(value) for value in query.after]
        selected = "*" if query.with_details else _LIGHT_COLUMNS
        sql = f"SELECT {selected} FROM time_entries"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_at, id"
        if query.limit is not None or query.offset:
            sql += " LIMIT ? OFFSET ?"
            params += [-1 if query.limit is None else query.limit, query.offset]
        rows = await self._fetch("list time entries", sql, params)
        return [_entry(row, query.with_details) for row in rows]

    async def find_merge_target(
        self,
        customer_id: str,
        technician_id: str,
        agent_id: str,
        request: str | None,
        ended_since: datetime,
    ) -> BillableEntry | None:
        """The latest-ending draft a reconnect with these keys may join."""
        rows = await self._fetch(
            "find the entry to merge into",
            "SELECT * FROM time_entries WHERE customer_id = ? AND technician_id = ?"
            " AND agent_id = ? AND COALESCE(request, '') = ? AND status = 'draft'"
            " AND source = 'session' AND card_digest <> '' AND ended_at >= ?"
            " ORDER BY ended_at DESC, id DESC LIMIT 1",
            (customer_id, technician_id, agent_id, request or "", encode(ended_since)),
        )
        return _entry(rows[0]) if rows else None

    async def close_session_billed(
        self, close: SessionClose, merge: EntryUpdate | None, *, audit: Sequence[AuditEvent] = ()
    ) -> bool:
        """End the session and merge its time into a draft or insert its entry, in
        one transaction; False (nothing written) if the session already ended."""
        async with self._transaction(f"close session {close.session_id}") as db:
            if not await end_session(db, close):
                return False
            if merge is not None and await replace_entry(db, merge, draft_only=True):
                await insert_edits(db, merge.history)
            elif close.entry is not None:
                values = columns(close.entry)
                await db.execute(insert_sql("time_entries", values), values)
            await self._write_audit(db, audit)
        return True

    async def add_entry(
        self,
        entry: BillableEntry,
        history: Sequence[EntryEdit] = (),
        refuse_overlap: bool = False,
        *,
        audit: Sequence[AuditEvent] = (),
    ) -> None:
        """Insert one entry with its history (ConflictError naming the other entry if
        ``refuse_overlap`` and the technician's time overlaps it)."""
        values = columns(entry)
        async with self._transaction(f"add time entry {entry.id}") as db:
            if refuse_overlap:
                await _refuse_overlap(db, entry.technician_id, entry.started_at, entry.ended_at)
            await db.execute(insert_sql("time_entries", values), values)
            await insert_edits(db, history)
            await self._write_audit(db, audit)

    async def add_entries(self, entries: Sequence[BillableEntry]) -> None:
        """Insert many entries in one transaction (imports, benchmarks)."""
        if not entries:
            return
        rows = [columns(entry) for entry in entries]
        async with self._transaction(f"add {len(rows)} time entries") as db:
            await db.executemany(insert_sql("time_entries", rows[0]), rows)

    async def update_entry(
        self,
        update: EntryUpdate,
        *,
        audit: Sequence[AuditEvent] = (),
        refuse_overlap: tuple[datetime, datetime] | None = None,
    ) -> BillableEntry:
        """Apply ``update`` or raise (ConflictError, NotFoundError, OverlapError with
        ``refuse_overlap``) with nothing written."""
        entry_id = update.entry.id
        async with self._transaction(f"update time entry {entry_id}") as db:
            if refuse_overlap is not None:
                start, end = refuse_overlap
                await _refuse_overlap(db, update.entry.technician_id, start, end, entry_id)
            if not await replace_entry(db, update, draft_only=False):
                found = list(
                    await db.execute_fetchall(
                        "SELECT status, invoice_id FROM time_entries WHERE id = ?", (entry_id,)
                    )
                )
                if not found:
                    raise NotFoundError(f"no time entry {entry_id!r}")
                if found[0]["status"] == "invoiced":
                    raise ConflictError(f"time entry {entry_id} is invoiced and locked")
                raise ConflictError(f"time entry {entry_id} changed meanwhile; try again")
            await insert_edits(db, update.history)
            await self._write_audit(db, audit)
            rows = list(
                await db.execute_fetchall("SELECT * FROM time_entries WHERE id = ?", (entry_id,))
            )
        return _entry(rows[0])

    async def approve_entries(
        self,
        entry_ids: Sequence[str],
        actor: str,
        at: datetime,
        *,
        audit: Sequence[AuditEvent] = (),
    ) -> list[str]:
        """Approve every draft among ``entry_ids``; the ids that changed. ``audit`` is
        written only if one did."""
        approved: list[str] = []
        async with self._transaction("approve time entries") as db:
            for entry_id in dict.fromkeys(entry_ids):
                found = list(
                    await db.execute_fetchall(
                        "SELECT status FROM time_entries WHERE id = ?", (entry_id,)
                    )
                )
                if not found:
                    raise NotFoundError(f"no time entry {entry_id!r}")
                status = found[0]["status"]
                if status == "invoiced":
                    raise ConflictError(f"time entry {entry_id} is invoiced and locked")
                if status == "approved":
                    continue
                await db.execute(
                    "UPDATE time_entries SET status = 'approved', approved_at = ?,"
                    " approved_by = ?, revision = revision + 1 WHERE id = ?",
                    (encode(at), actor, entry_id),
                )
                edit = EntryEdit(entry_id, at, actor, "status", "draft", "approved", "approved")
                await insert_edits(db, [edit])
                approved.append(entry_id)
            if approved:
                await self._write_audit(db, audit)
        return approved

    async def list_entry_edits(self, entry_id: str) -> list[EntryEdit]:
        """The entry's history, oldest first."""
        sql = "SELECT * FROM time_entry_edits WHERE entry_id = ? ORDER BY id"
        rows = await self._fetch("read the edit history", sql, (entry_id,))
        return [decode(EntryEdit, row) for row in rows]


async def _refuse_overlap(
    db: aiosqlite.Connection, technician_id: str, start: datetime, end: datetime, but: str = ""
) -> None:
    """OverlapError if an entry of the technician (other than ``but``) overlaps
    ``start``..``end``, inside the caller's transaction."""
    clash = list(
        await db.execute_fetchall(
            "SELECT id, source, started_at, ended_at FROM time_entries"
            " WHERE technician_id = ? AND started_at < ? AND ended_at > ? AND id <> ?"
            " ORDER BY started_at LIMIT 1",
            (technician_id, encode(end), encode(start), but),
        )
    )
    if clash:
        other, source, first, last = clash[0]
        raise OverlapError(
            f"it overlaps time entry {other} of the same technician "
            f"({decode_ts(first):%Y-%m-%d %H:%M} to {decode_ts(last):%H:%M} UTC)",
            other,
            source,
        )
