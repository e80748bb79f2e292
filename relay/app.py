"""The relay node, composed: settings, keys and store from a data directory, the
services around them, and the WebSocket server in front. This is the composition
root: it may import every layer, and only the command line (and tests that run a
node in-process) import it.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from relay.init import require_initialised
from relay.services.authorities import load_authorities
from relay.services.container import Services, build_services
from relay.services.ports import Tap
from relay.settings import load_settings
from relay.store import open_store
from relay.store.interface import Store
from relay.tls import ca_pin
from relay.transport.links import AgentLinks
from relay.transport.server import Listen, RelayServer
from shared.clock import Clock, SystemClock

log = logging.getLogger("qp.relay")

DB_FILE = "relay.db"
SETTINGS_FILE = "relay.toml"

__all__ = ["Listen", "Relay"]


class Relay:
    """One relay node; created by :meth:`open`."""

    def __init__(self, store: Store, services: Services, links: AgentLinks) -> None:
        self.store = store
        self.services = services
        self.server = RelayServer(services, links)
        self._background: list[asyncio.Task[None]] = []

    @classmethod
    async def open(
        cls, data_dir: Path, clock: Clock | None = None, tap: Tap | None = None
    ) -> Relay:
        """Load settings, keys and the store from an initialised data directory,
        and close sessions a previous run left open."""
        require_initialised(data_dir)
        settings = load_settings(data_dir / SETTINGS_FILE)
        pin = ca_pin(data_dir, settings)  # first: an unreadable tls_ca leaves no store open
        store = await open_store(f"sqlite:///{(data_dir / DB_FILE).resolve()}")
        relay_id = await store.get_meta("relay_id") or "relay"
        links = AgentLinks()
        services = build_services(
            store=store,
            clock=clock or SystemClock(),
            settings=settings,
            authorities=load_authorities(data_dir),
            relay_id=relay_id,
            channel=links,
            data_dir=data_dir,
            tap=tap,
        )
        services.ca_pin = pin
        relay = cls(store, services, links)
        # Tokens from before expiry existed get the full lifetime from now (audited).
        await services.directory.stamp_token_expiry()
        recovered = await services.sessions.recover()
        if recovered:
            log.warning(
                "closed %d session(s) left open by an earlier run as 'recovered'", recovered
            )
        return relay

    async def start(self, listen: Listen) -> str:
        """Start listening; returns the URL actually bound (port 0 resolved)."""
        url = await self.server.start(listen)
        sessions = self.services.sessions
        if not sessions.public_url:
            sessions.public_url = url
        self._background.append(asyncio.create_task(sessions.heartbeat_forever()))
        self._background.append(asyncio.create_task(sessions.sweep_forever()))
        self._background.append(asyncio.create_task(self.services.auditor.run()))
        return url

    async def stop(self) -> None:
        """Graceful stop: end sessions as ``relay_shutdown`` (entries written), close
        links, close the store."""
        self.server.stop_accepting()
        await self.services.sessions.shutdown()
        self.services.sessions.ledger.stop()
        for task in self._background:
            task.cancel()
        await self.server.close()
        await self.services.auditor.stop()  # the open window's counted refusals
        await self.store.close()
