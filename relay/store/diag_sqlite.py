"""SQLite side of :class:`DiagnosticsStore`, mixed into :class:`SQLiteStore`."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

import aiosqlite

from relay.model import HelpRequest, SnapshotRecord
from relay.store.interface import DiagnosticsStore

_HELP_COLUMNS = ("state", "assigned_to", "resolution", "updated_at")


class SQLiteDiagnosticsMixin(DiagnosticsStore):
    """Uses the connection, lock and helpers of the SQLiteStore it is mixed into."""

    if TYPE_CHECKING:

        def _transaction(
            self, what: str, begin: str = "BEGIN IMMEDIATE"
        ) -> AbstractAsyncContextManager[aiosqlite.Connection]: ...

        async def _run(
            self, what: str, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()
        ) -> int: ...

        async def _fetch(
            self, what: str, sql: str, params: Sequence[Any] = ()
        ) -> list[sqlite3.Row]: ...

    async def add_snapshot(self, record: SnapshotRecord, keep: int) -> int:
        from relay.store.sqlite import _columns, _insert_sql

        values = _columns(record)
        values.pop("id")
        async with self._transaction("store snapshot") as db:
            cursor = await db.execute(_insert_sql("snapshots", values), values)
            new_id = int(cursor.lastrowid or 0)
            await db.execute(
                "DELETE FROM snapshots WHERE agent_id = ? AND session_id IS NULL"
                " AND request_id IS NULL AND id NOT IN"
                " (SELECT id FROM snapshots WHERE agent_id = ? ORDER BY id DESC LIMIT ?)",
                (record.agent_id, record.agent_id, max(1, keep)),
            )
        return new_id

    async def get_snapshot(self, snapshot_id: int) -> SnapshotRecord | None:
        from relay.store.sqlite import _decode

        rows = await self._fetch(
            "read snapshot", "SELECT * FROM snapshots WHERE id = ?", (snapshot_id,)
        )
        return _decode(SnapshotRecord, rows[0]) if rows else None

    async def list_snapshots(
        self,
        agent_id: str | None = None,
        session_id: str | None = None,
        limit: int = 50,
    ) -> list[SnapshotRecord]:
        from relay.store.sqlite import _decode

        where, params = _where(agent_id=agent_id, session_id=session_id)
        rows = await self._fetch(
            "list snapshots",
            f"SELECT * FROM snapshots{where} ORDER BY id DESC LIMIT ?",
            (*params, limit),
        )
        return [_decode(SnapshotRecord, row) for row in rows]

    async def worst_findings(self) -> dict[str, str | None]:
        rows = await self._fetch(
            "read latest findings",
            "SELECT agent_id, worst FROM snapshots WHERE id IN"
            " (SELECT MAX(id) FROM snapshots GROUP BY agent_id)",
        )
        return {row["agent_id"]: row["worst"] for row in rows}

    async def add_help_request(self, request: HelpRequest) -> int:
        from relay.store.sqlite import _columns, _insert_sql

        values = _columns(request)
        values.pop("id")
        async with self._transaction("add help request") as db:
            cursor = await db.execute(_insert_sql("help_requests", values), values)
            number = int(cursor.lastrowid or 0)
            if request.snapshot_id is not None:
                await db.execute(
                    "UPDATE snapshots SET request_id = ? WHERE id = ?",
                    (number, request.snapshot_id),
                )
        return number

    async def get_help_request(self, number: int) -> HelpRequest | None:
        from relay.store.sqlite import _decode

        rows = await self._fetch(
            "read help request", "SELECT * FROM help_requests WHERE id = ?", (number,)
        )
        return _decode(HelpRequest, rows[0]) if rows else None

    async def list_help_requests(
        self, states: tuple[str, ...] | None = None, agent_id: str | None = None
    ) -> list[HelpRequest]:
        from relay.store.sqlite import _decode

        where, params = _where(agent_id=agent_id)
        if states:
            marks = ", ".join("?" for _ in states)
            where += (" AND" if where else " WHERE") + f" state IN ({marks})"
            params = (*params, *states)
        rows = await self._fetch(
            "list help requests", f"SELECT * FROM help_requests{where} ORDER BY id", params
        )
        return [_decode(HelpRequest, row) for row in rows]

    async def update_help_request(self, number: int, expected_state: str, **changes: Any) -> bool:
        from relay.store.sqlite import _encode

        unknown = set(changes) - set(_HELP_COLUMNS)
        if unknown:
            raise ValueError(f"cannot change {', '.join(sorted(unknown))} of a help request")
        sets = ", ".join(f"{name} = ?" for name in changes)
        params = [_encode(value) for value in changes.values()]
        sql = f"UPDATE help_requests SET {sets} WHERE id = ? AND state = ?"
        return await self._run("update help request", sql, (*params, number, expected_state)) > 0


def _where(**filters: object) -> tuple[str, tuple[object, ...]]:
    used = [(name, value) for name, value in filters.items() if value is not None]
    if not used:
        return "", ()
    return " WHERE " + " AND ".join(f"{name} = ?" for name, _ in used), tuple(v for _, v in used)
