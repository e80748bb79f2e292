"""What only the SQLite backend promises: file mode, pragmas, migrations, durability,
and clean refusal (StorageError, nothing half-written) when the database won't write."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import AsyncIterator
from contextlib import closing as closing_db
from importlib import resources
from pathlib import Path

import pytest

from relay.model import AuditEvent, Customer
from relay.store.sqlite import SQLiteStore
from shared.errors import ConfigError, StorageError
from tests.store.records import (
    T0,
    at,
    closing,
    customer,
    enroll_token,
    seed,
    session,
    time_entry,
    token_hash,
)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "relay.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SQLiteStore]:
    instance = SQLiteStore(str(db_path))
    await instance.open()
    try:
        yield instance
    finally:
        await instance.close()


def query(path: Path, sql: str) -> list[tuple[object, ...]]:
    """Run ``sql`` on a second, independent connection."""
    with closing_db(sqlite3.connect(path)) as db:
        rows: list[tuple[object, ...]] = db.execute(sql).fetchall()
        db.commit()
        return rows


async def seed_open_session(store: SQLiteStore) -> None:
    """Seed records plus an open session and a one-use enrollment token."""
    await seed(store)
    await store.add_session(session())
    await store.add_enroll_token(enroll_token(uses_left=1), token_hash("s"))


async def test_database_file_is_created_private(db_path: Path) -> None:
    old_umask = os.umask(0)  # a file created without an explicit mode would be 0644
    store = SQLiteStore(str(db_path))
    try:
        await store.open()
        await store.add_customer(customer())  # the WAL and shared-memory files exist now
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in db_path.parent.iterdir()}
    finally:
        os.umask(old_umask)
        await store.close()
    assert modes["relay.db"] == 0o600
    assert set(modes.values()) == {0o600}, modes


async def test_missing_directory_is_a_config_error(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "missing" / "relay.db"))
    with pytest.raises(ConfigError):
        await store.open()
    await store.close()


async def test_pragmas(store: SQLiteStore, db_path: Path) -> None:
    assert await store.pragmas() == {
        "journal_mode": "wal",
        "synchronous": 2,  # FULL
        "foreign_keys": 1,
        "busy_timeout": 5000,
    }
    assert query(db_path, "PRAGMA journal_mode") == [("wal",)]  # persistent in the file


async def test_migrations_apply_once(db_path: Path) -> None:
    shipped = sorted(
        int(item.name.split("_", 1)[0])
        for item in (resources.files("relay.store.sqlite") / "migrations").iterdir()
        if item.name.endswith(".sql")
    )
    store = SQLiteStore(str(db_path))
    await store.open()
    await store.close()
    first = query(db_path, "SELECT version, applied_at FROM schema_migrations ORDER BY version")
    assert [version for version, _ in first] == shipped
    assert shipped[0] == 1

    await store.open()
    await store.close()
    other = SQLiteStore(str(db_path))  # a second store object, same file
    await other.open()
    await other.close()
    assert query(db_path, "SELECT version, applied_at FROM schema_migrations") == first


async def test_write_transactions_start_at_zero_after_the_migrations(db_path: Path) -> None:
    store = SQLiteStore(str(db_path))
    await store.open()  # a new file: every migration is applied, each in a transaction
    try:
        assert store.write_transactions == 0
        await store.add_customer(customer())
        await store.list_customers()
        assert store.write_transactions == 1
    finally:
        await store.close()
    await store.open()
    try:
        assert store.write_transactions == 0  # counted per open
    finally:
        await store.close()


async def test_newer_schema_is_refused(db_path: Path) -> None:
    store = SQLiteStore(str(db_path))
    await store.open()
    await store.close()
    query(db_path, "INSERT INTO schema_migrations VALUES (9999, '2030-01-01T00:00:00+00:00')")
    with pytest.raises(ConfigError, match="9999"):
        await store.open()
    await store.close()


async def test_data_survives_reopen(db_path: Path) -> None:
    store = SQLiteStore(str(db_path))
    await store.open()
    await seed_open_session(store)
    await store.set_meta("relay_id", "relay-1")
    await store.close_session(closing(entry=time_entry()))
    await store.audit(at(31), "session_end", "relay", "ses-1", reason="completed")
    await store.close()

    again = SQLiteStore(str(db_path))
    await again.open()
    try:
        assert await again.get_meta("relay_id") == "relay-1"
        assert await again.list_customers() == [customer()]
        assert await again.get_time_entry("te-1") == time_entry()
        got = await again.get_session("ses-1")
        assert got is not None and got.ended_at == at(30)
        [record] = await again.list_audit()
        assert (record.event, record.detail) == ("session_end", {"reason": "completed"})
    finally:
        await again.close()


async def test_audit_trail_is_append_only(store: SQLiteStore, db_path: Path) -> None:
    await store.audit(T0, "login_failed", "anonymous")
    for sql in ("UPDATE audit SET event = 'x'", "DELETE FROM audit"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            query(db_path, sql)
    assert len(await store.list_audit()) == 1


async def assert_every_write_refused(store: SQLiteStore) -> None:
    with pytest.raises(StorageError):
        await store.add_customer(Customer("cus-2", "Beta AG", T0))
    with pytest.raises(StorageError):
        await store.set_meta("relay_id", "relay-1")
    with pytest.raises(StorageError):
        await store.consume_enroll_token(token_hash("s"), at(1))
    with pytest.raises(StorageError):
        await store.close_session(closing(entry=time_entry()))
    with pytest.raises(StorageError):
        await store.audit(at(1), "enroll", "agt-1")
    # Reads still work.
    assert [c.id for c in await store.list_customers()] == ["cus-1"]


async def assert_nothing_written(store: SQLiteStore) -> None:
    assert [c.id for c in await store.list_customers()] == ["cus-1"]
    assert await store.get_meta("relay_id") is None
    assert [t.uses_left for t in await store.list_enroll_tokens()] == [1]
    assert [s.id for s in await store.open_sessions()] == ["ses-1"]
    assert await store.list_time_entries() == []
    assert await store.list_audit() == []


async def test_read_only_connection_refuses_writes(store: SQLiteStore) -> None:
    # Works for every user, root included (root ignores file modes): the connection
    # itself is made read-only, so SQLite refuses each write at BEGIN IMMEDIATE.
    await seed_open_session(store)
    db = store._db
    assert db is not None
    await db.execute("PRAGMA query_only = ON")
    await assert_every_write_refused(store)
    await db.execute("PRAGMA query_only = OFF")
    await assert_nothing_written(store)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
async def test_read_only_file_refuses_writes(db_path: Path) -> None:
    store = SQLiteStore(str(db_path))
    await store.open()
    await seed_open_session(store)
    await store.close()
    files = list(db_path.parent.iterdir())
    for path in files:
        path.chmod(0o444)
    try:
        await store.open()  # fully migrated: opening needs no write
        try:
            await assert_every_write_refused(store)
        finally:
            await store.close()
    finally:
        for path in db_path.parent.iterdir():
            path.chmod(0o600)
    await store.open()
    try:
        await assert_nothing_written(store)
    finally:
        await store.close()


SESSION_END = AuditEvent(at(30), "session_end", "relay", "ses-1", {"reason": "completed"})


async def test_failure_midway_through_close_writes_nothing(
    store: SQLiteStore, db_path: Path
) -> None:
    await seed_open_session(store)
    # The session update succeeds, then the entry insert fails: all must roll back.
    query(db_path, "ALTER TABLE time_entries RENAME TO time_entries_away")
    with pytest.raises(StorageError):
        await store.close_session(closing(entry=time_entry()), audit=[SESSION_END])
    query(db_path, "ALTER TABLE time_entries_away RENAME TO time_entries")
    await assert_nothing_written(store)
    assert await store.close_session(closing(entry=time_entry())) is True
    assert await store.list_time_entries() == [time_entry()]


async def test_a_change_whose_audit_cannot_be_written_is_not_made(
    store: SQLiteStore, db_path: Path
) -> None:
    await seed_open_session(store)
    # The change succeeds, then its audit insert fails: the change must roll back too.
    query(db_path, "ALTER TABLE audit RENAME TO audit_away")
    with pytest.raises(StorageError):
        await store.close_session(closing(entry=time_entry()), audit=[SESSION_END])
    with pytest.raises(StorageError):
        await store.add_customer(Customer("cus-2", "Beta AG", T0), audit=[SESSION_END])
    with pytest.raises(StorageError):
        await store.consume_enroll_token(token_hash("s"), at(1), audit=[SESSION_END])
    query(db_path, "ALTER TABLE audit_away RENAME TO audit")
    await assert_nothing_written(store)
    assert await store.close_session(closing(entry=time_entry()), audit=[SESSION_END])
    [record] = await store.list_audit()
    assert (record.event, record.subject, record.detail) == (
        "session_end",
        "ses-1",
        {"reason": "completed"},
    )
