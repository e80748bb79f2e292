"""PROXY protocol headers (v1 text, v2 binary) from a layer-4 proxy."""

from __future__ import annotations

import ipaddress
import struct

import pytest

from relay.core.proxy_header import (
    V2_SIGNATURE,
    ProxyHeader,
    ProxyHeaderError,
    parse_proxy_header,
)


def v2(command: int, family: int, body: bytes) -> bytes:
    return (
        V2_SIGNATURE
        + bytes([0x20 | command, family << 4 | 1])
        + struct.pack("!H", len(body))
        + body
    )


def test_v1_names_the_client_and_its_length() -> None:
    line = b"PROXY TCP4 203.0.113.9 10.0.0.1 5555 443\r\n"
    assert parse_proxy_header(line + b"GET / HTTP/1.1\r\n") == ProxyHeader("203.0.113.9", len(line))
    line6 = b"PROXY TCP6 2001:db8::9 2001:db8::1 5555 443\r\n"
    assert parse_proxy_header(line6) == ProxyHeader("2001:db8::9", len(line6))
    assert parse_proxy_header(b"PROXY UNKNOWN\r\n") == ProxyHeader(None, 15)


def test_v2_names_the_client_and_its_length() -> None:
    body4 = ipaddress.IPv4Address("203.0.113.9").packed + bytes(4) + bytes(4)
    head = v2(1, 1, body4)
    assert parse_proxy_header(head + b"GET") == ProxyHeader("203.0.113.9", len(head))
    body6 = ipaddress.IPv6Address("2001:db8::9").packed + bytes(16) + bytes(4)
    assert parse_proxy_header(v2(1, 2, body6)) == ProxyHeader("2001:db8::9", 52)
    assert parse_proxy_header(v2(0, 0, b"")) == ProxyHeader(None, 16)  # LOCAL: a health check


def test_a_header_split_over_reads_asks_for_more() -> None:
    line = b"PROXY TCP4 203.0.113.9 10.0.0.1 5555 443\r\n"
    head = v2(1, 1, bytes(12))
    for whole in (line, head):
        for cut in range(len(whole)):
            assert parse_proxy_header(whole[:cut]) is None


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\n",
        b"PROXY TCP4 203.0.113.9\r\n",
        b"PROXY TCP4 2001:db8::9 10.0.0.1 1 2\r\n",
        b"PROXY TCP4 203.0.113.9 10.0.0.1 5555 99999\r\n",
        b"PROXY TCP4 " + b"9" * 200,
        b"\r\n\r\n\x00\r\nQUIX\n" + bytes(8),
        V2_SIGNATURE + bytes([0x12, 0x11, 0, 12]) + bytes(12),  # version 1 in a v2 header
        V2_SIGNATURE + bytes([0x21, 0x11, 0xFF, 0xFF]),  # far too long
        V2_SIGNATURE + bytes([0x21, 0x11, 0, 4]) + bytes(4),  # too short for IPv4
    ],
)
def test_anything_else_is_refused(data: bytes) -> None:
    with pytest.raises(ProxyHeaderError):
        parse_proxy_header(data)
