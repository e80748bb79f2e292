"""The client's address, as throttles, pre-auth caps, audit rows and log lines use it.

Behind a TLS-terminating proxy every TCP peer is the proxy. When the peer is one of
the ``limits.trusted_proxies`` (addresses or CIDR blocks), the client is the
right-most ``X-Forwarded-For`` hop that is not itself a trusted proxy: each trusted
proxy appends the address it saw, so hops to the left of the first untrusted one
were written by the client and prove nothing. From any other peer the header is
ignored, so a stranger cannot pick the address it is counted under.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: IPv6 sources are grouped by /64 for caps and per-address counts: one host is
#: usually given a whole /64, and would otherwise have 2**64 addresses to rotate.
IPV6_SOURCE_PREFIX = 64


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """``entries`` as networks; ValueError naming the first one that is not an
    address or a CIDR block."""
    networks: list[Network] = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an address or CIDR block") from None
    return tuple(networks)


def parse_address(text: str) -> Address | None:
    """An address as it appears in a socket name or a forwarded hop (``1.2.3.4``,
    ``1.2.3.4:80``, ``::1``, ``[::1]:80``); None if it is none of these."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # IPv4 with a port
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def source_key(address: str) -> str:
    """The key one source is counted under: the address, or its /64 for IPv6."""
    parsed = parse_address(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        net = ipaddress.IPv6Network((parsed, IPV6_SOURCE_PREFIX), strict=False)
        return str(net)
    return address


class ClientAddresses:
    """Resolves the client's address from the TCP peer and forwarded headers."""

    def __init__(self, trusted_proxies: Sequence[str]) -> None:
        self.trusted = parse_networks(trusted_proxies)

    def is_trusted(self, address: Address) -> bool:
        """Whether ``address`` is one of the trusted proxies."""
        return any(address in net for net in self.trusted)

    def resolve(self, peer: str, forwarded_for: Sequence[str]) -> str:
        """The client's address. ``peer`` is the TCP peer; ``forwarded_for`` every
        ``X-Forwarded-For`` header value in order (a header may hold many hops)."""
        address = parse_address(peer)
        if address is None:
            return peer
        if not self.trusted or not self.is_trusted(address):
            return str(address)
        hops = [hop for value in forwarded_for for hop in value.split(",")]
        client = address
        for hop in reversed(hops):
            parsed = parse_address(hop)
            if parsed is None:
                # A trusted proxy wrote something that is no address (a misconfigured
                # proxy, a unix socket): count the client as the nearest trusted hop.
                break
            client = parsed
            if not self.is_trusted(parsed):
                break
        return str(client)
