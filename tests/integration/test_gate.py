"""The pre-auth gate against strangers: no lockout of other identities or other
clients, caps per client address, trusted proxies, and malformed upgrades.

A relay node runs on the test's loop; the clients are raw WebSocket connections,
some bound to 127.0.0.2 so that two loopback addresses play two sources.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import secrets
import socket
import sqlite3
import ssl
import struct
from collections.abc import Mapping
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidMessage, InvalidStatus

from harness import World, timeout
from relay.app import Listen, Relay
from relay.core.proxy_header import V2_SIGNATURE
from shared.errors import ConfigError
from shared.protocol.messages import SUBPROTOCOL, Message, encode

THROTTLED = "too many failed attempts; retry in a minute"
REFUSED = "the relay refused this token; ask an admin for a new one"
AGENT_REFUSED = "authentication failed"
OTHER = "127.0.0.2"  # a second loopback address: another source


def configure(world: World, **settings: Any) -> str:
    """``qp-relay init`` with ``[limits]`` keys set (any TOML value); the admin token."""
    token = world.init_relay()
    toml = world.relay_data / "relay.toml"
    text = toml.read_text()
    for key, value in settings.items():
        text, n = re.subn(rf"(?m)^{key} = [^#\n]*", f"{key} = {json.dumps(value)}  ", text)
        assert n == 1, key
    toml.write_text(text)
    return token


async def dial(
    world: World,
    path: str,
    source: str = "127.0.0.1",
    headers: Mapping[str, str] | None = None,
    preamble: bytes = b"",
) -> ClientConnection:
    """A WebSocket from ``source``; ``preamble`` is sent before the upgrade request."""
    where: dict[str, Any] = {"local_addr": (source, 0)}
    if preamble:
        host, port = world.url.removeprefix("ws://").split(":")
        sock = socket.create_connection((host, int(port)), source_address=(source, 0))
        sock.sendall(preamble)
        where = {"sock": sock}
    return await connect(
        world.url + path,
        subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
        compression=None,
        open_timeout=timeout(10),
        close_timeout=timeout(5),
        additional_headers=dict(headers or {}),
        **where,
    )


async def answer(ws: ClientConnection, message: Message) -> str:
    """Send ``message``; ``ok`` for a welcome, else the refusal's text."""
    try:
        await ws.send(encode(message))
        reply = json.loads(await asyncio.wait_for(ws.recv(), timeout(10)))
    except ConnectionClosed as exc:
        return f"closed {exc.rcvd.code if exc.rcvd else None}"
    if reply["type"] in ("login_ok", "welcome"):
        return "ok"
    return str(reply["body"]["message"])


async def login(
    world: World,
    token: str,
    source: str = "127.0.0.1",
    forwarded: str | None = None,
    preamble: bytes = b"",
) -> str:
    """A technician login: ``ok`` or the relay's reason."""
    headers = {"X-Forwarded-For": forwarded} if forwarded else None
    async with await dial(world, "/v1/console", source, headers, preamble) as ws:
        return await answer(ws, Message("login", {"token": token}))


async def agent_auth(world: World, agent_id: str, source: str = "127.0.0.1") -> str:
    """An agent's ``auth`` with a signature that cannot be right."""
    async with await dial(world, "/v1/agent", source) as ws:
        await ws.recv()  # the challenge
        return await answer(ws, Message("auth", {"agent_id": agent_id, "signature": "AAAA"}))


def audit(world: World, event: str) -> list[tuple[str, dict[str, Any]]]:
    """(actor, detail) of the relay's audit rows of ``event``, oldest first."""
    db = sqlite3.connect(f"file:{world.relay_data / 'relay.db'}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT actor, detail FROM audit WHERE event = ? ORDER BY id", (event,))
        return [(str(actor), json.loads(detail)) for actor, detail in rows.fetchall()]
    finally:
        db.close()


def bad_token() -> str:
    return f"qpt_{secrets.token_urlsafe(32)}"


# -- (a) 50 bad logins from one address do not stop a good token from there ---------------------


async def test_bad_logins_from_an_address_do_not_lock_out_a_good_token(world: World) -> None:
    token = configure(world, auth_failure_delay_ms=5)  # slowed failures, fast test
    node = await Relay.open(world.relay_data)
    try:
        world.url = await node.start(Listen("127.0.0.1", 0))
        # A guesser: a new token every time. It passes the per-address limit (20), so
        # its failures are slowed, but it is never told anything but "refused".
        assert [await login(world, bad_token()) for _ in range(25)] == [REFUSED] * 25
        # A stale token that keeps retrying: refused 20 times, then throttled.
        stale = bad_token()
        assert [await login(world, stale) for _ in range(25)] == [REFUSED] * 20 + [THROTTLED] * 5
        # A revoked agent that keeps retrying throttles itself, and nobody else.
        assert [await agent_auth(world, "agt-revoked") for _ in range(21)][-1] == THROTTLED
        assert await agent_auth(world, "agt-other") == AGENT_REFUSED

        # 71 failures from 127.0.0.1: a good token from there still logs in.
        assert await login(world, token) == "ok"
        assert await login(world, stale, source=OTHER) == REFUSED  # not throttled elsewhere
    finally:
        await node.stop()
    throttled = audit(world, "auth_throttled")
    # Anonymous refusals are counted: one row per address and reason per window.
    assert sum(d["count"] for _, d in throttled) == 6
    assert {(actor, d["peer"]) for actor, d in throttled} == {("anonymous", "127.0.0.1")}
    assert throttled[0][1]["kind"] == "technician"


# -- (b) behind a trusted proxy, client X does not slow client Y ---------------------------------


async def test_behind_a_trusted_proxy_clients_are_throttled_apart(world: World) -> None:
    token = configure(world, trusted_proxies=["127.0.0.1"], auth_failures_per_minute=3)
    node = await Relay.open(world.relay_data)
    try:
        world.url = await node.start(Listen("127.0.0.1", 0))
        stale = bad_token()
        # Client X, through the proxy on 127.0.0.1, retries a stale token.
        x = [await login(world, stale, forwarded="198.51.100.1, 203.0.113.10") for _ in range(4)]
        assert x == [REFUSED] * 3 + [THROTTLED]
        # Client Y, through the same proxy: the same stale token is merely refused,
        # and its own token logs in.
        assert await login(world, stale, forwarded="203.0.113.20") == REFUSED
        assert await login(world, token, forwarded="203.0.113.20") == "ok"

        # 127.0.0.2 is no proxy: its header is ignored, so a new one per attempt
        # does not escape the throttle.
        spoofed = [
            await login(world, stale, source=OTHER, forwarded=f"203.0.113.{100 + i}")
            for i in range(4)
        ]
        assert spoofed == [REFUSED] * 3 + [THROTTLED]
    finally:
        await node.stop()
    # Counted per client address (the forwarded one) and reason.
    refused = [(d["peer"], d["count"]) for _, d in audit(world, "login_refused")]
    assert refused == [("203.0.113.10", 3), ("203.0.113.20", 1), (OTHER, 3)]
    assert [d["peer"] for _, d in audit(world, "auth_throttled")] == ["203.0.113.10", OTHER]


# -- (c) 600 pre-login connections from one address leave others logging in ----------------------


async def hold(world: World, gate: asyncio.Semaphore) -> tuple[ClientConnection | None, int]:
    """One agent link that never authenticates: (the open link, 0) once the relay
    challenged it, (None, close code) when it was turned away."""
    async with gate:
        ws = await dial(world, "/v1/agent")
    try:
        await asyncio.wait_for(ws.recv(), timeout(30))
    except ConnectionClosed as exc:
        return None, exc.rcvd.code if exc.rcvd else 0
    return ws, 0


async def test_a_flood_from_one_address_leaves_logins_from_another(world: World) -> None:
    # The flood must still hold its slots when the login comes.
    token = configure(world, auth_timeout=120)
    node = await Relay.open(world.relay_data)
    held: list[ClientConnection] = []
    try:
        world.url = await node.start(Listen("127.0.0.1", 0))
        handshakes = asyncio.Semaphore(64)
        results = await asyncio.gather(*(hold(world, handshakes) for _ in range(600)))
        held = [ws for ws, _ in results if ws is not None]
        assert await login(world, token, source=OTHER) == "ok"
        assert len(held) == 64  # limits.max_preauth_per_address
        assert [code for ws, code in results if ws is None] == [1013] * 536
    finally:
        await asyncio.gather(*(ws.close() for ws in held))
        await node.stop()
    busy = audit(world, "preauth_busy")
    assert len(busy) == 1 and busy[0][1]["count"] == 536  # counted, not 536 rows
    assert {(d["peer"], d["scope"]) for _, d in busy} == {("127.0.0.1", "address")}


# -- (d) malformed upgrades get 400, not 500 ------------------------------------------------------


async def status_of(world: World, path: str, extra: list[str]) -> str:
    """The status line the relay answers a hand-written upgrade request with."""
    host, port = world.url.removeprefix("ws://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        f"Sec-WebSocket-Protocol: {SUBPROTOCOL}",
        *extra,
    ]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    try:
        status = await asyncio.wait_for(reader.readline(), timeout(10))
        return status.decode().strip()
    finally:
        writer.close()


async def test_duplicate_headers_are_a_bad_request(world: World) -> None:
    configure(world, allowed_origins=["https://console.example"])
    node = await Relay.open(world.relay_data)
    try:
        world.url = await node.start(Listen("127.0.0.1", 0))
        origin = "Origin: https://console.example"
        assert await status_of(world, "/v1/console", [origin, origin]) == "HTTP/1.1 400 Bad Request"
        assert await status_of(world, "/v1/console", [origin]) == "HTTP/1.1 101 Switching Protocols"
        bearer = "Authorization: Bearer x"
        tunnel = "/v1/tunnel/ses-0"
        assert await status_of(world, tunnel, [bearer, bearer]) == "HTTP/1.1 400 Bad Request"
    finally:
        await node.stop()


# -- PROXY protocol from a trusted layer-4 proxy ---------------------------------------------------


def proxy_v1(client: str) -> bytes:
    return f"PROXY TCP4 {client} 127.0.0.1 40000 443\r\n".encode()


def proxy_v2(client: str) -> bytes:
    body = ipaddress.IPv4Address(client).packed + bytes(4) + struct.pack("!HH", 40000, 443)
    return V2_SIGNATURE + bytes([0x21, 0x11]) + struct.pack("!H", len(body)) + body


async def test_a_proxy_protocol_header_names_the_client(world: World) -> None:
    token = configure(
        world, trusted_proxies=["127.0.0.1"], proxy_protocol=True, auth_failures_per_minute=3
    )
    node = await Relay.open(world.relay_data)
    try:
        world.url = await node.start(Listen("127.0.0.1", 0))
        stale = bad_token()
        x = [await login(world, stale, preamble=proxy_v1("203.0.113.10")) for _ in range(4)]
        assert x == [REFUSED] * 3 + [THROTTLED]
        # Client Y, in a v2 header: the same stale token is merely refused.
        assert await login(world, stale, preamble=proxy_v2("203.0.113.20")) == REFUSED
        assert await login(world, token, preamble=proxy_v2("203.0.113.20")) == "ok"
        # A peer that is no proxy is served as it is, and cannot send a header.
        assert await login(world, token, source=OTHER) == "ok"
        with pytest.raises(InvalidMessage):
            await login(world, token, source=OTHER, preamble=proxy_v1("203.0.113.30"))
        # The proxy itself must send one: without, its connection is dropped.
        with pytest.raises((InvalidMessage, InvalidStatus)):
            await login(world, token, forwarded="203.0.113.40")
    finally:
        await node.stop()
    refused = [(d["peer"], d["count"]) for _, d in audit(world, "login_refused")]
    assert refused == [("203.0.113.10", 3), ("203.0.113.20", 1)]
    assert [d["peer"] for _, d in audit(world, "auth_throttled")] == ["203.0.113.10"]


async def test_proxy_protocol_on_a_tls_listener_is_refused_with_one_line(world: World) -> None:
    configure(world, trusted_proxies=["127.0.0.1"], proxy_protocol=True)
    node = await Relay.open(world.relay_data)
    try:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        with pytest.raises(ConfigError, match="proxy_protocol needs a plain listener"):
            await node.start(Listen("127.0.0.1", 0, tls))
    finally:
        await node.stop()
