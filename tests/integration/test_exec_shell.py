"""Acceptance 2: qp exec and qp shell through real relay and agent processes."""

from __future__ import annotations

import fcntl
import hashlib
import os
import pty
import select
import struct
import termios
import time
from decimal import Decimal

from harness import BIN, timeout
from tests.integration.conftest import Office
from tests.integration.pty_shell import PtyShell


def test_exec_keeps_stdout_stderr_and_status_apart(office: Office) -> None:
    w = office.world
    proc = w.qp(
        "exec",
        "acme-pc",
        "--",
        "sh",
        "-c",
        "cat; echo to-stderr >&2; exit 7",
        home="alice",
        input=b"from stdin\n",
        check=False,
    )
    assert proc.returncode == 7
    assert proc.stdout == b"from stdin\n"
    assert proc.stderr == b"to-stderr\n"


def test_exec_arguments_are_passed_verbatim(office: Office) -> None:
    proc = office.world.qp(
        "exec", "acme-pc", "--", "printf", "%s|", "two words", "$HOME", "it's", home="alice"
    )
    assert proc.stdout == b"two words|$HOME|it's|"


def test_exec_pipes_5mb_of_random_bytes_intact(office: Office) -> None:
    data = os.urandom(5 * 1024 * 1024)
    proc = office.world.qp("exec", "acme-pc", "--", "cat", home="alice", input=data)
    assert hashlib.sha256(proc.stdout).hexdigest() == hashlib.sha256(data).hexdigest()


def test_exec_by_agent_id_and_time_entry_per_session(office: Office) -> None:
    w = office.world
    before = {s["id"] for s in w.qp_json("sessions", home="alice")}
    w.qp("exec", office.acme_agent, "--", "true", home="alice")
    sessions = {s["id"]: s for s in w.qp_json("sessions", home="alice")}
    (sid,) = set(sessions) - before
    # Its time is in alice's draft on this machine: its own, or the one it joined.
    (entry,) = [e for e in w.qp_json("time", home="alice") if sid in e["session_ids"]]
    assert entry["customer"] == "Acme"
    assert entry["technician"] == "alice"
    assert entry["status"] == "draft"
    # No rate card: actual time in whole minutes at the relay's 90.00/h.
    assert entry["billable_minutes"] >= 1
    assert Decimal(entry["amount"]) == entry["billable_minutes"] * Decimal("1.50")
    assert entry["actual_seconds"] >= 1
    assert sessions[sid]["state"] == "ended"
    assert sessions[sid]["end_reason"] == "completed"
    assert sessions[sid]["agent"] == office.acme_agent


def _drive_pty(argv: list[str], env: dict[str, str], lines: list[bytes]) -> tuple[bytes, int]:
    pid, fd = pty.fork()
    if pid == 0:  # child: becomes qp with the PTY as its terminal
        os.execve(argv[0], argv, env)
    out = b""
    sent = 0
    deadline = time.monotonic() + timeout(30)
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
        # Type the next line once the remote shell has echoed the previous one.
        if sent < len(lines) and (sent == 0 or lines[sent - 1].strip() in out):
            os.write(fd, lines[sent])
            sent += 1
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return out, os.waitstatus_to_exitcode(status)


def test_shell_has_a_pty_and_propagates_exit_status(office: Office) -> None:
    env = office.world.env("alice")
    env["PS1"] = "$ "
    out, code = _drive_pty(
        [str(BIN / "qp"), "shell", "acme-pc"], env, [b"tty\n", b"stty size\n", b"exit 3\n"]
    )
    assert b"/dev/pts/" in out, out
    assert b"24 80" in out, out  # no local size known: the 80x24 default reached the PTY
    assert code == 3, out


def test_shell_follows_a_local_window_resize(office: Office) -> None:
    shell = PtyShell("acme-pc", office.world.env("alice"))
    shell.type(b"echo ready-$((6*7))\n")
    shell.read_until(b"ready-42")
    # Resizing our terminal sends qp a SIGWINCH; it must tell the agent's PTY.
    fcntl.ioctl(shell.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 132, 0, 0))
    shell.type(b"echo synced-$((6*7))\n")  # a round trip after the signal
    shell.read_until(b"synced-42")
    shell.type(b"stty size; exit\n")
    shell.read_until(b"50 132")
    assert shell.wait() == 0
