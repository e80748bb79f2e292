"""What only the SQLite backend promises for billing: invoice numbers stay unique and
gap-free across connections writing at once, invoices and the edit history cannot
be rewritten even with SQL, and an older database keeps its time entries."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing as closing_db
from importlib import resources
from pathlib import Path

import pytest

from relay.store.sqlite import SQLiteStore
from relay.store.sqlite.codec import columns, insert_sql
from relay.store.sqlite.migrations import statements
from tests.store.records import agent, customer, seed, technician, time_entry
from tests.store.test_billing_store import approved, draft, entry


def execute(path: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    with closing_db(sqlite3.connect(path)) as db:
        rows: list[tuple[object, ...]] = db.execute(sql, params).fetchall()
        db.commit()
        return rows


async def test_twenty_connections_creating_invoices_at_once_share_one_sequence(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "relay.db")
    first = SQLiteStore(path)
    await first.open()
    await seed(first)
    ids = [f"ent-{n:02d}" for n in range(20)]
    await approved(first, *ids)
    stores = [first] + [SQLiteStore(path) for _ in range(19)]
    for other in stores[1:]:
        await other.open()
    try:
        made = await asyncio.gather(
            *(s.create_invoice(draft(f"inv-{n:02d}", (ids[n],))) for n, s in enumerate(stores))
        )
    finally:
        for s in stores:
            await s.close()
    assert sorted(r.number for r in made) == [f"2026-{n:06d}" for n in range(1, 21)]
    rows = execute(tmp_path / "relay.db", "SELECT seq FROM invoices ORDER BY seq")
    assert [r[0] for r in rows] == list(range(1, 21))


async def test_invoices_and_history_cannot_be_rewritten(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "relay.db"))
    await store.open()
    try:
        await seed(store)
        await approved(store, "ent-1")
        await store.create_invoice(draft())
    finally:
        await store.close()
    path = tmp_path / "relay.db"
    for sql in (
        "UPDATE invoices SET total_incl_vat = '0.00'",
        "DELETE FROM invoices",
        "UPDATE invoice_lines SET amount = '0.00'",
        "DELETE FROM invoice_lines",
        "UPDATE time_entry_edits SET reason = 'hidden'",
        "DELETE FROM time_entry_edits",
    ):
        with pytest.raises(sqlite3.IntegrityError):
            execute(path, sql)
    assert execute(path, "SELECT total_incl_vat FROM invoices") == [("54.45",)]


async def test_entries_of_an_older_database_survive_the_billing_migration(
    tmp_path: Path,
) -> None:
    path = tmp_path / "relay.db"
    folder = resources.files("relay.store.sqlite") / "migrations"
    old = time_entry()
    with closing_db(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)")
        for version in (1, 2, 3):
            (script,) = [f for f in folder.iterdir() if f.name.startswith(f"000{version}_")]
            for statement in statements(script.read_text()):
                db.execute(statement)
            db.execute("INSERT INTO schema_migrations VALUES (?, '2026-01-01')", (version,))
        for table, record in (("customers", customer()), ("agents", agent())):
            values = columns(record)
            db.execute(insert_sql(table, values), values)
        tech = columns(technician(), token_hash="h")
        for later in ("customer_ids", "token_expires_at", "grants"):  # not columns yet
            del tech[later]
        db.execute(insert_sql("technicians", tech), tech)
        values = columns(old)
        values["ticket"] = values.pop("request")  # its name before migration 0006
        db.execute(insert_sql("time_entries", values), values)
        db.commit()
    store = SQLiteStore(str(path))
    await store.open()
    try:
        assert await store.list_time_entries() == [old]
        kept = await store.get_entry(old.id)
        assert kept is not None
        assert (kept.card_digest, kept.source, kept.complexity, kept.revision) == (
            "",
            "session",
            "standard",
            0,
        )
        await store.add_entry(entry("ent-new", start=100))
    finally:
        await store.close()
