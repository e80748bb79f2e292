"""How the real ``qp-agent`` reports a relay that refuses it or closes its link.

A scripted stand-in for the relay's ``/v1/agent`` endpoint (real websockets on
127.0.0.1, port 0) refuses or closes in each way a relay may: an ``error`` message
then a close, an ``error`` before it even read the agent's hello, or a bare close
frame with a code and a reason. ``qp-agent support`` must say the relay's reason in
one line and exit non-zero; ``qp-agent run`` must log every close code and reason.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.typing import Subprotocol

from agent.files import AgentFiles
from harness import BIN, Proc, timeout
from shared.keys import (
    certificate_text,
    generate_key,
    parse_public_key,
    public_text,
    save_private_key,
)
from shared.protocol.messages import SUBPROTOCOL, Message, encode, error_message
from tests.integration.toolkit_helpers import one_line

THROTTLED = "too many failed attempts; retry in a minute"
AGENT_ID = "agt-00000000c105"
CA = generate_key()

Script = Callable[[ServerConnection], Awaitable[None]]


async def challenge(ws: ServerConnection) -> dict[str, str]:
    """Open the link as the relay does; the agent's hello body."""
    await ws.send(encode(Message("challenge", {"nonce": "n0nce", "relay_id": "fake-relay"})))
    hello: dict[str, str] = json.loads(await ws.recv())["body"]
    return hello


def refuse(code: int, reason: str, *, error: bool, read_hello: bool = True) -> Script:
    """Challenge, then (optionally) an ``error`` message and a close with ``code``."""

    async def script(ws: ServerConnection) -> None:
        if read_hello:
            await challenge(ws)
        else:  # the refusal is sent before the agent's hello is read
            await ws.send(encode(Message("challenge", {"nonce": "n0nce", "relay_id": "r"})))
        if error:
            await ws.send(encode(error_message("unavailable", reason)))
        await ws.close(code, reason)

    return script


def accept_then_close(code: int, reason: str) -> Script:
    """Welcome the agent (support or enrolled), then close the link with ``code``."""

    async def script(ws: ServerConnection) -> None:
        hello = await challenge(ws)
        if "code" in hello:  # qp-agent support: certify its throw-away host key
            cert = CA.generate_host_certificate(
                parse_public_key(hello["host_key"]), "support", principals=[AGENT_ID]
            )
            body = {
                "agent_id": AGENT_ID,
                "name": hello["name"],
                "host_certificate": certificate_text(cert),
                "user_ca": public_text(CA),
                "host_ca": public_text(CA),
                "customer": "Acme",
            }
            await ws.send(encode(Message("support_ok", body)))
        else:
            await ws.send(encode(Message("welcome", {"agent_id": AGENT_ID, "name": "fake-pc"})))
        await ws.close(code, reason)

    return script


@pytest.fixture
async def relay() -> AsyncIterator[tuple[str, list[Script]]]:
    """A fake relay URL and the scripts its next links will run, in order."""
    scripts: list[Script] = []

    async def handler(ws: ServerConnection) -> None:
        script = scripts.pop(0) if scripts else refuse(1013, "no more scripts", error=False)
        await script(ws)

    async with serve(
        handler, "127.0.0.1", 0, subprotocols=[Subprotocol(SUBPROTOCOL)], compression=None
    ) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}", scripts


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


async def support(url: str) -> subprocess.CompletedProcess[bytes]:
    """``qp-agent support`` to the fake relay, run to its end (Ctrl+C never comes)."""
    argv = [str(BIN / "qp-agent"), "support", "--relay", url, "--code", "ABCD-EFGH-JKLM"]
    argv.append("--no-gateway-probe")  # loopback only
    return await asyncio.to_thread(
        subprocess.run,
        argv,
        env=env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout(30),
    )


@pytest.mark.parametrize(
    ("script", "shown"),
    [
        (refuse(1008, THROTTLED, error=True), THROTTLED),
        (refuse(1008, THROTTLED, error=True, read_hello=False), THROTTLED),
        (refuse(1008, THROTTLED, error=False), THROTTLED),
        (refuse(1013, "busy, retry later", error=False), "busy, retry later"),
        (refuse(1000, "", error=False), "the relay closed the link (code 1000)"),
    ],
    ids=[
        "error-then-close",
        "error-before-hello",
        "policy-close-only",
        "try-again-close-only",
        "normal-close-before-welcome",
    ],
)
async def test_a_refused_support_link_shows_the_relays_reason_and_fails(
    relay: tuple[str, list[Script]], script: Script, shown: str
) -> None:
    url, scripts = relay
    scripts.append(script)
    done = await support(url)
    assert done.returncode == 1, done.stderr
    assert one_line(done.stderr) == f"qp-agent: {shown}"
    assert done.stdout == b""


@pytest.mark.parametrize(
    ("code", "reason", "status", "last_line"),
    [
        (1008, "agent revoked", 1, "qp-agent: agent revoked"),
        (1001, "relay shutting down", 1, "qp-agent: relay shutting down"),
        (1000, "", 0, "[qp] support ended; nothing was left on this machine"),
    ],
    ids=["policy-close", "going-away", "normal-close"],
)
async def test_a_support_link_closed_by_the_relay_fails_unless_closed_normally(
    relay: tuple[str, list[Script]], code: int, reason: str, status: int, last_line: str
) -> None:
    url, scripts = relay
    scripts.append(accept_then_close(code, reason))
    done = await support(url)
    assert done.returncode == status, done.stderr
    lines = done.stderr.decode().splitlines()
    assert lines[0].startswith(f"[qp] connected for Acme as {AGENT_ID}; waiting"), lines
    assert lines[1:] == [last_line]


def enrolled(root: Path, url: str) -> Path:
    """An agent data directory as ``qp-agent enroll`` leaves it, for the fake relay."""
    files = AgentFiles(root)
    files.prepare()
    host = generate_key()
    save_private_key(files.identity, generate_key())
    save_private_key(files.host_key, host)
    cert = CA.generate_host_certificate(host, "agent", principals=[AGENT_ID])
    files.host_cert.write_text(certificate_text(cert) + "\n")
    files.user_ca.write_text(public_text(CA) + "\n")
    files.host_ca.write_text(public_text(CA) + "\n")
    files.save_config(
        {
            "relay_url": url,
            "agent_id": AGENT_ID,
            "name": "fake-pc",
            "diagnostics": {"probe_gateway": False},  # loopback only
        }
    )
    return root


async def test_run_logs_every_close_code_and_reason(
    relay: tuple[str, list[Script]], tmp_path: Path
) -> None:
    url, scripts = relay
    scripts += [
        accept_then_close(1000, "relay restarting"),
        refuse(1013, "busy, retry later", error=False),
        refuse(1008, THROTTLED, error=True),
        accept_then_close(1008, "agent revoked"),
    ]
    data = enrolled(tmp_path / "agent", url)
    agent = Proc([str(BIN / "qp-agent"), "run", "--data", str(data)], env())
    try:
        for pattern in (
            r"INFO qp\.agent: link to relay closed \[close code 1000, reason 'relay restarting'\]$",
            r"WARNING qp\.agent: link to relay lost: busy, retry later "
            r"\[close code 1013, reason 'busy, retry later'\]$",
            rf"WARNING qp\.agent: link to relay lost: {THROTTLED} "
            rf"\[close code 1008, reason '{THROTTLED}'\]$",
            r"ERROR qp\.agent: relay refused this agent: agent revoked \(revoked\? enroll again\) "
            r"\[close code 1008, reason 'agent revoked'\]$",
        ):
            await asyncio.to_thread(agent.wait_line, pattern)
    finally:
        await asyncio.to_thread(agent.stop)


@pytest.mark.parametrize(
    ("script", "shown"),
    [
        (refuse(1008, "enrollment token is invalid, expired or used up", error=True),
         "enrollment token is invalid, expired or used up"),
        (refuse(1013, "busy, retry later", error=False), "busy, retry later"),
        (refuse(1008, THROTTLED, error=False), THROTTLED),
    ],
    ids=["error-then-close", "try-again-close-only", "policy-close-only"],
)  # fmt: skip
async def test_a_refused_enrollment_shows_the_relays_reason_and_keeps_nothing(
    relay: tuple[str, list[Script]], tmp_path: Path, script: Script, shown: str
) -> None:
    url, scripts = relay
    scripts.append(script)
    data = tmp_path / "agent"
    argv = [str(BIN / "qp-agent"), "enroll", url, "--token", "qpe_x", "--data", str(data)]
    done = await asyncio.to_thread(
        subprocess.run, argv, env=env(), stdin=subprocess.DEVNULL, capture_output=True,
        timeout=timeout(30),
    )  # fmt: skip
    assert done.returncode != 0, done.stderr
    assert one_line(done.stderr) == f"qp-agent: {shown}"
    assert not AgentFiles(data).enrolled()
