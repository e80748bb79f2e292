"""``qp-agent end``: the agent side of the client ending a session, without sockets.

The relay answers the agent's ``session_ended`` in two ways that race: it closes
the session's tunnel (the agent's session task then finishes) and it sends
``session_end`` on the control link. Both orders are played here by hand, with
``END_ACK_TIMEOUT`` pushed out of reach so nothing depends on real time: the
client's command must return as soon as the session is over, whichever arrives
first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest

import agent.link
from agent.files import AgentFiles, Identity
from agent.link import AgentRunner, LocalSession
from shared.keys import generate_key
from shared.protocol.messages import Message


async def until(condition: Callable[[], object], rounds: int = 1000) -> bool:
    """Let the loop run (no time passes) until ``condition`` holds; False if never."""
    for _ in range(rounds):
        if condition():
            return True
        await asyncio.sleep(0)
    return bool(condition())


def runner(tmp_path: Path) -> AgentRunner:
    ident = Identity(
        relay_url="ws://127.0.0.1:9",
        agent_id="agt-000000000001",
        name="pc",
        ca_file=None,
        identity_key=generate_key(),
        host_key=generate_key(),
        host_cert=cast(Any, None),
        user_ca="",
    )
    return AgentRunner(AgentFiles(tmp_path), ident=ident)


async def client_ends(tmp_path: Path, tunnel_closes_first: bool) -> bool:
    """Run ``end_session`` against a relay that answers in the given order; whether
    it returned once both answers were in."""
    r = runner(tmp_path)
    sid = "ses-000000000001"
    tunnel_closed = asyncio.Event()

    async def serve() -> None:  # stands for serve_session: over when the tunnel closes
        await tunnel_closed.wait()

    session = LocalSession(sid, "alice", "exec", "", "now", "active", ended=asyncio.Event())
    r.sessions[sid] = session
    session.task = asyncio.create_task(serve())
    session.task.add_done_callback(r._forget(sid))
    delivered = asyncio.Event()

    async def relay_answers() -> None:
        end = Message("session_end", {"session_id": sid, "reason": "client_ended"})
        if tunnel_closes_first:
            tunnel_closed.set()
            assert await until(lambda: sid not in r.sessions)  # task done, forgotten
            await r._handle(end, send)
        else:
            await r._handle(end, send)
            tunnel_closed.set()
        delivered.set()

    async def send(message: Message) -> None:
        if message.type == "session_ended":
            asyncio.create_task(relay_answers())

    r._send = send
    ending = asyncio.create_task(r.end_session(sid))
    assert await until(delivered.is_set)
    returned = await until(ending.done)
    if returned:
        assert ending.result() is True
    else:
        ending.cancel()
    return returned


@pytest.fixture(autouse=True)
def no_real_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agent.link, "END_ACK_TIMEOUT", 3600.0)


async def test_end_returns_when_the_relays_session_end_comes_first(tmp_path: Path) -> None:
    assert await client_ends(tmp_path, tunnel_closes_first=False)


async def test_end_returns_when_the_tunnel_closes_first(tmp_path: Path) -> None:
    assert await client_ends(tmp_path, tunnel_closes_first=True)
