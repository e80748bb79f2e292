"""Storage for the relay: :func:`open_store` picks the implementation by URL scheme."""

from __future__ import annotations

from relay.store.interface import Store
from shared.errors import ConfigError


async def open_store(url: str) -> Store:
    """Open (and migrate) the store at ``url`` (``sqlite:///path``)."""
    if url.startswith("sqlite:///"):
        from relay.store.sqlite import SQLiteStore

        store: Store = SQLiteStore(url.removeprefix("sqlite://"))
    else:
        raise ConfigError(f"unsupported database URL {url!r}: use sqlite:///PATH")
    await store.open()
    return store
