"""The diagnostics snapshot an agent reports: schema, JSON codec and sanitising caps.

A :class:`Snapshot` holds one :class:`Section` per collector (``system``, ``cpu``,
``memory``, ``disks``, ``services``, ``interfaces``, ``routes``, ``dns``,
``reachability``, ``sockets``, ``journal``), each with a status (``ok``,
``unavailable``, ``timeout``, ``error``), a reason when not ``ok``, and its data,
plus the :class:`Finding` list the agent derived from it.

The frozen dataclasses below *are* the schema: :func:`from_json` walks their type
hints. Within major version 1 unknown fields are ignored and missing optional fields
take their defaults; another major version, a wrong type, a missing required field
or an oversize document is a :class:`RemoteProtocolError` with a one-line reason.

Everything an agent says is untrusted (architecture.md §7). Parsing therefore
*sanitises*: lists are cut to the ``MAX_*`` lengths declared beside each field,
strings lose control and bidi-override characters and are cut to their cap, numbers
must be finite and fit in 64 bits. A parsed snapshot is bounded in size whatever the
agent sent. :func:`sanitize` applies the same caps to a snapshot built locally.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from shared.capped_json import clean_text, dumps, from_plain, items, loads, text, to_plain
from shared.errors import LocalProtocolError, RemoteProtocolError

SCHEMA_MAJOR = 1
SCHEMA_VERSION = f"{SCHEMA_MAJOR}.0"

#: Largest encoded snapshot (UTF-8 JSON) anyone sends or accepts.
MAX_ENCODED_SIZE = 256 * 1024

# String caps, in characters.
MAX_NAME_LENGTH = 128
MAX_STRING_LENGTH = 256
MAX_COMMAND_LENGTH = 512
MAX_MESSAGE_LENGTH = 512

# List caps, in items.
MAX_USERS = 32
MAX_PROCESSES = 10
MAX_MOUNTS = 64
MAX_SERVICES = 64
MAX_INTERFACES = 64
MAX_ADDRESSES = 16
MAX_GATEWAYS = 8
MAX_RESOLVERS = 8
MAX_NAME_CHECKS = 16
MAX_PROBES = 16
MAX_LISTENERS = 256
MAX_JOURNAL_ENTRIES = 50
MAX_FINDINGS = 64
MAX_EVIDENCE = 8

Status = Literal["ok", "unavailable", "timeout", "error"]
Severity = Literal["critical", "warning", "info"]
Family = Literal["ipv4", "ipv6", "mac", "other"]
ProbeRole = Literal["relay", "gateway", "target"]
ProbeOutcome = Literal["open", "refused", "timeout", "error"]
Protocol = Literal["tcp", "udp"]

SEVERITY_ORDER: dict[str, int] = {"critical": 0, "warning": 1, "info": 2}


# -- sections and findings -----------------------------------------------------------

D = TypeVar("D")


@dataclass(frozen=True)
class Section(Generic[D]):
    """What one collector produced: ``data`` is set when ``status`` is ``ok``."""

    status: Status
    reason: str = ""
    elapsed_ms: int = 0
    data: D | None = None


@dataclass(frozen=True)
class Finding:
    """One problem (or notable fact) a rule found in a snapshot.

    ``rule`` is a stable id (``disk_full``); ``subject`` names what it is about (a
    mount point, a service) so two snapshots' findings can be matched."""

    rule: str = text(MAX_NAME_LENGTH)
    severity: Severity = "info"
    title: str = text(MAX_STRING_LENGTH)
    subject: str = text(MAX_STRING_LENGTH)
    evidence: tuple[str, ...] = items(MAX_EVIDENCE)


def finding_key(finding: Finding) -> tuple[str, str]:
    """Identity of a finding across snapshots: its rule and what it is about."""
    return (finding.rule, finding.subject)


# -- section data --------------------------------------------------------------------


@dataclass(frozen=True)
class LoggedInUser:
    name: str = text(MAX_NAME_LENGTH)
    terminal: str = text(MAX_NAME_LENGTH)
    host: str = text(MAX_STRING_LENGTH)
    since: datetime | None = None


@dataclass(frozen=True)
class SystemInfo:
    """Host identity and clocks. ``clock_offset_s`` is agent minus relay time;
    ``pending_reboot`` is ``None`` when the platform gives no way to tell."""

    hostname: str = text(MAX_NAME_LENGTH)
    os: str = text(MAX_NAME_LENGTH)
    os_release: str = text(MAX_STRING_LENGTH)
    kernel: str = text(MAX_STRING_LENGTH)
    architecture: str = text(MAX_NAME_LENGTH)
    boot_time: datetime | None = None
    users: tuple[LoggedInUser, ...] = items(MAX_USERS)
    pending_reboot: bool | None = None
    pending_reboot_reason: str = ""
    timezone: str = text(MAX_NAME_LENGTH)
    utc_offset_minutes: int | None = None
    clock_offset_s: float | None = None


@dataclass(frozen=True)
class ProcessInfo:
    """One process; ``cpu_percent`` is of one core over the sample."""

    pid: int
    name: str = text(MAX_NAME_LENGTH)
    user: str = text(MAX_NAME_LENGTH)
    command: str = text(MAX_COMMAND_LENGTH)
    cpu_percent: float | None = None
    rss_bytes: int | None = None
    memory_percent: float | None = None
    cpu_time_s: float | None = None
    started_at: datetime | None = None


@dataclass(frozen=True)
class CpuInfo:
    logical_count: int | None = None
    physical_count: int | None = None
    load_1: float | None = None
    load_5: float | None = None
    load_15: float | None = None
    utilisation_percent: float | None = None
    sample_s: float = 0.0
    process_count: int | None = None
    top_by_cpu: tuple[ProcessInfo, ...] = items(MAX_PROCESSES)
    top_by_memory: tuple[ProcessInfo, ...] = items(MAX_PROCESSES)


@dataclass(frozen=True)
class MemoryInfo:
    """Memory and swap; ``pressure_*`` are Linux PSI averages (% of time stalled)."""

    total_bytes: int = 0
    available_bytes: int = 0
    used_bytes: int = 0
    percent: float = 0.0
    swap_total_bytes: int = 0
    swap_used_bytes: int = 0
    swap_percent: float = 0.0
    pressure_some_avg10: float | None = None
    pressure_full_avg10: float | None = None


@dataclass(frozen=True)
class Mount:
    """One mounted file system; inode figures are ``None`` where the OS has none."""

    mountpoint: str = text(MAX_STRING_LENGTH)
    device: str = text(MAX_STRING_LENGTH)
    fstype: str = text(MAX_NAME_LENGTH)
    total_bytes: int = 0
    used_bytes: int = 0
    free_bytes: int = 0
    percent: float = 0.0
    inodes_total: int | None = None
    inodes_used: int | None = None
    inodes_free: int | None = None
    read_only: bool = False


@dataclass(frozen=True)
class DisksInfo:
    mounts: tuple[Mount, ...] = items(MAX_MOUNTS)
    mount_count: int = 0


@dataclass(frozen=True)
class Service:
    name: str = text(MAX_STRING_LENGTH)
    description: str = text(MAX_STRING_LENGTH)
    state: str = text(MAX_NAME_LENGTH)
    detail: str = text(MAX_STRING_LENGTH)


@dataclass(frozen=True)
class ServicesInfo:
    """Failed services (systemd) or stopped auto-start services (Windows)."""

    manager: str = text(MAX_NAME_LENGTH)
    failed: tuple[Service, ...] = items(MAX_SERVICES)
    failed_count: int = 0


@dataclass(frozen=True)
class Address:
    family: Family = "other"
    address: str = text(MAX_NAME_LENGTH)
    netmask: str = text(MAX_NAME_LENGTH)


@dataclass(frozen=True)
class Interface:
    """A network interface. Counters are cumulative since boot; ``*_rising`` are the
    errors and drops counted during the collector's short sample."""

    name: str = text(MAX_NAME_LENGTH)
    is_up: bool | None = None
    speed_mbps: int | None = None
    mtu: int | None = None
    addresses: tuple[Address, ...] = items(MAX_ADDRESSES)
    bytes_sent: int | None = None
    bytes_recv: int | None = None
    errors_in: int | None = None
    errors_out: int | None = None
    drops_in: int | None = None
    drops_out: int | None = None
    errors_rising: int | None = None
    drops_rising: int | None = None


@dataclass(frozen=True)
class InterfacesInfo:
    interfaces: tuple[Interface, ...] = items(MAX_INTERFACES)


@dataclass(frozen=True)
class Gateway:
    address: str = text(MAX_NAME_LENGTH)
    interface: str = text(MAX_NAME_LENGTH)
    family: Family = "ipv4"


@dataclass(frozen=True)
class RoutesInfo:
    default_gateways: tuple[Gateway, ...] = items(MAX_GATEWAYS)


@dataclass(frozen=True)
class NameCheck:
    """Resolution of one configured name."""

    name: str = text(MAX_STRING_LENGTH)
    ok: bool = False
    addresses: tuple[str, ...] = items(MAX_ADDRESSES)
    latency_ms: float | None = None
    error: str = text(MAX_STRING_LENGTH)


@dataclass(frozen=True)
class DnsInfo:
    """Configured resolvers (``resolvers_source`` says where they were read) and the
    resolution of the configured names."""

    resolvers: tuple[str, ...] = items(MAX_RESOLVERS)
    resolvers_source: str = ""
    checks: tuple[NameCheck, ...] = items(MAX_NAME_CHECKS)


@dataclass(frozen=True)
class Probe:
    """One TCP connect attempt. ``refused`` still proves the host answered."""

    role: ProbeRole = "target"
    host: str = text(MAX_STRING_LENGTH)
    port: int = 0
    outcome: ProbeOutcome = "error"
    latency_ms: float | None = None
    error: str = text(MAX_STRING_LENGTH)


@dataclass(frozen=True)
class ReachabilityInfo:
    probes: tuple[Probe, ...] = items(MAX_PROBES)


@dataclass(frozen=True)
class Listener:
    protocol: Protocol = "tcp"
    address: str = text(MAX_NAME_LENGTH)
    port: int = 0
    pid: int | None = None
    process: str = text(MAX_NAME_LENGTH)
    user: str = text(MAX_NAME_LENGTH)


@dataclass(frozen=True)
class SocketsInfo:
    """Listening sockets (``listener_count`` counts them before the cap)."""

    listeners: tuple[Listener, ...] = items(MAX_LISTENERS)
    listener_count: int = 0
    established_count: int = 0


@dataclass(frozen=True)
class JournalEntry:
    time: datetime | None = None
    priority: int | None = None
    unit: str = text(MAX_NAME_LENGTH)
    message: str = text(MAX_MESSAGE_LENGTH)


@dataclass(frozen=True)
class JournalInfo:
    """Recent system errors, newest first."""

    source: str = text(MAX_NAME_LENGTH)
    entries: tuple[JournalEntry, ...] = items(MAX_JOURNAL_ENTRIES)


# -- the snapshot --------------------------------------------------------------------

NOT_REPORTED: Section[Any] = Section(status="unavailable", reason="not reported")


@dataclass(frozen=True)
class Snapshot:
    """Everything one diagnostics run saw, in the order the views show it."""

    taken_at: datetime
    schema_version: str = SCHEMA_VERSION
    elapsed_ms: int = 0
    findings: tuple[Finding, ...] = items(MAX_FINDINGS)
    system: Section[SystemInfo] = NOT_REPORTED
    cpu: Section[CpuInfo] = NOT_REPORTED
    memory: Section[MemoryInfo] = NOT_REPORTED
    disks: Section[DisksInfo] = NOT_REPORTED
    services: Section[ServicesInfo] = NOT_REPORTED
    interfaces: Section[InterfacesInfo] = NOT_REPORTED
    routes: Section[RoutesInfo] = NOT_REPORTED
    dns: Section[DnsInfo] = NOT_REPORTED
    reachability: Section[ReachabilityInfo] = NOT_REPORTED
    sockets: Section[SocketsInfo] = NOT_REPORTED
    journal: Section[JournalInfo] = NOT_REPORTED


#: Each section of :class:`Snapshot` and its type, in display order.
_SECTION_TYPES: dict[str, Any] = {
    "system": Section[SystemInfo],
    "cpu": Section[CpuInfo],
    "memory": Section[MemoryInfo],
    "disks": Section[DisksInfo],
    "services": Section[ServicesInfo],
    "interfaces": Section[InterfacesInfo],
    "routes": Section[RoutesInfo],
    "dns": Section[DnsInfo],
    "reachability": Section[ReachabilityInfo],
    "sockets": Section[SocketsInfo],
    "journal": Section[JournalInfo],
}

#: Names of the per-collector sections of :class:`Snapshot`, in display order.
SECTION_NAMES: tuple[str, ...] = tuple(_SECTION_TYPES)


def sections(snapshot: Snapshot) -> list[tuple[str, Section[Any]]]:
    """``(name, section)`` pairs in display order."""
    return [(name, getattr(snapshot, name)) for name in SECTION_NAMES]


def with_sections(snapshot: Snapshot, replaced: Mapping[str, Section[Any]]) -> Snapshot:
    """``snapshot`` with the named sections replaced."""
    unknown = sorted(set(replaced) - set(SECTION_NAMES))
    if unknown:
        raise LocalProtocolError(f"no diagnostics section named {', '.join(unknown)}")
    changes: dict[str, Any] = dict(replaced)
    return dataclasses.replace(snapshot, **changes)


# -- text cleaning ---------------------------------------------------------------------

# -- codec ------------------------------------------------------------------------------

_WHAT = "diagnostics snapshot"


def to_json(snapshot: Snapshot) -> dict[str, Any]:
    """The snapshot as a JSON-ready dict (the wire and storage form)."""
    plain = to_plain(snapshot)
    assert isinstance(plain, dict)
    return plain


def encode(snapshot: Snapshot) -> bytes:
    """Compact UTF-8 JSON; :class:`LocalProtocolError` if over :data:`MAX_ENCODED_SIZE`."""
    data = dumps(to_json(snapshot))
    if len(data) > MAX_ENCODED_SIZE:
        raise LocalProtocolError(_too_big(len(data)))
    return data


def encoded_size(value: Snapshot | Section[Any]) -> int:
    """Bytes of the compact JSON of a snapshot or one section (no limit check)."""
    return len(dumps(to_plain(value)))


def decode(data: bytes | str) -> Snapshot:
    """Parse a received snapshot document; :class:`RemoteProtocolError` if refused."""
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > MAX_ENCODED_SIZE:
        raise RemoteProtocolError(_too_big(len(raw)))
    try:
        value = loads(raw)
    except (ValueError, RecursionError):
        raise RemoteProtocolError(f"{_WHAT} is not valid JSON") from None
    return _from_value(value)


def from_json(value: object) -> Snapshot:
    """Validate and sanitise a snapshot dict received from an agent (or read back).

    Refuses (:class:`RemoteProtocolError`) anything over :data:`MAX_ENCODED_SIZE`
    once encoded, another major schema version, and malformed documents."""
    try:
        size = len(dumps(value))
    except (TypeError, ValueError, RecursionError):
        raise RemoteProtocolError(f"{_WHAT} is not a JSON document") from None
    if size > MAX_ENCODED_SIZE:
        raise RemoteProtocolError(_too_big(size))
    return _from_value(value)


def sanitize(snapshot: Snapshot) -> Snapshot:
    """The snapshot with every cap applied, exactly as a receiver would parse it."""
    try:
        return _from_value(to_json(snapshot))
    except (RemoteProtocolError, ValueError) as exc:
        raise LocalProtocolError(f"built a bad snapshot: {exc}") from None


def sanitize_section(name: str, section: Section[Any]) -> Section[Any]:
    """One section of :class:`Snapshot` with its caps applied.

    Lets a producer check each collector's output on its own, so one bad value
    spoils one section, not the snapshot. :class:`LocalProtocolError` if invalid."""
    if name not in SECTION_NAMES:
        raise LocalProtocolError(f"no diagnostics section named {name!r}")
    try:
        value = from_plain(_SECTION_TYPES[name], to_plain(section), _WHAT, name)
    except RemoteProtocolError as exc:
        raise LocalProtocolError(str(exc)) from None
    assert isinstance(value, Section)
    return value


def _too_big(size: int) -> str:
    return f"{_WHAT} is {size} bytes, over the {MAX_ENCODED_SIZE}-byte limit"


def _from_value(value: object) -> Snapshot:
    if not isinstance(value, dict):
        raise RemoteProtocolError(f"{_WHAT} is not a JSON object")
    version = value.get("schema_version")
    if not isinstance(version, str):
        raise RemoteProtocolError(f"{_WHAT} has no schema_version")
    major = version.split(".", 1)[0]
    if not major.isdigit() or int(major) != SCHEMA_MAJOR:
        raise RemoteProtocolError(
            f"{_WHAT} schema {clean_text(version, 20)!r} is not supported "
            f"(this build reads {SCHEMA_MAJOR}.x)"
        )
    snapshot = from_plain(Snapshot, value, _WHAT, "snapshot")
    assert isinstance(snapshot, Snapshot)
    return snapshot
