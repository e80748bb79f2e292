"""Which destinations a technician's port forward may reach (pure).

The relay's per-customer/per-agent policy arrives with the session offer; the
agent enforces it itself, so even a certificate that permits port forwarding
cannot reach what the policy does not list.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MODES = ("off", "lan", "list")


@dataclass(frozen=True)
class AllowRule:
    """``HOST:PORT`` where HOST is a name, an address or a CIDR network and PORT a
    number or ``*``."""

    host: str
    port: int | None  # None: any port

    @classmethod
    def parse(cls, text: str) -> AllowRule:
        host, sep, port = text.strip().rpartition(":")
        if not sep or not host or not (port == "*" or port.isdigit()):
            raise ValueError(f"forward rule {text!r} should be HOST:PORT or HOST:*")
        number = None if port == "*" else int(port)
        if number is not None and not 0 < number < 65536:
            raise ValueError(f"forward rule {text!r} has an invalid port")
        return cls(host.strip("[]").lower(), number)

    def matches(self, host: str, port: int, addresses: list[IPAddress]) -> bool:
        if self.port is not None and self.port != port:
            return False
        if host.lower() == self.host:
            return True
        try:
            network = ipaddress.ip_network(self.host, strict=False)
        except ValueError:
            return False
        # Every address the name resolves to must be inside the network.
        return bool(addresses) and all(addr in network for addr in addresses)


@dataclass(frozen=True)
class ForwardPolicy:
    mode: str = "off"
    allow: tuple[AllowRule, ...] = ()

    @classmethod
    def from_offer(cls, policy: dict[str, object]) -> ForwardPolicy:
        mode = policy.get("forwarding", "off")
        if mode not in MODES:
            return cls("off")
        raw = policy.get("forward_allow", [])
        rules: list[AllowRule] = []
        if isinstance(raw, list):
            for item in raw:
                try:
                    rules.append(AllowRule.parse(str(item)))
                except ValueError:
                    continue
        return cls(str(mode), tuple(rules))

    def allows(self, host: str, port: int, addresses: list[IPAddress]) -> bool:
        """Whether ``host:port`` (resolved to ``addresses``) may be reached."""
        if self.mode == "off" or not addresses:
            return False
        if self.mode == "lan":
            return all(_is_lan(addr) for addr in addresses)
        return any(rule.matches(host, port, addresses) for rule in self.allow)


def _is_lan(addr: IPAddress) -> bool:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_private or addr.is_loopback or addr.is_link_local
