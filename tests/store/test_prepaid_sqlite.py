"""What only the SQLite backend promises for prepaid hours: blocks bought before
migration 0008 pay from the day they were bought."""

from __future__ import annotations

import sqlite3
from contextlib import closing as closing_db
from datetime import date
from pathlib import Path

from relay.store.sqlite import SQLiteStore
from relay.store.sqlite.codec import columns, insert_sql
from relay.store.sqlite.migrations import load_migrations, statements
from tests.store.records import customer


async def test_older_blocks_pay_from_the_day_they_were_bought(tmp_path: Path) -> None:
    path = tmp_path / "relay.db"
    with closing_db(sqlite3.connect(path)) as db:  # a database from before 0008
        db.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)")
        for version, _, script in load_migrations():
            if version < 8:
                for statement in statements(script):
                    db.execute(statement)
                db.execute("INSERT INTO schema_migrations VALUES (?, '2026-01-01')", (version,))
        values = columns(customer())
        db.execute(insert_sql("customers", values), values)
        db.execute(
            "INSERT INTO prepaid_blocks (id, customer_id, minutes, created_at, created_by)"
            " VALUES ('pre-old', 'cus-1', 600, '2026-11-30T23:30:00.000000+00:00', 'tec-1')"
        )
        db.commit()
    store = SQLiteStore(str(path))
    await store.open()
    try:
        (balance,) = await store.prepaid_balances("cus-1")
        assert balance.block.valid_from == date(2026, 11, 30)  # the UTC day it was bought
        assert balance.remaining_minutes == 600
    finally:
        await store.close()
