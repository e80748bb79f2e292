"""The relay's settings: every limit is named here with a safe default.

They are read from ``relay.toml`` in the data directory (written with the defaults
by ``qp-relay init``); a missing key keeps its default, an unknown key is an error
so a typo never silently leaves a limit at its default.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from shared.errors import ConfigError


@dataclass(frozen=True)
class Limits:
    control_max_size: int = 64 * 1024  # bytes in one control message
    tunnel_max_size: int = 1024 * 1024  # bytes in one tunnel frame
    tunnel_max_queue: int = 8  # frames buffered per tunnel end before reads pause
    tunnel_token_ttl: int = 60  # seconds a tunnel token stays usable (≤ 60)
    pair_timeout: int = 30  # seconds for both tunnel ends to arrive
    offer_timeout: int = 30  # seconds for the agent to accept an offer
    consent_timeout: int = 120  # seconds a technician waits for the client's consent
    auth_timeout: int = 10  # seconds from connect to a valid auth/login message
    open_timeout: int = 10  # seconds for a WebSocket handshake
    max_preauth: int = 512  # connections allowed between handshake and auth
    auth_failures_per_minute: int = 20  # per peer address, then refused until they age out
    ping_interval: int = 20  # WebSocket keepalive
    ping_timeout: int = 20
    cert_minutes: int = 10  # validity of a per-session SSH user certificate
    host_cert_days: int = 365  # validity of an agent's host certificate
    allowed_origins: tuple[str, ...] = ()  # browser origins allowed on /v1/console


@dataclass(frozen=True)
class Billing:
    hourly_rate: Decimal = Decimal("90.00")
    currency: str = "EUR"
    minimum_minutes: int = 15
    increment_minutes: int = 5
    rounding: str = "up"  # up | nearest | down
    grace_seconds: int = 0  # active time below this is not billed


@dataclass(frozen=True)
class Settings:
    public_url: str = ""  # what agents and technicians dial; derived from --listen if empty
    heartbeat_interval: int = 15  # seconds between persisted heartbeats of active sessions
    limits: Limits = field(default_factory=Limits)
    billing: Billing = field(default_factory=Billing)


DEFAULT_TOML = """\
# Quarkpulse relay settings. Every key is optional; shown here with its default.
public_url = "{public_url}"
heartbeat_interval = 15

[limits]
control_max_size = 65536
tunnel_max_size = 1048576
tunnel_max_queue = 8
tunnel_token_ttl = 60
pair_timeout = 30
offer_timeout = 30
consent_timeout = 120
auth_timeout = 10
open_timeout = 10
max_preauth = 512
auth_failures_per_minute = 20
ping_interval = 20
ping_timeout = 20
cert_minutes = 10
host_cert_days = 365
allowed_origins = []

[billing]
hourly_rate = "90.00"
currency = "EUR"
minimum_minutes = 15
increment_minutes = 5
rounding = "up"
grace_seconds = 0
"""


def _build(cls: type[Any], raw: dict[str, Any], section: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known or key in ("limits", "billing"):
            raise ConfigError(f"unknown setting {section}{key!r} in relay.toml")
        default = getattr(cls(), key)
        try:
            if isinstance(default, Decimal):
                value = Decimal(str(value))
            elif isinstance(default, tuple):
                value = tuple(str(v) for v in value)
            elif isinstance(default, bool) or not isinstance(value, type(default)):
                raise TypeError
        except (TypeError, InvalidOperation):
            raise ConfigError(
                f"setting {section}{key} in relay.toml should be like {default!r}"
            ) from None
        values[key] = value
    return cls(**values)


def load_settings(path: Path) -> Settings:
    """Read ``relay.toml``; defaults when the file does not exist."""
    if not path.exists():
        return Settings()
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    limits = _build(Limits, raw.pop("limits", {}), "limits.")
    billing = _build(Billing, raw.pop("billing", {}), "billing.")
    top = _build(Settings, raw, "")
    settings = Settings(top.public_url, top.heartbeat_interval, limits, billing)
    validate(settings)
    return settings


def validate(settings: Settings) -> None:
    """Refuse settings that would be unsafe or meaningless."""
    lim, bill = settings.limits, settings.billing
    if not 0 < lim.tunnel_token_ttl <= 60:
        raise ConfigError("limits.tunnel_token_ttl must be between 1 and 60 seconds")
    if not 0 < settings.heartbeat_interval <= 30:
        raise ConfigError("heartbeat_interval must be between 1 and 30 seconds")
    if bill.rounding not in ("up", "nearest", "down"):
        raise ConfigError("billing.rounding must be up, nearest or down")
    if bill.increment_minutes <= 0 or bill.minimum_minutes < 0 or bill.hourly_rate < 0:
        raise ConfigError("billing figures must be positive")
    for name in (
        "control_max_size",
        "tunnel_max_size",
        "cert_minutes",
        "max_preauth",
        "auth_failures_per_minute",
    ):
        if getattr(lim, name) <= 0:
            raise ConfigError(f"limits.{name} must be positive")
