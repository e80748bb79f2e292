"""The SQLite store's foundation: one connection, its lock, its transactions.

One aiosqlite connection per store, in WAL mode with ``synchronous=FULL`` (a
committed write survives power loss), ``busy_timeout`` for other processes holding
the file (the admin command line) and foreign keys enforced. The connection runs
with ``isolation_level=None``: the store issues its own transactions, and every
write is one short ``BEGIN IMMEDIATE … COMMIT`` (``ROLLBACK`` on any error), so it
takes the write lock up front and never half-happens. An :class:`asyncio.Lock`
serialises every use of the shared connection, so one coroutine can neither see nor
interleave with another's open transaction.

Audit records that go with a change are inserted by :meth:`SQLiteBase._write_audit`
inside the change's own transaction: they commit with it or not at all.

The schema is built by the numbered scripts of :mod:`relay.store.sqlite.migrations`.
:meth:`SQLiteBase.open` applies, in order, each one not yet recorded in
``schema_migrations``, every script in its own transaction.

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
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import aiosqlite

from relay.model import AuditEvent
from relay.store.sqlite.codec import encode_ts
from relay.store.sqlite.migrations import load_migrations, statements
from shared.errors import ConfigError, ConflictError, QPError, StorageError

Params = Sequence[Any] | Mapping[str, Any]

_CREATE_SCHEMA_MIGRATIONS = (
    "CREATE TABLE IF NOT EXISTS schema_migrations"
    " (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
)

_INSERT_AUDIT = "INSERT INTO audit (at, event, actor, subject, detail) VALUES (?, ?, ?, ?, ?)"

# Constraint failures that mean "clashes with what exists" rather than a bad write.
_CONFLICTS = frozenset(
    {"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY", "SQLITE_CONSTRAINT_FOREIGNKEY"}
)


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


class SQLiteBase:
    """The connection to the SQLite file at ``path`` (created 0600 on first open) and
    the transaction helpers every part of :class:`relay.store.sqlite.SQLiteStore` uses."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._write_transactions = 0
        self.write_observer: Callable[[float, bool], None] | None = None

    @property
    def write_transactions(self) -> int:
        """Write transactions (``BEGIN IMMEDIATE``) committed since :meth:`open`,
        whether or not they found anything to change; migrations do not count."""
        return self._write_transactions

    # -- transactions ------------------------------------------------------------------

    def _connection(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StorageError(f"database {self._path} is not open")
        return self._db

    @contextlib.asynccontextmanager
    async def _transaction(
        self, what: str, *, write: bool = True
    ) -> AsyncIterator[aiosqlite.Connection]:
        """Hold the lock and one transaction: committed on exit, rolled back on error.

        A write transaction begins IMMEDIATE: it takes the write lock up front, so
        what it reads is still true when it writes, whoever else uses the file. With
        ``write=False`` it is a plain ``BEGIN``: several reads see one state."""
        if not write:
            async with self._locked(what, write=False) as db:
                yield db
            return
        began, failed = time.perf_counter(), False
        try:
            async with self._locked(what, write=True) as db:
                yield db
        except StorageError:  # the database refused (full disk, I/O error, read-only)
            failed = True
            raise
        finally:
            # A rollback for a reason of ours (a conflict, a check) is no store failure.
            observer = self.write_observer
            if observer is not None:
                observer(time.perf_counter() - began, not failed)

    @contextlib.asynccontextmanager
    async def _locked(self, what: str, *, write: bool) -> AsyncIterator[aiosqlite.Connection]:
        """The transaction itself, under the lock (see :meth:`_transaction`)."""
        async with self._lock:
            db = self._connection()
            try:
                await db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
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
            if write:
                self._write_transactions += 1

    async def _run(
        self, what: str, sql: str, params: Params = (), *, audit: Sequence[AuditEvent] = ()
    ) -> int:
        """One write statement in its own transaction; the number of rows it touched.

        ``audit`` is written in the same transaction, and only if a row was touched:
        a statement that finds nothing to change records nothing."""
        async with self._transaction(what) as db:
            cursor = await db.execute(sql, params)
            if cursor.rowcount > 0:
                await self._write_audit(db, audit)
            return cursor.rowcount

    async def _fetch(self, what: str, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """One read statement (under the lock, so never inside another's transaction)."""
        async with self._lock:
            db = self._connection()
            try:
                return list(await db.execute_fetchall(sql, params))
            except sqlite3.Error as exc:
                raise _translate(exc, what) from exc

    async def _write_audit(self, db: aiosqlite.Connection, audit: Sequence[AuditEvent]) -> None:
        """Append ``audit`` inside the caller's transaction, so the records commit
        with the change they describe or not at all. Detail values JSON cannot hold
        are stored as ``str()``."""
        if not audit:
            return
        await db.executemany(
            _INSERT_AUDIT,
            [
                (
                    encode_ts(event.at),
                    event.event,
                    event.actor,
                    event.subject,
                    json.dumps(event.detail, sort_keys=True, default=str),
                )
                for event in audit
            ],
        )

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
        # Counted from here: the migrations just applied are not the relay's writes.
        self._write_transactions = 0

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
                    (version, encode_ts(datetime.now(UTC))),
                )

    async def close(self) -> None:
        """Release the connection; idempotent."""
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
