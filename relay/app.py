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
from relay.services.live_settings import LiveSettings
from relay.services.metrics import RelayMetrics
from relay.services.ports import Tap
from relay.settings import Settings, load_settings
from relay.store import open_store
from relay.store.interface import Store
from relay.tls import ca_pin
from relay.transport.links import AgentLinks
from relay.transport.server import Listen, RelayServer
from shared.clock import Clock, SystemClock
from shared.errors import ConfigError

log = logging.getLogger("qp.relay")

DB_FILE = "relay.db"
SETTINGS_FILE = "relay.toml"

__all__ = ["Listen", "Relay"]

#: Limits the listening socket was created with: a reload cannot change them.
RESTART_LIMITS = ("open_timeout", "ping_interval", "ping_timeout", "tunnel_max_size",
                  "tunnel_max_queue")  # fmt: skip


def _limit(settings: Settings, key: str) -> object:
    return getattr(settings.limits, key)


class Relay:
    """One relay node; created by :meth:`open`."""

    def __init__(
        self, store: Store, services: Services, links: AgentLinks, data_dir: Path | None = None
    ) -> None:
        self.store = store
        self.services = services
        self.server = RelayServer(services, links)
        self.data_dir = data_dir
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
        metrics = RelayMetrics()
        store.write_observer = metrics.store_write
        services = build_services(
            store=store,
            clock=clock or SystemClock(),
            settings=LiveSettings(settings),
            metrics=metrics,
            authorities=load_authorities(data_dir),
            relay_id=relay_id,
            channel=links,
            data_dir=data_dir,
            tap=tap,
        )
        services.ca_pin = pin
        relay = cls(store, services, links, data_dir)
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

    def reload(self) -> bool:
        """Read ``relay.toml`` again and put it in force for what starts next
        (sessions, logins, entries); running sessions keep going. A file that does
        not load is refused with one log line and the settings in force are kept.
        True when the new settings were applied."""
        assert self.data_dir is not None, "reload needs the relay's data directory"
        path = self.data_dir / SETTINGS_FILE
        try:
            new = load_settings(path)
        except ConfigError as exc:
            self.services.metrics.reloaded(False)
            log.error("reload refused, settings in force kept: %s", exc, extra={"file": str(path)})
            return False
        old = self.services.live.swap(new)
        if new.public_url and new.public_url != old.public_url:
            self.services.sessions.public_url = new.public_url.rstrip("/")
        self.services.metrics.reloaded(True)
        later = [f"limits.{key}" for key in RESTART_LIMITS if _limit(old, key) != _limit(new, key)]
        log.info(
            "settings reloaded from %s%s",
            path,
            f" ({', '.join(later)} take effect at the next restart)" if later else "",
            extra={"file": str(path), "restart_needed": later},
        )
        return True

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
