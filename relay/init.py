"""``qp-relay init``: create a relay's data directory, once; and ``qp-relay
admin-token --rotate``: a new token for an admin, made on the relay machine itself,
for when the admin's token is lost or leaked.

The rotation needs the data directory (so only the relay's operator can run it) and
works while the relay serves: the relay reads technicians from the database at
every login and before every call, so the old token stops at once. A disabled admin
is enabled again, so it is also the way back in after an admin locked themselves out.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from relay.core.ids import new_id, new_token, token_hash
from relay.model import AuditEvent, Technician, TechnicianChange
from relay.services.authorities import HOST_CA_FILE, create_authorities
from relay.settings import DEFAULT_TOML, Limits, load_settings
from relay.store import open_store
from relay.tls import TlsFiles, ca_pin, create_private_ca, parse_names
from shared.clock import Clock, SystemClock
from shared.errors import ConfigError, NotFoundError, UsageError
from shared.secrets_io import make_private_dir, write_private

DB_FILE = "relay.db"
SETTINGS_FILE = "relay.toml"
MARKER = ".initialised"


@dataclass(frozen=True)
class InitResult:
    data_dir: Path
    relay_id: str
    admin_token: str
    ca_pin: str = ""  # of the private CA, when there is one


def require_initialised(data_dir: Path) -> None:
    if not (data_dir / MARKER).exists():
        raise ConfigError(f"{data_dir} is not a relay data directory; run 'qp-relay init' first")


def init_relay(
    data_dir: Path,
    public_url: str = "",
    tls_names: str = "",
    tls_files: TlsFiles | None = None,
) -> InitResult:
    """Create keys, settings and the database, and the first admin; with
    ``tls_names`` a private CA and a server certificate, or record ``tls_files``.

    Refuses an already initialised directory: there is no way to bootstrap a
    second admin once a relay exists (ScreenConnect CVE-2024-1709).
    """
    if (data_dir / MARKER).exists() or (data_dir / HOST_CA_FILE).exists():
        raise ConfigError(f"{data_dir} is already initialised; nothing was changed")
    if public_url and not public_url.startswith(("ws://", "wss://")):
        raise ConfigError("--public-url must start with ws:// or wss://")
    if tls_names and tls_files:
        raise UsageError("give --tls-names (a new private CA) or --tls-cert/--tls-key, not both")
    if tls_names:
        parse_names(tls_names)  # refuse a bad name before anything is written
    make_private_dir(data_dir)
    create_authorities(data_dir)
    relay_id = new_id("rly")
    tls = create_private_ca(data_dir, tls_names, relay_id) if tls_names else tls_files
    tls = tls or TlsFiles("", "")
    settings = DEFAULT_TOML.format(
        public_url=public_url,
        tls_cert=_toml(tls.cert),
        tls_key=_toml(tls.key),
        tls_ca=_toml(tls.ca),
    )
    write_private(data_dir / SETTINGS_FILE, settings)
    admin_token = new_token("qpt")
    asyncio.run(_init_db(data_dir, relay_id, admin_token))
    write_private(data_dir / MARKER, f"{relay_id}\n")
    pin = ca_pin(data_dir, load_settings(data_dir / SETTINGS_FILE))
    return InitResult(data_dir, relay_id, admin_token, pin)


def _toml(text: str) -> str:
    """``text`` inside a TOML basic string (a path may hold a quote or backslash)."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


async def _init_db(data_dir: Path, relay_id: str, admin_token: str) -> None:
    store = await open_store(f"sqlite:///{(data_dir / DB_FILE).resolve()}")
    try:
        now = SystemClock().now()
        await store.set_meta("relay_id", relay_id)
        expires = now + timedelta(days=Limits().technician_token_days)  # relay.toml's default
        admin = Technician(new_id("tec"), "admin", 3, "admin", (), now, token_expires_at=expires)
        await store.add_technician(admin, token_hash(admin_token))
        await store.audit(now, "relay_init", "relay", relay_id)
    finally:
        await store.close()


@dataclass(frozen=True)
class NewAdminToken:
    name: str
    token: str
    expires_at: datetime
    was_disabled: bool


def rotate_admin_token(data_dir: Path, name: str, clock: Clock | None = None) -> NewAdminToken:
    """Give the admin ``name`` a new token (the old one stops working)."""
    require_initialised(data_dir)
    days = load_settings(data_dir / SETTINGS_FILE).limits.technician_token_days
    return asyncio.run(_rotate(data_dir, name, days, clock or SystemClock()))


async def _rotate(data_dir: Path, name: str, days: int, clock: Clock) -> NewAdminToken:
    store = await open_store(f"sqlite:///{(data_dir / DB_FILE).resolve()}")
    try:
        admins = [t for t in await store.list_technicians() if t.role == "admin"]
        found = [t for t in admins if name in (t.name, t.id)]
        if not found:
            known = ", ".join(t.name for t in admins) or "none"
            raise NotFoundError(f"no admin {name!r} in {data_dir} (admins: {known}); see --name")
        admin = found[0]
        token = new_token("qpt")
        now = clock.now()
        expires = now + timedelta(days=days)
        change = TechnicianChange(
            disabled=False, token_hash=token_hash(token), token_expires_at=expires
        )
        detail = {"local": True, "was_disabled": admin.disabled}
        audit = AuditEvent(now, "technician_token_rotate", "relay", admin.id, detail)
        await store.update_technician(admin.id, change, audit=(audit,))
        return NewAdminToken(admin.name, token, expires, admin.disabled)
    finally:
        await store.close()
