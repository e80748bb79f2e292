"""The relay's settings: every limit is named here with a safe default.

They are read from ``relay.toml`` in the data directory (written with the defaults
by ``qp-relay init``); a missing key keeps its default, an unknown key is an error
so a typo never silently leaves a limit at its default.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import tomllib
from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.errors import ConfigError


@dataclass(frozen=True)
class Limits:
    control_max_size: int = 64 * 1024  # bytes in one control message from a console
    agent_max_message: int = 384 * 1024  # from an agent (room for one diagnostics snapshot)
    tunnel_max_size: int = 1024 * 1024  # bytes in one tunnel frame
    tunnel_max_queue: int = 8  # frames buffered per tunnel end before reads pause
    tunnel_token_ttl: int = 60  # seconds a tunnel token stays usable (≤ 60)
    pair_timeout: int = 30  # seconds for both tunnel ends to arrive
    offer_timeout: int = 30  # seconds for the agent to accept an offer
    consent_timeout: int = 120  # seconds a technician waits for the client's consent
    auth_timeout: int = 10  # seconds from connect to a valid auth/login message
    open_timeout: int = 10  # seconds for a WebSocket handshake
    max_preauth: int = 512  # connections allowed between handshake and auth
    max_preauth_per_address: int = 64  # of those from one client address (below max_preauth)
    #: Failed logins of one identity (token, agent, support codes) from one client
    #: address in a minute, then that identity is refused from there until they age out.
    auth_failures_per_minute: int = 20
    auth_failures_per_identity: int = 100  # of one identity from all addresses, then refused
    #: Failed logins from one client address in a minute (any identity), then its
    #: failures are answered only after auth_failure_delay_ms; valid ones still log in.
    auth_failures_per_address: int = 20
    auth_failure_delay_ms: int = 2000
    throttle_max_keys: int = 10_000  # entries per throttle table, the stalest dropped first
    #: TCP peers (addresses or CIDR blocks) whose X-Forwarded-For names the client.
    trusted_proxies: tuple[str, ...] = ()
    #: Those peers open with a PROXY protocol header (v1 or v2) naming the client;
    #: only on a plain listener (the header comes before TLS).
    proxy_protocol: bool = False
    ping_interval: int = 20  # WebSocket keepalive
    ping_timeout: int = 20
    cert_minutes: int = 10  # margin of a session certificate past max_duration (below)
    host_cert_days: int = 365  # validity of an agent's host certificate
    allowed_origins: tuple[str, ...] = ()  # browser origins allowed on /v1/console
    # Session limits. A session's certificate is valid for max_duration + cert_minutes
    # from its issue; the relay ends the session at max_duration from the same moment,
    # so it never outlives its certificate (the agent also refuses new channels after
    # the certificate's valid_before). Idle is judged like billing: a minute with at
    # most billing.activity_noise_bytes of payload is quiet.
    idle_timeout: int = 30  # minutes without payload before a session ends (idle_timeout)
    max_duration: int = 480  # minutes a session may last at most (max_duration)
    login_timeout: int = 60  # seconds from pairing to a completed SSH login (login_timeout)
    max_sessions_per_technician: int = 10  # concurrent open sessions of one technician
    help_requests_per_agent: int = 20  # open (unresolved) help requests one agent may have
    technician_token_days: int = 90  # a technician's API token works this long
    technician_token_warn_days: int = 7  # warn at login and whoami this close to expiry
    #: Unauthenticated refusals are counted per (source address, reason) and written
    #: as one audit row per window, so a flood cannot flood the audit table.
    audit_window_seconds: int = 60
    audit_buffer_keys: int = 1000  # distinct (address, reason) counted before an early write
    #: Peer addresses or networks allowed to read /metrics (never through a proxy).
    metrics_allow: tuple[str, ...] = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class Billing:
    hourly_rate: Decimal = Decimal("90.00")
    currency: str = "EUR"
    minimum_minutes: int = 0  # the office sets minimums in its rate card
    increment_minutes: int = 1
    rounding: str = "up"  # up | nearest | down
    grace_seconds: int = 0  # merged time below this is not billed
    merge_window_minutes: int = 10  # reconnects closer than this are one entry
    idle_threshold_minutes: int = 5  # quiet stretches beyond this are not billed
    #: Tunnel payload bytes (both ways) in one minute at or below which the minute
    #: counts as idle: a stray SSH rekey is not work, a typed command is.
    activity_noise_bytes: int = 256
    prepaid_pays: str = "base"  # base: prepaid hours pay base time, surcharges are invoiced;
    # all: surcharges are drawn from the prepaid hours too (+50 % draws 1.5 h per hour)
    prepaid_warn_below_hours: Decimal = Decimal("2")  # a lower balance is low (0: never)


@dataclass(frozen=True)
class Company:
    """The IT company as the supplier on its invoices: relay.toml's values, which
    ``qp company set`` overrides (stored in the database) except for the time zone
    and the VAT rate. Empty required fields make invoicing refuse with a message
    naming them (see :meth:`missing`)."""

    legal_name: str = ""
    address: str = ""  # street and number
    address2: str = ""  # optional second address line
    postcode: str = ""
    city: str = ""
    country: str = "NL"  # ISO 3166 alpha-2
    kvk: str = ""  # Chamber of Commerce number: endpoint and legal id on e-invoices
    vat_id: str = ""  # e.g. NL123456782B01
    iban: str = ""
    email: str = ""
    timezone: str = "Europe/Amsterdam"  # supply dates and invoice periods are local
    vat_percent: Decimal = Decimal("21")  # standard rate on invoice lines
    payment_means: str = "58"  # 58 SEPA credit transfer, 30 credit transfer

    REQUIRED = ("legal_name", "address", "postcode", "city", "kvk", "vat_id", "iban")

    def missing(self) -> list[str]:
        """The required fields still empty."""
        return [name for name in self.REQUIRED if not str(getattr(self, name)).strip()]


@dataclass(frozen=True)
class Settings:
    public_url: str = ""  # what agents and technicians dial; derived from --listen if empty
    tls_cert: str = ""  # certificate chain serve uses (relative: in the data directory)
    tls_key: str = ""  # its private key
    tls_ca: str = ""  # private CA whose pin the enroll and support lines carry
    heartbeat_interval: int = 15  # seconds between persisted heartbeats of active sessions
    snapshots_per_agent: int = 50  # diagnostics history kept per agent
    diag_timeout: int = 15  # seconds to wait for a fresh snapshot from an agent
    session_snapshot_interval: int = 60  # min seconds between automatic session snapshots
    limits: Limits = field(default_factory=Limits)
    billing: Billing = field(default_factory=Billing)
    company: Company = field(default_factory=Company)


DEFAULT_TOML = """\
# Quarkpulse relay settings. Every key is optional; shown here with its default.
public_url = "{public_url}"
# serve's certificate chain and key (relative paths: in this directory);
# --tls-cert/--tls-key on serve override them
tls_cert = "{tls_cert}"
tls_key = "{tls_key}"
# a private CA: the enroll and support lines the relay prints carry its --ca-pin
tls_ca = "{tls_ca}"
heartbeat_interval = 15
snapshots_per_agent = 50
diag_timeout = 15
session_snapshot_interval = 60

[limits]
control_max_size = 65536
agent_max_message = 393216
tunnel_max_size = 1048576
tunnel_max_queue = 8
tunnel_token_ttl = 60
pair_timeout = 30
offer_timeout = 30
consent_timeout = 120
auth_timeout = 10
open_timeout = 10
max_preauth = 512
max_preauth_per_address = 64      # pre-login connections from one client address
auth_failures_per_minute = 20     # per identity tried and client address
auth_failures_per_identity = 100  # per identity tried, from all addresses
auth_failures_per_address = 20    # per client address; beyond it failures are slowed,
auth_failure_delay_ms = 2000      # by this much, and valid logins still pass
throttle_max_keys = 10000         # entries per throttle table
trusted_proxies = []              # e.g. ["10.0.0.5", "10.1.0.0/24"]: take the client
                                  # address from their X-Forwarded-For
proxy_protocol = false            # true: they open with a PROXY v1/v2 header naming
                                  # the client (on a plain listener only)
ping_interval = 20
ping_timeout = 20
cert_minutes = 10             # session certificate margin past max_duration
host_cert_days = 365
allowed_origins = []
idle_timeout = 30             # minutes without payload, then the session ends
max_duration = 480            # minutes a session lasts at most (its certificate 10 more)
login_timeout = 60            # seconds from pairing to a completed SSH login
max_sessions_per_technician = 10
help_requests_per_agent = 20
technician_token_days = 90        # a new or rotated token works this many days
technician_token_warn_days = 7    # qp login and qp whoami warn this close to expiry
audit_window_seconds = 60      # unauthenticated refusals: one audit row per address and
audit_buffer_keys = 1000       # reason per window, with a count; keys held before writing
metrics_allow = ["127.0.0.1", "::1"]  # who may read /metrics: addresses or networks

[billing]
hourly_rate = "90.00"
currency = "EUR"
minimum_minutes = 0           # without a rate card the relay bills actual time, in
increment_minutes = 1         # whole minutes (the office sets minimums in its card)
rounding = "up"
grace_seconds = 0
merge_window_minutes = 10     # reconnects closer than this form one entry
idle_threshold_minutes = 5    # quiet stretches beyond this many minutes are not billed
activity_noise_bytes = 256    # payload bytes per minute at or below which a minute is idle
prepaid_pays = "base"         # base: prepaid hours pay base time, surcharges are invoiced;
                              # all: surcharges are drawn too (an hour at +50 % draws 1.5 h)
prepaid_warn_below_hours = "2"  # prepaid list and invoices warn below this balance (0: never)

[company]                     # the supplier on invoices until the first `qp company set`;
legal_name = ""               # invoicing is refused until legal_name, address, postcode,
                              # city, kvk, vat_id, iban are set (here or with qp company set)
address = ""
address2 = ""
postcode = ""
city = ""
country = "NL"
kvk = ""
vat_id = ""
iban = ""
email = ""
timezone = "Europe/Amsterdam"
vat_percent = "21"
payment_means = "58"          # 58 SEPA credit transfer, 30 credit transfer
"""


def _build(cls: type[Any], raw: dict[str, Any], section: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known or key in ("limits", "billing", "company"):
            raise ConfigError(f"unknown setting {section}{key!r} in relay.toml")
        default = getattr(cls(), key)
        try:
            if isinstance(default, Decimal):
                value = Decimal(str(value))
            elif isinstance(default, tuple):
                value = tuple(str(v) for v in value)
            elif isinstance(value, bool) != isinstance(default, bool) or not isinstance(
                value, type(default)
            ):  # a bool is an int to Python, not to relay.toml
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
    company = _build(Company, raw.pop("company", {}), "company.")
    top = _build(Settings, raw, "")
    settings: Settings = dataclasses.replace(top, limits=limits, billing=billing, company=company)
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
    if bill.prepaid_pays not in ("base", "all"):
        raise ConfigError('billing.prepaid_pays must be "base" or "all"')
    warn = bill.prepaid_warn_below_hours * 60
    if not warn.is_finite() or warn < 0 or warn != warn.to_integral_value():
        raise ConfigError("billing.prepaid_warn_below_hours must be 0 or more whole minutes")
    _validate_company(settings.company)
    if not 0 < lim.technician_token_days <= 3650:
        raise ConfigError("limits.technician_token_days must be between 1 and 3650")
    if not 0 <= lim.technician_token_warn_days < lim.technician_token_days:
        raise ConfigError(
            "limits.technician_token_warn_days must be 0 or more and below technician_token_days"
        )
    for item in lim.metrics_allow:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(
                f"limits.metrics_allow: {item!r} is not an address or network such as 10.0.0.0/8"
            ) from None
    for name in (
        "control_max_size",
        "tunnel_max_size",
        "cert_minutes",
        "max_preauth",
        "max_preauth_per_address",
        "auth_failures_per_minute",
        "auth_failures_per_identity",
        "auth_failures_per_address",
        "throttle_max_keys",
        "idle_timeout",
        "max_duration",
        "login_timeout",
        "max_sessions_per_technician",
        "help_requests_per_agent",
        "audit_window_seconds",
        "audit_buffer_keys",
    ):
        if getattr(lim, name) <= 0:
            raise ConfigError(f"limits.{name} must be positive")
    if lim.idle_timeout > lim.max_duration:
        raise ConfigError("limits.idle_timeout must not exceed limits.max_duration")
    _validate_gate(lim)


def _validate_gate(lim: Limits) -> None:
    from relay.core.forwarded import parse_networks

    if lim.max_preauth_per_address >= lim.max_preauth:
        # Otherwise one address could take every pre-login slot.
        raise ConfigError("limits.max_preauth_per_address must be below limits.max_preauth")
    if not 0 <= lim.auth_failure_delay_ms <= 60_000:
        raise ConfigError("limits.auth_failure_delay_ms must be between 0 and 60000")
    try:
        parse_networks(lim.trusted_proxies)
    except ValueError as exc:
        raise ConfigError(f"limits.trusted_proxies: {exc}") from None
    if lim.proxy_protocol and not lim.trusted_proxies:
        raise ConfigError("limits.proxy_protocol needs the proxies in limits.trusted_proxies")


def _validate_company(company: Company) -> None:
    from relay.billing.invoice import iban_is_valid

    try:
        ZoneInfo(company.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"company.timezone {company.timezone!r} is not a known time zone"
        ) from None
    if not (len(company.country) == 2 and company.country.isalpha() and company.country.isupper()):
        raise ConfigError("company.country must be a two-letter code such as NL")
    if not 0 < company.vat_percent < 100:
        raise ConfigError("company.vat_percent must be above 0 and below 100")
    if company.payment_means not in ("30", "58"):
        raise ConfigError('company.payment_means must be "58" (SEPA) or "30"')
    if company.iban and not iban_is_valid(company.iban):
        raise ConfigError(f"company.iban {company.iban!r} is not a valid IBAN")
