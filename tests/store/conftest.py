"""The ``store`` fixture: every compliance test runs once per storage backend.

To add a backend, add one factory to :data:`FACTORIES`. A factory that needs a
service it cannot find (e.g. PostgreSQL without a configured DSN) calls
``pytest.skip``; it may also return a store whose database it has just emptied.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from relay.store.interface import Store
from relay.store.sqlite import SQLiteStore

StoreFactory = Callable[[Path], Store]


def _sqlite(tmp_path: Path) -> Store:
    return SQLiteStore(str(tmp_path / "relay.db"))


#: Backend name -> factory taking the test's ``tmp_path``, returning an unopened store.
FACTORIES: dict[str, StoreFactory] = {
    "sqlite": _sqlite,
}


@pytest.fixture(params=list(FACTORIES))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """An opened, empty store of each backend, closed after the test."""
    instance = FACTORIES[request.param](tmp_path)
    await instance.open()
    try:
        yield instance
    finally:
        await instance.close()
