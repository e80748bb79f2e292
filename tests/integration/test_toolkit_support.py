"""Toolkit acceptance 5: one-off help with a support code (``qp-agent support``).

The client runs ``qp-agent support --relay URL --code CODE`` as a process: a
throw-away agent, attended by construction (it asks on its terminal), revoked and
its scratch directory removed when it ends. Codes are single use, expire, and
wrong guesses are throttled and audited.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from harness import BIN, Proc, World
from relay.core.ids import new_id, token_hash
from relay.core.support_codes import new_code, normalise_code
from relay.model import SupportCode
from relay.store.sqlite import SQLiteStore
from shared.clock import SystemClock
from tests.integration.toolkit_helpers import one_line, spawn_qp, wait_until

REFUSED = "qp-agent: support code is invalid, expired or already used"
THROTTLED = "qp-agent: too many failed attempts; retry in a minute"


def support_argv(world: World, code: str) -> list[str]:
    """``qp-agent support --relay URL --code CODE``."""
    # Tests only ever talk to loopback: never probe the machine's real gateway.
    return [str(BIN / "qp-agent"), "support", "--relay", world.url, "--code", code,
            "--no-gateway-probe"]  # fmt: skip


@dataclass
class Helpdesk:
    world: World


@pytest.fixture(scope="module")
def helpdesk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Helpdesk]:
    world = World(tmp_path_factory.mktemp("helpdesk"))
    try:
        token = world.init_relay(heartbeat_interval=1)
        world.start_relay(0)
        world.login(token)
        world.qp("customer", "add", "Acme")
        world.technician("alice", "Acme")
        yield Helpdesk(world)
    finally:
        world.close()


def support_code(world: World, request: str | None = None) -> dict[str, Any]:
    args = ["support-code", "--customer", "Acme"]
    if request:
        args += ["--request", request]
    code: dict[str, Any] = world.qp_json(*args, home="alice")
    assert code["customer"] == "Acme"
    assert code["command"] == f"qp-agent support --relay {world.url} --code {code['code']}"
    return code


def support(world: World, code: str, tmpdir: Path) -> Proc:
    """``qp-agent support`` as the client runs it, with a private TMPDIR so we can see
    its scratch directory come and go."""
    tmpdir.mkdir(exist_ok=True)
    env = world.env("client", TMPDIR=str(tmpdir))
    proc = Proc(support_argv(world, code), env, stdin=subprocess.PIPE)
    world.procs.append(proc)
    return proc


def connected(proc: Proc) -> str:
    line = proc.wait_line(r"^\[qp\] connected for Acme as agt-")
    found = re.search(r"as (agt-[0-9a-f]+);", line)
    assert found, line
    return found.group(1)


def answer(proc: Proc, text: bytes) -> None:
    assert proc.popen.stdin is not None
    proc.popen.stdin.write(text)
    proc.popen.stdin.flush()


def agent_row(world: World, agent_id: str) -> dict[str, Any] | None:
    rows = [a for a in world.qp_json("agents") if a["id"] == agent_id]
    return rows[0] if rows else None


def scratch_dirs(parent: Path) -> list[Path]:
    return sorted(parent.glob("qp-support-*"))


def refused(world: World, code: str) -> list[str]:
    """Run support with ``code``, which must fail at once; its stderr lines."""
    done = world.run(support_argv(world, code), home="client", check=False)
    assert done.returncode == 1, done.stderr
    assert done.stdout == b""
    return [line for line in done.stderr.decode().splitlines() if line.strip()]


def refused_line(world: World, code: str) -> str:
    lines = refused(world, code)
    assert len(lines) == 1, lines
    return lines[0]


def relay_audit(world: World, *events: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(event, actor, detail) rows of the relay's audit table, oldest first."""
    db = sqlite3.connect(f"file:{world.relay_data / 'relay.db'}?mode=ro", uri=True)
    try:
        marks = ",".join("?" * len(events))
        rows = db.execute(
            f"SELECT event, actor, detail FROM audit WHERE event IN ({marks}) ORDER BY id",
            events,
        ).fetchall()
    finally:
        db.close()
    return [(str(e), str(a), json.loads(d)) for e, a, d in rows]


def ask_and_answer(world: World, proc: Proc, agent_id: str, reply: bytes, marker: Path) -> Proc:
    """``qp exec AGENT_ID -- …`` as alice; answer the client's question with ``reply``."""
    argv = ["exec", agent_id, "--", "sh", "-c", f"echo hi; touch {marker}"]
    qp = spawn_qp(world, *argv)
    qp.wait_line(r"^qp: waiting for the client's consent")
    # The question itself ends without a newline ("… Allow? [y/N] "); the line
    # before it announces the request.
    proc.wait_line(r"^\[qp\] alice asks for a exec session$")
    assert not marker.exists()
    answer(proc, reply)
    return qp


def end_support(proc: Proc) -> None:
    proc.signal(signal.SIGINT)  # the client's Ctrl+C
    assert proc.wait() == 0, proc.text()
    proc.wait_line(r"^\[qp\] support ended; nothing was left on this machine$")


def outcome(proc: Proc, text: str) -> None:
    """The consent outcome; it follows the question on the same line, because the
    question ("… Allow? [y/N] ") waits for the answer without a newline."""
    proc.wait_line(rf"\[qp\] consent: {text}$")


def test_the_qp_agent_support_command_runs(helpdesk: Helpdesk) -> None:
    w = helpdesk.world
    done = w.run(
        [str(BIN / "qp-agent"), "support", "--relay", w.url, "--code", new_code()]
        + ["--no-gateway-probe"],
        home="client",
        check=False,
    )
    assert done.returncode == 1
    assert one_line(done.stderr) == REFUSED


# -- a support session, start to end -----------------------------------------------------------


def test_a_support_code_session_runs_a_command(helpdesk: Helpdesk, tmp_path: Path) -> None:
    w = helpdesk.world
    code = support_code(w, request="printer jam")
    proc = support(w, code["code"], tmp_path / "client-tmp")
    try:
        agent_id = connected(proc)
        marker = tmp_path / "support-ran"
        qp = ask_and_answer(w, proc, agent_id, b"y\n", marker)
        assert qp.wait() == 0, qp.text()
        assert qp.text("stdout") == "hi\n<eof>"
        assert marker.exists()
        outcome(proc, "approved")
        proc.wait_line(rf"^\[qp\] alice runs: sh -c 'echo hi; touch {marker}'$")
    finally:
        end_support(proc)


def test_a_declined_support_session_runs_nothing_and_leaves_nothing(
    helpdesk: Helpdesk, tmp_path: Path
) -> None:
    w = helpdesk.world
    code = support_code(w)
    scratch = tmp_path / "client-tmp"
    proc = support(w, code["code"], scratch)
    try:
        agent_id = connected(proc)
        assert len(scratch_dirs(scratch)) == 1  # exists while it runs
        row = agent_row(w, agent_id)
        assert row is not None and row["online"] and not row["revoked"]
        assert row["customer"] == "Acme"

        # The client is asked and says no: nothing runs.
        marker = tmp_path / "declined-ran"
        qp = ask_and_answer(w, proc, agent_id, b"n\n", marker)
        assert qp.wait() == 255
        assert qp.text().splitlines()[-2] == (
            "qp: the client declined the session (declined by the client)"
        )
        assert not marker.exists()
        outcome(proc, "denied")
        # Used by the running process: used up.
        assert refused_line(w, code["code"]) == REFUSED
    finally:
        end_support(proc)
    assert scratch_dirs(scratch) == []

    def revoked() -> dict[str, Any] | None:
        found = agent_row(w, agent_id)
        return found if found is not None and found["revoked"] else None

    gone = wait_until(revoked, "the support agent to be revoked")
    assert gone["online"] is False
    assert [a for _, a, _ in relay_audit(w, "support_end")].count(agent_id) == 1


def test_a_code_is_spent_by_its_first_use(helpdesk: Helpdesk, tmp_path: Path) -> None:
    """Single use, revocation and clean-up hold however the first connection fares
    (it links, then waits for the person at the keyboard)."""
    w = helpdesk.world
    code = support_code(w)
    scratch = tmp_path / "client-tmp"
    first = support(w, code["code"], scratch)
    try:
        first.wait_line(r"^\[qp\] connected for Acme as agt-|^qp-agent: ")
    finally:
        first.signal(signal.SIGINT)
        first.wait()
    (start,) = [(a, d) for e, a, d in relay_audit(w, "support_start") if d["code"] == code["id"]]
    agent_id = start[0]

    assert refused_line(w, code["code"]) == REFUSED
    assert refused_line(w, code["code"].lower().replace("-", " ")) == REFUSED  # same code
    # The refused attempts started nothing.
    assert [d for _, _, d in relay_audit(w, "support_start") if d["code"] == code["id"]] == [
        start[1]
    ]

    # The throw-away identity died with its link; the client's scratch dir is gone.
    def revoked() -> dict[str, Any] | None:
        found = agent_row(w, agent_id)
        return found if found is not None and found["revoked"] else None

    row = wait_until(revoked, "the support agent to be revoked")
    assert row["online"] is False and row["customer"] == "Acme"
    assert [a for e, a, _ in relay_audit(w, "support_end")].count(agent_id) == 1
    assert scratch_dirs(scratch) == []
    assert "Traceback" not in first.text()


def test_an_expired_support_code_is_refused(helpdesk: Helpdesk) -> None:
    w = helpdesk.world
    agents_before = {a["id"] for a in w.qp_json("agents")}
    code = new_code()

    async def insert_expired() -> None:
        store = SQLiteStore(str(w.relay_data / "relay.db"))
        await store.open()
        try:
            acme = await store.find_customer("Acme")
            assert acme is not None
            alice = next(t for t in await store.list_technicians() if t.name == "alice")
            now = SystemClock().now()
            record = SupportCode(
                new_id("sup"),
                acme.id,
                None,
                expires_at=now - timedelta(minutes=1),
                created_by=alice.id,
                created_at=now - timedelta(minutes=16),
            )
            await store.add_support_code(record, token_hash(normalise_code(code)))
        finally:
            await store.close()

    asyncio.run(insert_expired())
    assert refused_line(w, code) == REFUSED
    assert {a["id"] for a in w.qp_json("agents")} == agents_before  # no agent made


# -- guessing: throttled and audited ------------------------------------------------------------


def test_wrong_codes_are_throttled_and_audited(world: World) -> None:
    token = world.init_relay(auth_failures_per_minute=3)
    world.start_relay(0)
    world.login(token)
    world.qp("customer", "add", "Acme")
    good = world.qp_json("support-code", "--customer", "Acme")["code"]

    wrong = [new_code() for _ in range(3)]
    # Each run ends before the next starts, and the relay counts a failure before it
    # answers: the order of attempts is the order of failures, no waiting needed.
    assert [refused_line(world, code) for code in wrong] == [REFUSED] * 3
    # The limit is reached: from this address even a good code is turned away now,
    # with the relay's reason as the one line and a failed exit status (see refused()),
    # whether the relay's refusal reaches qp-agent as an error message or as the
    # reason of its close frame.
    for code in (new_code(), good):
        assert refused_line(world, code) == THROTTLED

    # Refusals of unauthenticated peers are counted per address and reason, one row
    # per window; a graceful stop writes the open window (qp audit would too, but this
    # address is throttled now).
    assert world.relay is not None
    world.relay.stop()
    refusals = relay_audit(world, "support_code_refused")
    throttled = relay_audit(world, "auth_throttled")
    assert [d["count"] for _, _, d in refusals] == [3]
    assert [d["count"] for _, _, d in throttled] == [2]
    assert all(d["peer"] == "127.0.0.1" for _, _, d in refusals + throttled)
    assert relay_audit(world, "support_start") == []
    # The good code was not spent by the throttled attempt.
    db = sqlite3.connect(f"file:{world.relay_data / 'relay.db'}?mode=ro", uri=True)
    try:
        used = db.execute("SELECT used_at FROM support_codes").fetchall()
    finally:
        db.close()
    assert used == [(None,)]
