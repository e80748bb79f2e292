"""Network configuration collectors: interfaces (addresses, link, speed, MTU,
counters), default gateways, and the DNS resolvers the machine is set to use."""

from __future__ import annotations

import ipaddress
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

from agent.diagnostics.collector import Unavailable, count, run_tool
from agent.diagnostics.options import DiagnosticsOptions
from shared.clock import Clock
from shared.diagnostics import (
    Address,
    Family,
    Gateway,
    Interface,
    InterfacesInfo,
    RoutesInfo,
)

PROC_ROUTE = Path("/proc/net/route")
PROC_IPV6_ROUTE = Path("/proc/net/ipv6_route")
RESOLV_CONF = Path("/etc/resolv.conf")
#: systemd-resolved's view of the upstream servers behind its 127.0.0.53 stub.
RESOLVED_UPSTREAM = Path("/run/systemd/resolve/resolv.conf")

_RTF_UP = 0x0001
_RTF_GATEWAY = 0x0002


# -- interfaces --------------------------------------------------------------------------


def collect_interfaces(options: DiagnosticsOptions, clock: Clock) -> InterfacesInfo:
    """Every interface with its addresses, link state and counters.

    Counters are read twice, ``options.sample`` apart, so errors that are rising
    *now* show as ``errors_rising``/``drops_rising`` apart from old totals."""
    before = psutil.net_io_counters(pernic=True)
    if options.sample:
        time.sleep(options.sample)
    after = psutil.net_io_counters(pernic=True)
    addresses = psutil.net_if_addrs()
    stats = psutil.net_if_stats()
    names = sorted(set(addresses) | set(stats))
    return InterfacesInfo(
        interfaces=tuple(
            _interface(name, addresses.get(name, []), stats.get(name), before, after)
            for name in names
        )
    )


def _interface(name: str, addrs: list[Any], stat: Any, before: Any, after: Any) -> Interface:
    io = after.get(name)
    old = before.get(name)
    return Interface(
        name=name,
        is_up=bool(stat.isup) if stat is not None else None,
        speed_mbps=(count(stat.speed) or None) if stat is not None else None,
        mtu=(count(stat.mtu) or None) if stat is not None else None,
        addresses=tuple(_address(a) for a in addrs),
        bytes_sent=count(io.bytes_sent) if io else None,
        bytes_recv=count(io.bytes_recv) if io else None,
        errors_in=count(io.errin) if io else None,
        errors_out=count(io.errout) if io else None,
        drops_in=count(io.dropin) if io else None,
        drops_out=count(io.dropout) if io else None,
        errors_rising=_rise(old, io, ("errin", "errout")),
        drops_rising=_rise(old, io, ("dropin", "dropout")),
    )


def _rise(old: Any, new: Any, fields: tuple[str, ...]) -> int | None:
    if old is None or new is None:
        return None
    return max(0, sum(int(getattr(new, f)) - int(getattr(old, f)) for f in fields))


def _address(addr: Any) -> Address:
    family: Family = "other"
    if addr.family == socket.AF_INET:
        family = "ipv4"
    elif addr.family == socket.AF_INET6:
        family = "ipv6"
    elif addr.family == getattr(psutil, "AF_LINK", None):
        family = "mac"
    return Address(family=family, address=str(addr.address), netmask=str(addr.netmask or ""))


# -- routes ------------------------------------------------------------------------------


def collect_routes(options: DiagnosticsOptions, clock: Clock) -> RoutesInfo:
    """Default gateways (IPv4 and IPv6)."""
    return RoutesInfo(default_gateways=tuple(default_gateways(options.tool_timeout)))


def default_gateways(tool_timeout: float) -> list[Gateway]:
    """The machine's default gateways, from the kernel tables or the route tool."""
    if sys.platform.startswith("linux"):
        try:
            v4 = PROC_ROUTE.read_text(encoding="ascii", errors="replace")
        except OSError as exc:
            raise Unavailable(f"cannot read {PROC_ROUTE}: {exc.strerror}") from None
        try:
            v6 = PROC_IPV6_ROUTE.read_text(encoding="ascii", errors="replace")
        except OSError:
            v6 = ""  # IPv6 disabled
        return parse_proc_route(v4) + parse_proc_ipv6_route(v6)
    if sys.platform == "darwin":
        result = run_tool(["netstat", "-rn"], tool_timeout)
        return parse_netstat_defaults(result.stdout)
    raise Unavailable(f"default gateway lookup is not implemented on {sys.platform}")


def parse_proc_route(text: str) -> list[Gateway]:
    """Default routes in ``/proc/net/route`` (addresses in hex, host byte order)."""
    gateways = []
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 8:
            continue
        iface, destination, gateway, flags, mask = parts[0], parts[1], parts[2], parts[3], parts[7]
        try:
            is_default = int(destination, 16) == 0 and int(mask, 16) == 0
            wanted = int(flags, 16) & (_RTF_UP | _RTF_GATEWAY) == _RTF_UP | _RTF_GATEWAY
            address = socket.inet_ntoa(struct.pack("=I", int(gateway, 16)))
        except (ValueError, struct.error):
            continue
        if is_default and wanted:
            gateways.append(Gateway(address=address, interface=iface, family="ipv4"))
    return gateways


def parse_proc_ipv6_route(text: str) -> list[Gateway]:
    """Default routes (``::/0`` with a next hop) in ``/proc/net/ipv6_route``."""
    gateways = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 10:
            continue
        destination, prefix, next_hop, iface = parts[0], parts[1], parts[4], parts[9]
        try:
            is_default = int(destination, 16) == 0 and int(prefix, 16) == 0
            hop = ipaddress.IPv6Address(bytes.fromhex(next_hop))
        except ValueError:
            continue
        if is_default and not hop.is_unspecified and iface != "lo":
            gateways.append(Gateway(address=str(hop), interface=iface, family="ipv6"))
    return gateways


def parse_netstat_defaults(text: str) -> list[Gateway]:
    """``default`` rows of BSD ``netstat -rn`` (Destination Gateway Flags … Netif)."""
    gateways = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 4 or parts[0] != "default":
            continue
        hop = parts[1].split("%", 1)[0]
        try:
            parsed = ipaddress.ip_address(hop)
        except ValueError:
            continue  # "link#4": an interface route, no next hop
        family: Family = "ipv6" if parsed.version == 6 else "ipv4"
        gateways.append(Gateway(address=hop, interface=parts[-1], family=family))
    return gateways


# -- DNS configuration ---------------------------------------------------------------------


def configured_resolvers() -> tuple[list[str], str]:
    """The DNS servers this machine asks, and where that was read from."""
    if sys.platform == "win32":
        return [], "resolver list not read on Windows"
    try:
        servers = parse_resolv_conf(RESOLV_CONF.read_text(errors="replace"))
    except OSError as exc:
        return [], f"cannot read {RESOLV_CONF}: {exc.strerror}"
    source = str(RESOLV_CONF)
    if any(ipaddress.ip_address(s).is_loopback for s in servers):
        try:
            upstream = parse_resolv_conf(RESOLVED_UPSTREAM.read_text(errors="replace"))
        except OSError:
            upstream = []
        if upstream:
            servers += [s for s in upstream if s not in servers]
            source += f" + {RESOLVED_UPSTREAM}"
    return servers, source


def parse_resolv_conf(text: str) -> list[str]:
    """``nameserver`` addresses in a resolv.conf, in order, without duplicates."""
    servers: list[str] = []
    for line in text.splitlines():
        parts = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            try:
                address = str(ipaddress.ip_address(parts[1].split("%", 1)[0]))
            except ValueError:
                continue
            if address not in servers:
                servers.append(address)
    return servers
