"""``qp-relay init``: create a relay's data directory, once."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from relay.core.ids import new_id, new_token, token_hash
from relay.model import Technician
from relay.services.authorities import HOST_CA_FILE, create_authorities
from relay.settings import DEFAULT_TOML
from relay.store import open_store
from shared.clock import SystemClock
from shared.errors import ConfigError
from shared.secrets_io import make_private_dir, write_private

DB_FILE = "relay.db"
SETTINGS_FILE = "relay.toml"
MARKER = ".initialised"


@dataclass(frozen=True)
class InitResult:
    data_dir: Path
    relay_id: str
    admin_token: str


def require_initialised(data_dir: Path) -> None:
    if not (data_dir / MARKER).exists():
        raise ConfigError(f"{data_dir} is not a relay data directory; run 'qp-relay init' first")


def init_relay(data_dir: Path, public_url: str = "") -> InitResult:
    """Create keys, settings and the database, and the first admin.

    Refuses an already initialised directory: there is no way to bootstrap a
    second admin once a relay exists (ScreenConnect CVE-2024-1709).
    """
    if (data_dir / MARKER).exists() or (data_dir / HOST_CA_FILE).exists():
        raise ConfigError(f"{data_dir} is already initialised; nothing was changed")
    if public_url and not public_url.startswith(("ws://", "wss://")):
        raise ConfigError("--public-url must start with ws:// or wss://")
    make_private_dir(data_dir)
    create_authorities(data_dir)
    write_private(data_dir / SETTINGS_FILE, DEFAULT_TOML.format(public_url=public_url))
    relay_id = new_id("rly")
    admin_token = new_token("qpt")
    asyncio.run(_init_db(data_dir, relay_id, admin_token))
    write_private(data_dir / MARKER, f"{relay_id}\n")
    return InitResult(data_dir, relay_id, admin_token)


async def _init_db(data_dir: Path, relay_id: str, admin_token: str) -> None:
    store = await open_store(f"sqlite:///{(data_dir / DB_FILE).resolve()}")
    try:
        now = SystemClock().now()
        await store.set_meta("relay_id", relay_id)
        admin = Technician(new_id("tec"), "admin", 3, "admin", (), now)
        await store.add_technician(admin, token_hash(admin_token))
        await store.audit(now, "relay_init", "relay", relay_id)
    finally:
        await store.close()
