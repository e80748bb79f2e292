"""Issue 10: the client's consent pin (``qp-agent policy --consent attended``).

A client may insist on approving every session on its machine. With the pin set
and the relay's policy unattended, a session still waits for the client's consent;
the relay shows the consent as pinned by the client and cannot change it. The
agent enforces the pin itself, even when the relay never heard of it.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from agent.control import control_call
from agent.files import AgentFiles
from agent.pin import pin_path, set_pin
from harness import Proc
from shared.errors import UsageError
from tests.integration.conftest import Office
from tests.integration.toolkit_helpers import (
    IsolatedAgent,
    isolated_agent,
    qp_agent,
    session_row,
    set_policy,
    spawn_qp,
    wait_until,
)

WAITING = r"^qp: waiting for the client's consent"


@pytest.fixture(scope="module")
def pinned(office: Office) -> IsolatedAgent:
    agent = isolated_agent(office.world, "Acme", "pinned-pc")
    assert set_policy(office.world, agent.agent_id, "--consent", "unattended")["consent"] == (
        "unattended"
    )
    return agent


def pending(agent: IsolatedAgent) -> list[dict[str, Any]]:
    reply = asyncio.run(control_call(agent.data / "control.sock", {"cmd": "pending"}))
    found: list[dict[str, Any]] = reply["pending"]
    return found


def asks_first(office: Office, agent: IsolatedAgent, marker: Path) -> Proc:
    """``qp exec`` waits for the client's consent and runs nothing meanwhile; the
    client denies."""
    qp = spawn_qp(office.world, "exec", "pinned-pc", "--", "touch", str(marker))
    qp.wait_line(WAITING)
    (question,) = wait_until(lambda: pending(agent), "the consent question")
    assert session_row(office.world, question["session"])["state"] == "awaiting_consent"
    assert not marker.exists()
    done = qp_agent(office.world, "consent", question["session"], "--deny", data=agent.data)
    assert done.returncode == 0
    assert qp.wait() == 255 and not marker.exists()
    return qp


def shown_policy(office: Office, agent: IsolatedAgent) -> dict[str, Any]:
    value: dict[str, Any] = office.world.qp_json("agent", "policy", agent.agent_id)
    return value


def test_the_pin_makes_an_unattended_agent_ask(
    office: Office, pinned: IsolatedAgent, tmp_path: Path
) -> None:
    w = office.world
    done = qp_agent(w, "policy", "--consent", "attended", data=pinned.data)
    assert done.stdout.decode().startswith("consent: attended, pinned on this machine")
    assert oct(pin_path(AgentFiles(pinned.data)).stat().st_mode & 0o777) == "0o644"
    # The running agent told the relay at once; the relay shows it as the client's.
    wait_until(lambda: shown_policy(office, pinned)["pinned"], "the relay to learn of the pin")
    value = shown_policy(office, pinned)
    assert value["policy"]["consent"] == "attended"
    assert value["pinned"] == {"consent": "attended"}
    text = w.qp("agent", "policy", "pinned-pc").stdout.decode()
    assert "attended (pinned by the client)" in text
    # The relay's own policy cannot undo it.
    assert set_policy(w, pinned.agent_id, "--consent", "unattended")["consent"] == "attended"
    asks_first(office, pinned, tmp_path / "pinned-ran")

    # Cleared, the relay's policy (unattended) decides again.
    done = qp_agent(w, "policy", "--consent", "relay", data=pinned.data)
    assert done.stdout.decode().startswith("consent: as the relay's policy says")
    wait_until(lambda: not shown_policy(office, pinned)["pinned"], "the relay to drop the pin")
    marker = tmp_path / "unpinned-ran"
    w.qp("exec", "pinned-pc", "--", "touch", str(marker), home="alice")
    assert marker.exists()


def test_the_agent_enforces_a_pin_the_relay_never_heard_of(
    office: Office, pinned: IsolatedAgent, tmp_path: Path
) -> None:
    # Written behind the running agent's back: the relay still says unattended...
    set_pin(AgentFiles(pinned.data), "attended")
    try:
        assert shown_policy(office, pinned)["policy"]["consent"] == "unattended"
        # ...and the agent asks its user all the same.
        asks_first(office, pinned, tmp_path / "unreported-ran")
    finally:
        set_pin(AgentFiles(pinned.data), None)


def test_only_the_owner_or_root_may_change_the_pin(pinned: IsolatedAgent) -> None:
    files = AgentFiles(pinned.data)
    owner = files.root.stat().st_uid
    stranger = owner + 4242 if owner != 0 else 4242
    with pytest.raises(UsageError, match="only the owner of .* or root may change"):
        set_pin(files, "attended", euid=stranger)
    assert not pin_path(files).exists()
    set_pin(files, "attended", euid=0)  # root may
    assert json.loads(pin_path(files).read_text()) == {"consent": "attended"}
    set_pin(files, None, euid=os.geteuid())
    assert not pin_path(files).exists()
