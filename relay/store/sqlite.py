"""SQLite implementation of :class:`relay.store.interface.Store`, for a single relay node.

One aiosqlite connection per store, in WAL mode with ``synchronous=FULL`` (a
committed write survives power loss), ``busy_timeout`` for other processes holding
the file (the admin command line) and foreign keys enforced. The connection runs
with ``isolation_level=None``: the store issues its own transactions, and every
write is one short ``BEGIN IMMEDIATE … COMMIT`` (``ROLLBACK`` on any error), so it
takes the write lock up front and never half-happens. An :class:`asyncio.Lock`
serialises every use of the shared connection, so one coroutine can neither see nor
interleave with another's open transaction.

The schema is built by numbered scripts in ``migrations/sqlite/`` (``0001_init.sql``
…). :meth:`SQLiteStore.open` applies, in order, each one not yet recorded in
``schema_migrations``, every script in its own transaction.

Storage formats: datetimes are fixed-width ISO-8601 UTC text with microseconds (text
order is time order), money is a decimal string, lists and mappings are JSON text.
sqlite3 errors are translated once, here: a clash with existing rows (duplicate id
or name, unknown referenced row) becomes :class:`ConflictError`, any other refusal
(read-only file, full disk, I/O error…) :class:`StorageError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import fields
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar, get_origin, get_type_hints

import aiosqlite

from relay.model import (
    Agent,
    AuditRecord,
    Customer,
    EnrollToken,
    HelpRequest,
    Session,
    SessionBeat,
    SessionClose,
    SnapshotRecord,
    SupportCode,
    Technician,
    TimeEntry,
)
from relay.store.billing_sqlite import SQLiteBillingMixin
from relay.store.diag_sqlite import SQLiteDiagnosticsMixin
from relay.store.interface import Store
from relay.store.sqlite_migrations import load_migrations, statements
from shared.errors import ConfigError, ConflictError, QPError, StorageError

_R = TypeVar("_R")
_Params = Sequence[Any] | Mapping[str, Any]


_CREATE_SCHEMA_MIGRATIONS = (
    "CREATE TABLE IF NOT EXISTS schema_migrations"
    " (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
)

# Constraint failures that mean "clashes with what exists" rather than a bad write.
_CONFLICTS = frozenset(
    {"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY", "SQLITE_CONSTRAINT_FOREIGNKEY"}
)

# -- encoding ------------------------------------------------------------------------
#
# Columns are named after the record's dataclass fields. Values are encoded by their
# Python type on the way in and decoded by the field's type hint on the way out.


def _ts(dt: datetime) -> str:
    """Fixed-width UTC text, e.g. ``2026-01-05T09:00:00.000000+00:00``."""
    if dt.utcoffset() is None:
        raise ValueError(f"naive datetime {dt!r}: the store keeps timezone-aware UTC")
    return dt.astimezone(UTC).isoformat(timespec="microseconds")


def _ts_opt(dt: datetime | None) -> str | None:
    return None if dt is None else _ts(dt)


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return _ts(value)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal):
        return str(value)  # exact, keeps the exponent: "87.50" stays "87.50"
    if isinstance(value, tuple):
        return json.dumps(list(value))
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return value


def _columns(record: Any, **extra: Any) -> dict[str, Any]:
    """The record's fields, encoded, plus ``extra`` columns."""
    values = {f.name: _encode(getattr(record, f.name)) for f in fields(record)}
    values.update(extra)
    return values


def _insert_sql(table: str, columns: Iterable[str]) -> str:
    names = list(columns)
    placeholders = ", ".join(f":{name}" for name in names)
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({placeholders})"


def _decoder(hint: Any) -> Callable[[Any], Any]:
    if hint is datetime:
        return _dt
    if hint == datetime | None:
        return lambda text: None if text is None else _dt(text)
    if hint is bool:
        return bool
    if hint is Decimal:
        return Decimal
    if get_origin(hint) is tuple:
        return lambda text: tuple(json.loads(text))
    if get_origin(hint) is dict:
        return json.loads
    if hint in (str, int, str | None, int | None):
        return lambda value: value
    raise TypeError(f"no column decoding for fields of type {hint!r}")


_DECODERS: dict[type, dict[str, Callable[[Any], Any]]] = {
    cls: {name: _decoder(hint) for name, hint in get_type_hints(cls).items()}
    for cls in (
        Customer,
        Technician,
        EnrollToken,
        Agent,
        Session,
        TimeEntry,
        AuditRecord,
        SupportCode,
        SnapshotRecord,
        HelpRequest,
    )
}


def _decode(cls: type[_R], row: sqlite3.Row, **given: Any) -> _R:
    """Build a ``cls`` record from ``row``; ``given`` fields are not read from it."""
    decoders = _DECODERS[cls]
    values = {name: decode(row[name]) for name, decode in decoders.items() if name not in given}
    return cls(**values, **given)


def _translate(exc: sqlite3.Error, what: str) -> QPError:
    """The product error for a sqlite3 error raised while doing ``what``."""
    message = f"cannot {what}: {exc}"
    if getattr(exc, "sqlite_errorname", None) in _CONFLICTS:
        return ConflictError(message)
    return StorageError(message)


def _create_private(path: str) -> None:
    """Create the database file with mode 0600 unless it exists already."""
    if path == ":memory:" or path.startswith("file:"):
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise ConfigError(f"cannot create database {path}: {exc}") from exc
    os.close(fd)


# -- the store -----------------------------------------------------------------------


class SQLiteStore(SQLiteBillingMixin, SQLiteDiagnosticsMixin, Store):
    """The relay's store in the SQLite file at ``path`` (created 0600 on first open)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    # -- plumbing ----------------------------------------------------------------------

    def _connection(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StorageError(f"database {self._path} is not open")
        return self._db

    @contextlib.asynccontextmanager
    async def _transaction(
        self, what: str, begin: str = "BEGIN IMMEDIATE"
    ) -> AsyncIterator[aiosqlite.Connection]:
        """Hold the lock and one transaction: committed on exit, rolled back on error."""
        async with self._lock:
            db = self._connection()
            try:
                await db.execute(begin)
            except sqlite3.Error as exc:
                raise _translate(exc, what) from exc
            try:
                yield db
                await db.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):
                    await db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise _translate(exc, what) from exc
                raise

    async def _run(self, what: str, sql: str, params: _Params = ()) -> int:
        """One write statement in its own transaction; the number of rows it touched."""
        async with self._transaction(what) as db:
            cursor = await db.execute(sql, params)
            return cursor.rowcount

    async def _fetch(self, what: str, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """One read statement (under the lock, so never inside another's transaction)."""
        async with self._lock:
            db = self._connection()
            try:
                return list(await db.execute_fetchall(sql, params))
            except sqlite3.Error as exc:
                raise _translate(exc, what) from exc

    # -- lifecycle ---------------------------------------------------------------------

    async def open(self) -> None:
        """Connect (creating the file 0600 if needed) and apply pending migrations.

        :class:`ConfigError` if the database was migrated by a newer relay."""
        if self._db is not None:
            return
        _create_private(self._path)
        try:
            db = await aiosqlite.connect(self._path, isolation_level=None)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open database {self._path}: {exc}") from exc
        db.row_factory = sqlite3.Row
        self._db = db
        try:
            await self._configure()
            await self._migrate()
        except BaseException:
            self._db = None
            await db.close()
            raise

    async def _configure(self) -> None:
        for pragma in ("busy_timeout = 5000", "synchronous = FULL", "foreign_keys = ON"):
            await self._fetch("configure the database", f"PRAGMA {pragma}")
        rows = await self._fetch("switch to WAL mode", "PRAGMA journal_mode = WAL")
        mode = rows[0][0] if rows else None
        if mode != "wal" and self._path != ":memory:":
            raise StorageError(f"database {self._path} refused WAL mode (journal_mode={mode})")

    async def _applied_versions(self) -> set[int]:
        tables = await self._fetch(
            "read the schema version",
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
        )
        if not tables:
            return set()
        rows = await self._fetch("read the schema version", "SELECT version FROM schema_migrations")
        return {int(row[0]) for row in rows}

    async def _migrate(self) -> None:
        migrations = load_migrations()
        applied = await self._applied_versions()
        unknown = applied - {version for version, _, _ in migrations}
        if unknown:
            raise ConfigError(
                f"database {self._path} has schema version {max(unknown)},"
                " newer than this relay: upgrade the relay"
            )
        for version, name, script in migrations:
            if version in applied:
                continue
            async with self._transaction(f"apply migration {name}") as db:
                await db.execute(_CREATE_SCHEMA_MIGRATIONS)
                done = await db.execute_fetchall(
                    "SELECT 1 FROM schema_migrations WHERE version = ?", (version,)
                )
                if list(done):  # another process applied it meanwhile
                    continue
                for statement in statements(script):
                    await db.execute(statement)
                await db.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                    (version, _ts(datetime.now(UTC))),
                )

    async def close(self) -> None:
        async with self._lock:
            db, self._db = self._db, None
            if db is not None:
                try:
                    await db.close()
                except sqlite3.Error as exc:
                    raise StorageError(f"cannot close database {self._path}: {exc}") from exc

    async def pragmas(self) -> dict[str, Any]:
        """``journal_mode``, ``synchronous``, ``foreign_keys`` and ``busy_timeout`` as
        the live connection reports them (read-only; for diagnostics and tests)."""
        result: dict[str, Any] = {}
        for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout"):
            rows = await self._fetch(f"read PRAGMA {name}", f"PRAGMA {name}")
            result[name] = rows[0][0]
        return result

    # -- relay metadata ------------------------------------------------------------------

    async def get_meta(self, key: str) -> str | None:
        rows = await self._fetch("read meta", "SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0]["value"]) if rows else None

    async def set_meta(self, key: str, value: str) -> None:
        await self._run(
            f"set meta {key!r}",
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # -- customers -----------------------------------------------------------------------

    async def add_customer(self, customer: Customer) -> None:
        values = _columns(customer)
        await self._run(f"add customer {customer.name!r}", _insert_sql("customers", values), values)

    async def get_customer(self, customer_id: str) -> Customer | None:
        sql = "SELECT * FROM customers WHERE id = ?"
        rows = await self._fetch("read customer", sql, (customer_id,))
        return _decode(Customer, rows[0]) if rows else None

    async def find_customer(self, name: str) -> Customer | None:
        # The column is COLLATE NOCASE, so "=" compares case-insensitively (ASCII).
        rows = await self._fetch("find customer", "SELECT * FROM customers WHERE name = ?", (name,))
        return _decode(Customer, rows[0]) if rows else None

    async def list_customers(self) -> list[Customer]:
        """All customers ordered by name, case-insensitively."""
        rows = await self._fetch("list customers", "SELECT * FROM customers ORDER BY name, id")
        return [_decode(Customer, row) for row in rows]

    # -- technicians ---------------------------------------------------------------------

    async def add_technician(self, technician: Technician, token_hash: str) -> None:
        """Insert with its customer scope; ConflictError on a duplicate id, name or token,
        or a scope naming an unknown customer."""
        values = _columns(technician, token_hash=token_hash)
        del values["customer_ids"]
        scope = [(technician.id, cid, pos) for pos, cid in enumerate(technician.customer_ids)]
        async with self._transaction(f"add technician {technician.name!r}") as db:
            await db.execute(_insert_sql("technicians", values), values)
            await db.executemany(
                "INSERT INTO technician_customers (technician_id, customer_id, position)"
                " VALUES (?, ?, ?)",
                scope,
            )

    async def _technicians(self, what: str, where: str, params: Sequence[Any]) -> list[Technician]:
        """Technicians matching ``where`` (on alias ``t``) with their scopes, by name."""
        async with self._transaction(what, begin="BEGIN") as db:
            rows = await db.execute_fetchall(
                f"SELECT t.* FROM technicians t {where} ORDER BY t.name, t.id", params
            )
            scopes = await db.execute_fetchall(
                "SELECT tc.technician_id, tc.customer_id FROM technician_customers tc"
                f" JOIN technicians t ON t.id = tc.technician_id {where}"
                " ORDER BY tc.technician_id, tc.position",
                params,
            )
        customer_ids: dict[str, list[str]] = defaultdict(list)
        for scope in scopes:
            customer_ids[scope["technician_id"]].append(scope["customer_id"])
        return [
            _decode(Technician, row, customer_ids=tuple(customer_ids[row["id"]])) for row in rows
        ]

    async def technician_by_token(self, token_hash: str) -> Technician | None:
        found = await self._technicians(
            "look up technician token", "WHERE t.token_hash = ? AND t.disabled = 0", (token_hash,)
        )
        return found[0] if found else None

    async def get_technician(self, technician_id: str) -> Technician | None:
        found = await self._technicians("read technician", "WHERE t.id = ?", (technician_id,))
        return found[0] if found else None

    async def list_technicians(self) -> list[Technician]:
        return await self._technicians("list technicians", "", ())

    # -- enrollment tokens -------------------------------------------------------------------

    async def add_enroll_token(self, token: EnrollToken, token_hash: str) -> None:
        """Insert; ConflictError on a duplicate id or token, or an unknown customer."""
        values = _columns(token, token_hash=token_hash)
        await self._run("add enrollment token", _insert_sql("enroll_tokens", values), values)

    async def consume_enroll_token(self, token_hash: str, now: datetime) -> EnrollToken | None:
        async with self._transaction("use enrollment token") as db:
            # Fixed-width UTC text: comparing the strings compares the instants.
            rows = list(
                await db.execute_fetchall(
                    "SELECT * FROM enroll_tokens WHERE token_hash = ? AND revoked = 0"
                    " AND uses_left > 0 AND expires_at > ?",
                    (token_hash, _ts(now)),
                )
            )
            if not rows:
                return None
            token = _decode(EnrollToken, rows[0])
            await db.execute(
                "UPDATE enroll_tokens SET uses_left = uses_left - 1 WHERE id = ?", (token.id,)
            )
            return token

    async def revoke_enroll_token(self, token_id: str) -> bool:
        sql = "UPDATE enroll_tokens SET revoked = 1 WHERE id = ?"
        return await self._run("revoke enrollment token", sql, (token_id,)) > 0

    async def list_enroll_tokens(self) -> list[EnrollToken]:
        sql = "SELECT * FROM enroll_tokens ORDER BY created_at DESC, id DESC"
        return [_decode(EnrollToken, row) for row in await self._fetch("list tokens", sql)]

    # -- agents --------------------------------------------------------------------------

    async def add_agent(self, agent: Agent) -> None:
        values = _columns(agent)
        await self._run(f"add agent {agent.name!r}", _insert_sql("agents", values), values)

    async def get_agent(self, agent_id: str) -> Agent | None:
        rows = await self._fetch("read agent", "SELECT * FROM agents WHERE id = ?", (agent_id,))
        return _decode(Agent, rows[0]) if rows else None

    async def list_agents(self) -> list[Agent]:
        rows = await self._fetch("list agents", "SELECT * FROM agents ORDER BY name, id")
        return [_decode(Agent, row) for row in rows]

    async def revoke_agent(self, agent_id: str) -> bool:
        sql = "UPDATE agents SET revoked = 1 WHERE id = ?"
        return await self._run("revoke agent", sql, (agent_id,)) > 0

    async def set_agent_policy(self, agent_id: str, policy: dict[str, Any]) -> bool:
        sql = "UPDATE agents SET policy = ? WHERE id = ?"
        return await self._run("set agent policy", sql, (_encode(policy), agent_id)) > 0

    async def set_customer_policy(self, customer_id: str, policy: dict[str, Any]) -> bool:
        sql = "UPDATE customers SET policy = ? WHERE id = ?"
        return await self._run("set customer policy", sql, (_encode(policy), customer_id)) > 0

    async def add_support_code(self, code: SupportCode, code_hash: str) -> None:
        values = _columns(code, code_hash=code_hash)
        await self._run("add support code", _insert_sql("support_codes", values), values)

    async def consume_support_code(self, code_hash: str, now: datetime) -> SupportCode | None:
        async with self._transaction("use support code") as db:
            rows = list(
                await db.execute_fetchall(
                    "SELECT * FROM support_codes WHERE code_hash = ? AND used_at IS NULL"
                    " AND expires_at > ?",
                    (code_hash, _ts(now)),
                )
            )
            if not rows:
                return None
            code = _decode(SupportCode, rows[0])
            await db.execute(
                "UPDATE support_codes SET used_at = ? WHERE id = ?", (_ts(now), code.id)
            )
            return code

    async def touch_agent(self, agent_id: str, at: datetime) -> None:
        sql = "UPDATE agents SET last_seen_at = ? WHERE id = ?"
        await self._run("record agent contact", sql, (_ts(at), agent_id))

    # -- sessions ------------------------------------------------------------------------

    async def add_session(self, session: Session) -> None:
        """Insert as given; ConflictError on a duplicate id or an unknown agent,
        technician or customer."""
        values = _columns(session)
        await self._run(f"add session {session.id}", _insert_sql("sessions", values), values)

    async def get_session(self, session_id: str) -> Session | None:
        sql = "SELECT * FROM sessions WHERE id = ?"
        rows = await self._fetch("read session", sql, (session_id,))
        return _decode(Session, rows[0]) if rows else None

    async def set_session_state(
        self, session_id: str, state: str, started_at: datetime | None = None
    ) -> bool:
        """Move an open session to ``state``; ``started_at=None`` keeps the stored value."""
        changed = await self._run(
            f"set state of session {session_id}",
            "UPDATE sessions SET state = ?, started_at = COALESCE(?, started_at)"
            " WHERE id = ? AND ended_at IS NULL",
            (state, _ts_opt(started_at), session_id),
        )
        return changed > 0

    async def heartbeat_sessions(self, beats: list[SessionBeat]) -> None:
        """As in :class:`Store`; a beat whose ``last_seen_at`` is None keeps the stored
        value, and beats for ended or unknown sessions are skipped."""
        if not beats:
            return
        params = [
            (
                _ts_opt(beat.last_seen_at),
                beat.bytes_to_agent,
                beat.bytes_to_technician,
                beat.active_minutes,
                _encode(tuple(beat.traffic_minutes)),
                beat.session_id,
            )
            for beat in beats
        ]
        async with self._transaction("record session heartbeats") as db:
            await db.executemany(
                "UPDATE sessions SET last_seen_at = COALESCE(?, last_seen_at),"
                " bytes_to_agent = ?, bytes_to_technician = ?, active_minutes = ?,"
                " traffic_minutes = ? WHERE id = ? AND ended_at IS NULL",
                params,
            )

    async def close_session(self, close: SessionClose) -> bool:
        """As in :class:`Store`; ``last_seen_at=None`` keeps the stored value. If the
        entry cannot be inserted (e.g. ConflictError on a duplicate id) the session
        stays open: nothing is written."""
        entry = None if close.entry is None else _columns(close.entry)
        async with self._transaction(f"close session {close.session_id}") as db:
            cursor = await db.execute(
                "UPDATE sessions SET state = ?, end_reason = ?, ended_at = ?,"
                " last_seen_at = COALESCE(?, last_seen_at), bytes_to_agent = ?,"
                " bytes_to_technician = ?, active_minutes = ?, traffic_minutes = ?"
                " WHERE id = ? AND ended_at IS NULL",
                (
                    close.state,
                    close.end_reason,
                    _ts(close.ended_at),
                    _ts_opt(close.last_seen_at),
                    close.bytes_to_agent,
                    close.bytes_to_technician,
                    close.active_minutes,
                    _encode(tuple(close.traffic_minutes)),
                    close.session_id,
                ),
            )
            if cursor.rowcount == 0:
                return False
            if entry is not None:
                await db.execute(_insert_sql("time_entries", entry), entry)
        return True

    async def open_sessions(self, relay_node: str | None = None) -> list[Session]:
        where, params = ("", ()) if relay_node is None else (" AND relay_node = ?", (relay_node,))
        rows = await self._fetch(
            "list open sessions",
            f"SELECT * FROM sessions WHERE ended_at IS NULL{where} ORDER BY created_at, id",
            params,
        )
        return [_decode(Session, row) for row in rows]

    async def list_sessions(self, limit: int = 200) -> list[Session]:
        sql = "SELECT * FROM sessions ORDER BY created_at DESC, id DESC LIMIT ?"
        return [_decode(Session, row) for row in await self._fetch("list sessions", sql, (limit,))]

    # -- time entries ------------------------------------------------------------------------

    async def list_time_entries(self, limit: int = 1000) -> list[TimeEntry]:
        sql = "SELECT * FROM time_entries ORDER BY created_at DESC, id DESC LIMIT ?"
        rows = await self._fetch("list time entries", sql, (limit,))
        return [_decode(TimeEntry, row) for row in rows]

    async def get_time_entry(self, entry_id: str) -> TimeEntry | None:
        sql = "SELECT * FROM time_entries WHERE id = ?"
        rows = await self._fetch("read time entry", sql, (entry_id,))
        return _decode(TimeEntry, rows[0]) if rows else None

    # -- audit -------------------------------------------------------------------------------

    async def audit(
        self, at: datetime, event: str, actor: str, subject: str = "", **detail: Any
    ) -> None:
        """Append one record; detail values JSON cannot hold are stored as ``str()``."""
        await self._run(
            f"record audit event {event!r}",
            "INSERT INTO audit (at, event, actor, subject, detail) VALUES (?, ?, ?, ?, ?)",
            (_ts(at), event, actor, subject, json.dumps(detail, sort_keys=True, default=str)),
        )

    async def list_audit(self, limit: int = 200) -> list[AuditRecord]:
        """Most recently appended first."""
        rows = await self._fetch(
            "list audit records", "SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,)
        )
        return [_decode(AuditRecord, row) for row in rows]
