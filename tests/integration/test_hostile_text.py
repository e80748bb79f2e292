"""Issue 10, acceptance 8: the client machine cannot write to the technician's terminal.

A hostile agent (a real enrolled identity on a real relay, speaking the agent
protocol itself, as a modified ``qp-agent`` could) fills every text it controls
with escape sequences: a window-title OSC, an OSC 52 clipboard write, a CSI line
erase with a carriage return and a faked line, 8-bit C1 controls, a bidi override
and rich markup. Real ``qp`` processes then show its decline reason, help request,
diagnostics (host name, OS string) and session rows; none of their output may hold
an escape, control or bidi character, and the markup must print as text.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from agent.files import AgentFiles, Identity
from harness import World, timeout
from shared.diagnostics import SystemInfo, to_json
from shared.keys import sign_challenge
from tests.integration.conftest import Office
from tests.integration.toolkit_helpers import wait_until
from tests.unit.diagnostics_samples import data, healthy

MARKUP = "[red]RED[/red]"
#: Everything a terminal acts on: title, clipboard, erase + fake line, C1 CSI, bidi.
EVIL = (
    "\x1b]0;pwned-title\x07\x1b]52;c;ZXZpbA==\x07\x1b[2K\r\x1b[1Afake: ok "
    f"\x9b31m\u202etxt.exe\u2066{MARKUP}\x1bP+q\x1b\\\x07\x08"
)
#: Characters none of qp's output may hold (a newline or tab is qp's own layout).
FORBIDDEN = (
    {chr(c) for c in range(0x20) if chr(c) not in "\n\t"}
    | {chr(c) for c in range(0x7F, 0xA0)}
    | set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
)


class HostileAgent:
    """An enrolled agent identity linked by this test: declines every session with
    :data:`EVIL`, answers snapshot requests with :data:`EVIL` in its host strings."""

    def __init__(self, world: World, data_dir: Path) -> None:
        self.url = f"{world.url}/v1/agent"
        self.identity = Identity.load(AgentFiles(data_dir))
        self.linked = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.ws: ClientConnection | None = None
        self.task: asyncio.Task[None] | None = None
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._main(),))

    def __enter__(self) -> HostileAgent:
        self.thread.start()
        assert self.linked.wait(timeout(15)), "the hostile agent did not link"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.task is not None:
            self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(timeout(15))
        self.loop.close()

    async def send(self, kind: str, body: dict[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send(json.dumps({"v": 1, "type": kind, "id": None, "body": body}))

    def send_now(self, kind: str, body: dict[str, Any]) -> None:
        asyncio.run_coroutine_threadsafe(self.send(kind, body), self.loop).result(timeout(15))

    async def _main(self) -> None:
        self.task = asyncio.current_task()
        try:
            await self._run()
        except asyncio.CancelledError:
            pass

    async def _run(self) -> None:
        async with connect(self.url, subprotocols=["qp.v1"], compression=None) as ws:  # type: ignore[list-item]
            self.ws = ws
            challenge = json.loads(await ws.recv())["body"]
            key = self.identity.identity_key
            signature = sign_challenge(key, challenge["nonce"], challenge["relay_id"])
            await self.send("auth", {"agent_id": self.identity.agent_id, "signature": signature})
            assert json.loads(await ws.recv())["type"] == "welcome"
            self.linked.set()
            async for raw in ws:
                msg = json.loads(raw)
                if msg["type"] == "session_offer":
                    reason = {"session_id": msg["body"]["session_id"], "reason": EVIL}
                    await self.send("session_decline", reason)
                elif msg["type"] == "diag_request":
                    await self.send(
                        "diag_snapshot", {"ref": msg["body"]["ref"], "snapshot": evil_snapshot()}
                    )


def evil_snapshot() -> dict[str, Any]:
    base = healthy()
    system = dataclasses.replace(
        data(base, "system"), hostname=EVIL[:60], os=EVIL[:60], os_release=EVIL, kernel=EVIL
    )
    assert isinstance(system, SystemInfo)
    snap = dataclasses.replace(
        base,
        taken_at=datetime.now(UTC).replace(microsecond=0),
        system=dataclasses.replace(base.system, data=system),
    )
    return to_json(snap)


@pytest.fixture(scope="module")
def hostile(office: Office) -> Iterator[HostileAgent]:
    _, data_dir = office.world.enroll("Acme", "hostile-pc")
    with HostileAgent(office.world, data_dir) as agent:
        yield agent


def assert_inert(output: bytes, what: str) -> str:
    """``output`` decoded; it holds no terminal control at all."""
    text = output.decode()
    bad = sorted({f"U+{ord(ch):04X}" for ch in text if ch in FORBIDDEN})
    assert not bad, f"{what} printed {bad}: {text!r}"
    return text


def test_a_decline_reason_prints_inert(office: Office, hostile: HostileAgent) -> None:
    done = office.world.qp("exec", "hostile-pc", "--", "true", home="alice", check=False)
    assert done.returncode == 255  # qp exec fails like ssh
    err = assert_inert(done.stderr, "the decline line")
    assert "the client declined the session" in err and MARKUP in err
    assert "pwned-title" not in err and "ZXZpbA==" not in err  # whole sequences go


def test_a_help_request_prints_inert(office: Office, hostile: HostileAgent) -> None:
    hostile.send_now("help_request", {"ref": secrets.token_hex(4), "text": EVIL, "urgent": True})
    rows = wait_until(
        lambda: [r for r in office.world.qp_json("queue") if r["agent_name"] == "hostile-pc"],
        "the hostile help request",
    )
    shown = office.world.qp("queue", home="alice")
    assert MARKUP in assert_inert(shown.stdout, "qp queue") + assert_inert(shown.stderr, "err")
    label = rows[0]["label"]
    one = office.world.qp("request", "show", label, home="alice")
    assert MARKUP in assert_inert(one.stdout, "qp request show")


def test_diagnostics_host_and_os_strings_print_inert(office: Office, hostile: HostileAgent) -> None:
    shown = office.world.qp("diag", "hostile-pc", "--refresh", home="alice")
    out = assert_inert(shown.stdout, "qp diag")
    assert "fake: ok" in out  # the host name is there, defanged
    assert_inert(shown.stderr, "qp diag (stderr)")


def test_lists_of_sessions_and_agents_print_inert(office: Office, hostile: HostileAgent) -> None:
    for args in (("sessions",), ("agents",)):
        done = office.world.qp(*args, home="alice")
        assert_inert(done.stdout + done.stderr, f"qp {' '.join(args)}")
