"""Toolkit acceptance 3: ``qp forward -L`` into the client's network, and its limits.

The "client's network" is an HTTP server this test runs on 127.0.0.1 (port 0),
reached through an agent of its own whose policy lists exactly that port. A
forward the policy forbids is refused twice over: by the session certificate the
relay issues (forwarding off → no port-forwarding permission), and by the agent
itself even for a hand-made certificate that permits everything.
"""

from __future__ import annotations

import re
import signal
import socket
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import asyncssh
import pytest

from harness import Proc, timeout
from shared.keys import generate_key
from tests.integration.conftest import Office
from tests.integration.toolkit_helpers import (
    IsolatedAgent,
    Web,
    agent_events,
    craft_certificate,
    isolated_agent,
    open_session,
    profile_of,
    set_policy,
    spawn_qp,
    ssh_connect,
    start_web,
    wait_session_ended,
)


@dataclass(frozen=True)
class Network:
    office: Office
    agent: IsolatedAgent
    allowed: Web  # listed in the policy
    other: Web  # reachable from the agent, but not listed


@pytest.fixture(scope="module")
def network(office: Office) -> Iterator[Network]:
    allowed, other = start_web(), start_web()
    try:
        agent = isolated_agent(office.world, "Acme", "fwd-pc")
        yield Network(office, agent, allowed, other)
    finally:
        for web in (allowed, other):
            web.server.shutdown()
            web.server.server_close()


def allow_only(net: Network, web: Web) -> None:
    policy = set_policy(
        net.office.world,
        net.agent.agent_id,
        "--forwarding",
        "list",
        "--allow",
        f"127.0.0.1:{web.port}",
    )
    assert policy["forwarding"] == "list"
    assert policy["forward_allow"] == [f"127.0.0.1:{web.port}"]


FORWARDING = (
    r"^forwarding 127\.0\.0\.1:(\d+) → 127\.0\.0\.1:{port} via fwd-pc \(session (ses-\w+)\)$"
)


def start_forward(net: Network, web: Web) -> tuple[Proc, int, str]:
    """``qp forward fwd-pc -L 0:127.0.0.1:PORT``; the bound local port and session."""
    qp = spawn_qp(net.office.world, "forward", "fwd-pc", "-L", f"0:127.0.0.1:{web.port}")
    line = qp.wait_line(FORWARDING.format(port=web.port))
    found = re.search(FORWARDING.format(port=web.port), line)
    assert found, line
    qp.wait_line(r"press Ctrl\+C")
    return qp, int(found.group(1)), found.group(2)


def interrupt(qp: Proc) -> None:
    qp.signal(signal.SIGINT)
    assert qp.wait() == 130  # Ctrl+C, as run_main promises
    assert "Traceback" not in qp.text()


def test_forward_reaches_a_web_server_behind_the_agent(network: Network) -> None:
    net, web = network, network.allowed
    allow_only(net, web)
    qp, local_port, sid = start_forward(net, web)
    try:
        assert local_port != web.port
        url = f"http://127.0.0.1:{local_port}/through-the-tunnel"
        with urllib.request.urlopen(url, timeout=timeout(15)) as reply:
            assert reply.status == 200
            assert reply.read() == web.body
        assert web.paths == ["/through-the-tunnel"]
        qp.wait_line(rf"^connection 127\.0\.0\.1:\d+ → 127\.0\.0\.1:{web.port}$")
        qp.wait_line(rf"^closed 127\.0\.0\.1:\d+ → 127\.0\.0\.1:{web.port} \(\d+ B out, \d+ B in\)")
    finally:
        interrupt(qp)
    row = wait_session_ended(net.office.world, sid)
    assert row["kind"] == "forward" and row["end_reason"] == "completed"
    (event,) = [e for e in agent_events(net.agent.data, "forward") if e["session"] == sid]
    assert (event["host"], event["port"], event["address"]) == ("127.0.0.1", web.port, "127.0.0.1")


def test_forwarding_off_the_certificate_refuses_the_forward(network: Network) -> None:
    net, web = network, network.allowed
    policy = set_policy(net.office.world, net.agent.agent_id, "--forwarding", "off")
    assert policy["forwarding"] == "off"
    served = len(web.paths)
    qp, local_port, sid = start_forward(net, web)
    try:
        with socket.create_connection(("127.0.0.1", local_port), timeout=timeout(15)) as sock:
            sock.sendall(b"GET /must-not-arrive HTTP/1.0\r\n\r\n")
            assert sock.recv(4096) == b""  # closed without a byte from the server
        qp.wait_line(
            rf"^refused 127\.0\.0\.1:\d+ → 127\.0\.0\.1:{web.port}: Port forwarding not permitted$"
        )
    finally:
        interrupt(qp)
    assert len(web.paths) == served
    # The SSH layer refused (the certificate carries no permission): the agent's
    # policy code was never even asked.
    assert not [
        e
        for e in agent_events(net.agent.data)
        if e["session"] == sid and e["event"] in ("forward", "forward_refused")
    ]


@pytest.mark.parametrize("mode", ["list", "off"])
async def test_the_agent_refuses_what_policy_forbids_even_with_a_permissive_cert(
    network: Network, mode: str
) -> None:
    net = network
    w = net.office.world
    if mode == "list":
        allow_only(net, net.allowed)
    else:
        set_policy(w, net.agent.agent_id, "--forwarding", "off")
    served = (len(net.allowed.paths), len(net.other.paths))
    key = generate_key()
    info = await open_session(profile_of(w, "alice"), "fwd-pc", "forward", key)
    sid = info["session_id"]
    cert = craft_certificate(w, key, sid, permit_port_forwarding=True)

    async with await ssh_connect(info, key, cert) as conn:
        with pytest.raises(asyncssh.ChannelOpenError) as refused:
            await conn.open_connection("127.0.0.1", net.other.port)
        assert refused.value.code == asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED
        assert "not allowed by this customer's forwarding policy" in refused.value.reason
        if mode == "list":
            # Control, same connection: the listed destination is reachable.
            reader, writer = await conn.open_connection("127.0.0.1", net.allowed.port)
            writer.write(b"GET /listed HTTP/1.0\r\n\r\n")
            writer.write_eof()
            reply = await reader.read()
            assert reply.endswith(net.allowed.body), reply
        else:
            with pytest.raises(asyncssh.ChannelOpenError):
                await conn.open_connection("127.0.0.1", net.allowed.port)

    assert len(net.other.paths) == served[1]  # the unlisted server saw nothing
    mine = [e for e in agent_events(net.agent.data) if e["session"] == sid]
    refusals = [(e["host"], e["port"]) for e in mine if e["event"] == "forward_refused"]
    forwards = [(e["host"], e["port"]) for e in mine if e["event"] == "forward"]
    if mode == "list":
        assert refusals == [("127.0.0.1", net.other.port)]
        assert forwards == [("127.0.0.1", net.allowed.port)]
        assert net.allowed.paths[served[0] :] == ["/listed"]
    else:
        assert refusals == [("127.0.0.1", net.other.port), ("127.0.0.1", net.allowed.port)]
        assert forwards == []
        assert len(net.allowed.paths) == served[0]
