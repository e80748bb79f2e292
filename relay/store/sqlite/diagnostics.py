"""Diagnostics snapshots and help requests (tables of ``0005_diagnostics.sql``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from relay.model import AuditEvent, HelpRequest, Keyset, SnapshotRecord
from relay.store.sqlite import paging
from relay.store.sqlite.base import SQLiteBase
from relay.store.sqlite.codec import columns, decode, encode, insert_sql

# What update_help_request may change; anything else is a programming error.
_HELP_COLUMNS = ("state", "assigned_to", "resolution", "updated_at")


def _where(**filters: object) -> tuple[str, tuple[object, ...]]:
    """A ``WHERE`` clause (or "") matching every filter that is not None."""
    used = [(name, value) for name, value in filters.items() if value is not None]
    if not used:
        return "", ()
    return " WHERE " + " AND ".join(f"{name} = ?" for name, _ in used), tuple(v for _, v in used)


class SQLiteDiagnostics(SQLiteBase):
    """:class:`relay.store.interface.DiagnosticsStore` on SQLite."""

    # -- snapshots -----------------------------------------------------------------------

    async def add_snapshot(
        self, record: SnapshotRecord, keep: int, *, audit: Sequence[AuditEvent] = ()
    ) -> int:
        """Insert (``record.id`` is ignored), prune the agent's unlinked history to
        ``keep``, and return the new id."""
        values = columns(record, drop=("id",))
        async with self._transaction("store snapshot") as db:
            cursor = await db.execute(insert_sql("snapshots", values), values)
            new_id = int(cursor.lastrowid or 0)
            await db.execute(
                "DELETE FROM snapshots WHERE agent_id = ? AND session_id IS NULL"
                " AND request_id IS NULL AND id NOT IN"
                " (SELECT id FROM snapshots WHERE agent_id = ? ORDER BY id DESC LIMIT ?)",
                (record.agent_id, record.agent_id, max(1, keep)),
            )
            await self._write_audit(db, audit)
        return new_id

    async def get_snapshot(self, snapshot_id: int) -> SnapshotRecord | None:
        """By id."""
        rows = await self._fetch(
            "read snapshot", "SELECT * FROM snapshots WHERE id = ?", (snapshot_id,)
        )
        return decode(SnapshotRecord, rows[0]) if rows else None

    async def list_snapshots(
        self,
        agent_id: str | None = None,
        session_id: str | None = None,
        limit: int = 50,
        page: Keyset | None = None,
    ) -> list[SnapshotRecord]:
        """Newest first, filtered by agent and/or session: ``limit`` of them, or one page."""
        where, params = _where(agent_id=agent_id, session_id=session_id)
        terms = [where.removeprefix(" WHERE ")] if where else []
        sql, listed = paging.select(
            "SELECT * FROM snapshots", page or Keyset(limit), ("id",), True, None, terms, params
        )
        rows = await self._fetch("list snapshots", sql, listed)
        return [decode(SnapshotRecord, row) for row in rows]

    async def worst_findings(self) -> dict[str, str | None]:
        """agent id → the worst severity in its latest snapshot."""
        rows = await self._fetch(
            "read latest findings",
            "SELECT agent_id, worst FROM snapshots WHERE id IN"
            " (SELECT MAX(id) FROM snapshots GROUP BY agent_id)",
        )
        return {row["agent_id"]: row["worst"] for row in rows}

    # -- help requests -------------------------------------------------------------------

    async def add_help_request(
        self, request: HelpRequest, *, audit: Sequence[AuditEvent] = ()
    ) -> int:
        """Insert (``request.id`` is ignored), tie its snapshot to it, return its number."""
        values = columns(request, drop=("id",))
        async with self._transaction("add help request") as db:
            cursor = await db.execute(insert_sql("help_requests", values), values)
            number = int(cursor.lastrowid or 0)
            if request.snapshot_id is not None:
                await db.execute(
                    "UPDATE snapshots SET request_id = ? WHERE id = ?",
                    (number, request.snapshot_id),
                )
            numbered = [
                replace(a, subject=a.subject.replace("{number}", str(number))) for a in audit
            ]
            await self._write_audit(db, numbered)
        return number

    async def get_help_request(self, number: int) -> HelpRequest | None:
        """By number."""
        rows = await self._fetch(
            "read help request", "SELECT * FROM help_requests WHERE id = ?", (number,)
        )
        return decode(HelpRequest, rows[0]) if rows else None

    async def list_help_requests(
        self, states: tuple[str, ...] | None = None, agent_id: str | None = None
    ) -> list[HelpRequest]:
        """Oldest first, filtered by state and/or agent."""
        where, params = _where(agent_id=agent_id)
        if states:
            marks = ", ".join("?" for _ in states)
            where += (" AND" if where else " WHERE") + f" state IN ({marks})"
            params = (*params, *states)
        rows = await self._fetch(
            "list help requests", f"SELECT * FROM help_requests{where} ORDER BY id", params
        )
        return [decode(HelpRequest, row) for row in rows]

    async def help_request_queue(self, states: tuple[str, ...], page: Keyset) -> list[HelpRequest]:
        """One page of the requests in ``states``: urgent first, then oldest first
        (sort key: 0 for urgent else 1, ``created_at``, number)."""
        marks = ", ".join("?" for _ in states) or "NULL"
        sql, params = paging.select(
            "SELECT * FROM help_requests",
            page,
            ("(1 - urgent)", "created_at", "id"),
            terms=[f"state IN ({marks})"],
            params=states,
        )
        rows = await self._fetch("list help requests", sql, params)
        return [decode(HelpRequest, row) for row in rows]

    async def count_help_requests(self, agent_id: str, states: tuple[str, ...]) -> int:
        """How many of the agent's requests are in ``states``."""
        marks = ", ".join("?" for _ in states) or "NULL"
        rows = await self._fetch(
            "count help requests",
            f"SELECT COUNT(*) FROM help_requests WHERE agent_id = ? AND state IN ({marks})",
            (agent_id, *states),
        )
        return int(rows[0][0])

    async def update_help_request(
        self,
        number: int,
        expected_state: str,
        *,
        audit: Sequence[AuditEvent] = (),
        **changes: Any,
    ) -> bool:
        """Apply ``changes`` if the request is still in ``expected_state``; False
        (nothing written) otherwise. ValueError for a field that may not change."""
        unknown = set(changes) - set(_HELP_COLUMNS)
        if unknown:
            raise ValueError(f"cannot change {', '.join(sorted(unknown))} of a help request")
        sets = ", ".join(f"{name} = ?" for name in changes)
        params = (*(encode(value) for value in changes.values()), number, expected_state)
        sql = f"UPDATE help_requests SET {sets} WHERE id = ? AND state = ?"
        return await self._run("update help request", sql, params, audit=audit) > 0
