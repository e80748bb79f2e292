"""Toolkit acceptance 6: recordings and the agent's own audit log.

Every ``qp shell`` is recorded on the agent as asciicast v2 in
``<agent data>/recordings/<session>.cast``; ``qp session replay`` plays it back.
``qp-agent log`` shows the client what technicians did: commands, file transfers
and forwards, per session.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import signal
import stat
import struct
import termios
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness import BIN, timeout
from tests.integration.conftest import Office
from tests.integration.toolkit_helpers import (
    IsolatedAgent,
    Web,
    agent_events,
    isolated_agent,
    one_line,
    qp_agent,
    session_row,
    set_policy,
    spawn_qp,
    start_web,
    wait_session_ended,
)


@dataclass(frozen=True)
class Recorded:
    office: Office
    agent: IsolatedAgent
    web: Web


@pytest.fixture(scope="module")
def recorded(office: Office) -> Iterator[Recorded]:
    web = start_web()
    try:
        yield Recorded(office, isolated_agent(office.world, "Acme", "rec-pc"), web)
    finally:
        web.server.shutdown()
        web.server.server_close()


class Terminal:
    """``qp shell rec-pc`` on a PTY of our own."""

    def __init__(self, env: dict[str, str]) -> None:
        argv = [str(BIN / "qp"), "shell", "rec-pc"]
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execve(argv[0], argv, env)
        self.out = bytearray()

    def read_until(self, marker: bytes) -> None:
        deadline = time.monotonic() + timeout(30)
        while marker not in self.out:
            assert time.monotonic() < deadline, bytes(self.out)
            ready, _, _ = select.select([self.fd], [], [], 0.5)
            if ready:
                self.out.extend(os.read(self.fd, 65536))

    def type(self, text: bytes) -> None:
        os.write(self.fd, text)

    def resize(self, rows: int, cols: int) -> None:
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def close(self) -> int:
        deadline = time.monotonic() + timeout(30)
        while time.monotonic() < deadline:  # drain until the child closes the PTY
            ready, _, _ = select.select([self.fd], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                self.out.extend(chunk)
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status)


def shell_session(env: Recorded, script: list[tuple[bytes, bytes]], resize: bool) -> str:
    """Run a recorded shell typing ``script`` (text, echo to wait for); its session id."""
    before = {e["session"] for e in agent_events(env.agent.data, "shell")}
    term = Terminal(env.office.world.env("alice"))
    for i, (text, wait_for) in enumerate(script):
        term.type(text)
        term.read_until(wait_for)
        if resize and i == 0:
            term.resize(50, 132)
    term.type(b"exit 3\n")
    assert term.close() == 3, bytes(term.out)
    (sid,) = [
        e["session"] for e in agent_events(env.agent.data, "shell") if e["session"] not in before
    ]
    return str(sid)


def read_cast(path: Path) -> tuple[dict[str, Any], list[list[Any]]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0])
    assert isinstance(header, dict)
    return header, [json.loads(line) for line in lines[1:]]


def check_asciicast(path: Path) -> tuple[dict[str, Any], list[list[Any]]]:
    """Header and events, checked against asciicast v2."""
    header, events = read_cast(path)
    assert header["version"] == 2
    assert isinstance(header["width"], int) and header["width"] > 0
    assert isinstance(header["height"], int) and header["height"] > 0
    assert isinstance(header.get("timestamp"), int)
    previous = 0.0
    for event in events:
        assert isinstance(event, list) and len(event) == 3, event
        at, kind, data = event
        assert isinstance(at, float) or (isinstance(at, int) and at == 0), event
        assert at >= previous, (previous, event)  # ordered by time
        previous = float(at)
        assert kind in ("o", "i", "r"), event
        assert isinstance(data, str), event
    return header, events


def test_a_shell_is_recorded_as_asciicast_v2_and_replays(
    recorded: Recorded, tmp_path: Path
) -> None:
    set_policy(recorded.office.world, recorded.agent.agent_id, "--record-input", "no")
    sid = shell_session(
        recorded,
        [(b"echo recorded-$((6*7))\n", b"recorded-42"), (b"echo after-$((6*7))\n", b"after-42")],
        resize=True,
    )
    cast = recorded.agent.data / "recordings" / f"{sid}.cast"
    assert stat.S_IMODE(cast.stat().st_mode) == 0o600  # the client's, not the world's
    header, events = check_asciicast(cast)
    assert (header["width"], header["height"]) == (80, 24)  # qp's default on a 0x0 PTY
    assert header["title"] == sid
    kinds = {kind for _, kind, _ in events}
    assert "i" not in kinds  # input is not recorded unless policy says so
    assert ["132x50"] == [data for _, kind, data in events if kind == "r"]
    shown = "".join(data for _, kind, data in events if kind == "o")
    assert "recorded-42" in shown and "after-42" in shown
    (note,) = [e for e in agent_events(recorded.agent.data, "recording") if e["session"] == sid]
    assert note["path"] == str(cast)

    replay = recorded.office.world.qp("session", "replay", str(cast), "--max-wait", "0")
    assert replay.stdout.decode() == shown  # exactly what the technician saw
    assert replay.stderr == b""
    row = wait_session_ended(recorded.office.world, sid)
    assert row["kind"] == "shell"


def test_keystrokes_are_recorded_when_policy_says_so(recorded: Recorded) -> None:
    set_policy(recorded.office.world, recorded.agent.agent_id, "--record-input", "yes")
    try:
        sid = shell_session(recorded, [(b"echo typed-$((6*7))\n", b"typed-42")], resize=False)
    finally:
        set_policy(recorded.office.world, recorded.agent.agent_id, "--record-input", "no")
    _, events = check_asciicast(recorded.agent.data / "recordings" / f"{sid}.cast")
    typed = "".join(data for _, kind, data in events if kind == "i")
    assert "echo typed-$((6*7))" in typed.replace("\r", "\n")
    assert "exit 3" in typed


def test_replay_refuses_a_file_that_is_not_asciicast(recorded: Recorded, tmp_path: Path) -> None:
    bogus = tmp_path / "notes.cast"
    bogus.write_text('{"version": 1}\n[0.1, "o", "x"]\n')
    done = recorded.office.world.qp("session", "replay", str(bogus), check=False)
    assert done.returncode == 1
    assert one_line(done.stderr) == f"qp: {bogus} is not an asciicast v2 recording"


def test_the_agent_log_lists_exec_file_transfer_and_forward(
    recorded: Recorded, tmp_path: Path
) -> None:
    w = recorded.office.world
    data = recorded.agent.data
    # An exec …
    assert w.qp("exec", "rec-pc", "--", "echo", "audited", home="alice").stdout == b"audited\n"
    # … a file transfer …
    local = tmp_path / "report.txt"
    local.write_bytes(b"for the audit log\n")
    remote = tmp_path / "on-agent" / "report.txt"
    remote.parent.mkdir()
    w.qp("put", "-q", "rec-pc", str(local), str(remote), home="alice")
    assert remote.read_bytes() == local.read_bytes()
    # … and a forward.
    port = recorded.web.port
    set_policy(w, recorded.agent.agent_id, "--forwarding", "list", "--allow", f"127.0.0.1:{port}")
    qp = spawn_qp(w, "forward", "rec-pc", "-L", f"0:127.0.0.1:{port}")
    line = qp.wait_line(rf"^forwarding 127\.0\.0\.1:\d+ → 127\.0\.0\.1:{port} ")
    local_port = int(line.split()[1].rsplit(":", 1)[1])
    with urllib.request.urlopen(f"http://127.0.0.1:{local_port}/", timeout=timeout(15)) as r:
        assert r.read() == recorded.web.body
    qp.wait_line(r"^closed ")
    qp.signal(signal.SIGINT)
    assert qp.wait() == 130

    done = qp_agent(w, "log", "--json", "-n", "1000", data=data)
    events: list[dict[str, Any]] = json.loads(done.stdout)
    assert events == agent_events(data)[-1000:]  # the CLI shows the file, as written

    def one(event: str, **fields: object) -> dict[str, Any]:
        found = [
            e
            for e in events
            if e["event"] == event and all(e.get(k) == v for k, v in fields.items())
        ]
        assert len(found) == 1, (event, fields, events[-20:])
        return found[0]

    ran = one("exec", command="echo audited")
    moved = one("file_upload", path=str(remote))
    forwarded = one("forward", host="127.0.0.1", port=port)
    assert ran["technician"] == "alice" and ran["pty"] is False
    assert moved["size"] == len(local.read_bytes())
    assert forwarded["address"] == "127.0.0.1"
    sessions = {"exec": ran["session"], "files": moved["session"], "forward": forwarded["session"]}
    assert len(set(sessions.values())) == 3
    for kind, sid in sessions.items():
        # Each is a session the relay knows, of that kind, offered to and closed on
        # this agent.
        assert session_row(w, sid)["kind"] == kind
        assert one("offer", session=sid)["kind"] == kind
        one("session_closed", session=sid)
    one("exit", session=sessions["exec"], status=0)

    text = qp_agent(w, "log", "-n", "1000", data=data).stdout.decode()
    assert f"{sessions['exec']}  exec  technician=alice command=echo audited" in text


def test_an_uploaded_recording_replays_from_the_relay(recorded: Recorded) -> None:
    w = recorded.office.world
    set_policy(w, recorded.agent.agent_id, "--upload-recordings", "yes")
    try:
        sid = shell_session(recorded, [(b"echo uploaded-$((6*7))\n", b"uploaded-42")], False)
    finally:
        set_policy(w, recorded.agent.agent_id, "--upload-recordings", "no")
    local = (recorded.agent.data / "recordings" / f"{sid}.cast").read_bytes()
    stored = w.relay_data / "recordings" / f"{sid}.cast"
    deadline = time.monotonic() + timeout(20)
    while not (stored.exists() and stored.read_bytes() == local):  # the upload is async
        assert time.monotonic() < deadline, "the recording never reached the relay"
        time.sleep(0.05)
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    replay = w.qp("session", "replay", sid, "--max-wait", "0", home="alice")
    assert "uploaded-42" in replay.stdout.decode()
    # Another customer's technician cannot fetch it: same answer as for no recording.
    denied = w.qp("session", "replay", sid, home="bob", check=False)
    missing = w.qp("session", "replay", "ses-000000000000", home="bob", check=False)
    assert denied.returncode == missing.returncode == 1
    assert (
        one_line(denied.stderr) == one_line(missing.stderr) == "qp: no recording for that session"
    )
