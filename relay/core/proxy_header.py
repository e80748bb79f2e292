"""The PROXY protocol header (HAProxy's, versions 1 and 2) a layer-4 proxy sends
before the client's bytes, naming the client's address.

Only headers from ``limits.trusted_proxies`` are read, and only when
``limits.proxy_protocol`` is on: then such a peer must send one.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

V1_PREFIX = b"PROXY "
V1_MAX = 107  # the longest v1 line, CRLF included (the specification's figure)
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_FIXED = 16  # signature, version and command, family, length
#: Bytes of TLVs and addresses accepted after the fixed part of a v2 header.
V2_MAX_BODY = 1024


class ProxyHeaderError(ValueError):
    """The bytes are no valid PROXY header."""


@dataclass(frozen=True)
class ProxyHeader:
    """A complete header: the client's address (None: the proxy speaks for itself,
    e.g. a health check) and the header's length in bytes."""

    source: str | None
    length: int


def parse_proxy_header(data: bytes) -> ProxyHeader | None:
    """The header at the start of ``data``; None if more bytes are needed;
    ProxyHeaderError if it is not one."""
    if data[:12] == V2_SIGNATURE[: len(data[:12])] and data[:1] == b"\r":
        return _v2(data)
    if data[:6] == V1_PREFIX[: len(data[:6])]:
        return _v1(data)
    raise ProxyHeaderError("no PROXY protocol header")


def _v1(data: bytes) -> ProxyHeader | None:
    end = data.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        if len(data) >= V1_MAX:
            raise ProxyHeaderError("PROXY v1 line too long")
        return None
    parts = data[:end].decode("ascii", errors="replace").split(" ")
    if len(parts) >= 2 and parts[1] == "UNKNOWN":
        return ProxyHeader(None, end + 2)
    if len(parts) != 6 or parts[1] not in ("TCP4", "TCP6"):
        raise ProxyHeaderError("malformed PROXY v1 line")
    try:
        source = ipaddress.ip_address(parts[2])
        ipaddress.ip_address(parts[3])
        ports = [int(p) for p in parts[4:]]
    except ValueError:
        raise ProxyHeaderError("malformed PROXY v1 addresses") from None
    if source.version != (4 if parts[1] == "TCP4" else 6) or not all(
        0 <= p <= 65535 for p in ports
    ):
        raise ProxyHeaderError("malformed PROXY v1 addresses")
    return ProxyHeader(str(source), end + 2)


def _v2(data: bytes) -> ProxyHeader | None:
    if len(data) < V2_FIXED:
        return None
    if data[:12] != V2_SIGNATURE:
        raise ProxyHeaderError("bad PROXY v2 signature")
    version, command = data[12] >> 4, data[12] & 0x0F
    family = data[13] >> 4
    (size,) = struct.unpack("!H", data[14:16])
    if version != 2 or command > 1 or size > V2_MAX_BODY:
        raise ProxyHeaderError("unsupported PROXY v2 header")
    if len(data) < V2_FIXED + size:
        return None
    body = data[V2_FIXED : V2_FIXED + size]
    length = V2_FIXED + size
    if command == 0:  # LOCAL: the proxy's own connection
        return ProxyHeader(None, length)
    if family == 1 and size >= 12:
        return ProxyHeader(str(ipaddress.IPv4Address(body[:4])), length)
    if family == 2 and size >= 36:
        return ProxyHeader(str(ipaddress.IPv6Address(body[:16])), length)
    if family in (0, 3):  # unspecified, unix: no client address to take
        return ProxyHeader(None, length)
    raise ProxyHeaderError("malformed PROXY v2 addresses")
