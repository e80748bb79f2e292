"""``qp exec`` and ``qp shell``: stdio to and from a remote process.

Local stdio runs in threads (blocking reads and writes work for files, pipes and
terminals alike); each copy loop is read → write → drain so backpressure holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import sys
import termios
import tty
from collections.abc import Callable, Iterator

import asyncssh

from console.profile import Profile
from console.ssh_session import ssh_session
from console.stdio import FdReader, write_all

CHUNK = 64 * 1024
Proc = asyncssh.SSHClientProcess[bytes]


def exit_code(proc: asyncssh.SSHCompletedProcess | Proc) -> int:
    """The remote status as a local exit code (signals as 128+N, like a shell)."""
    if proc.exit_status is not None and proc.exit_status >= 0:
        return proc.exit_status
    if proc.exit_signal:
        number = getattr(signal.Signals, f"SIG{proc.exit_signal[0]}", None)
        return 128 + (number.value if number else 1)
    return 255


async def _pump_stdin(proc: Proc, fd: int, close_at_eof: bool = True) -> None:
    reader = FdReader(fd)
    try:
        while True:
            data = await reader.read()
            if not data:
                break
            proc.stdin.write(data)
            await proc.stdin.drain()
        if close_at_eof:
            proc.stdin.write_eof()
    except (OSError, asyncssh.Error, BrokenPipeError):
        return


async def _pump_out(reader: asyncssh.SSHReader[bytes], fd: int) -> None:
    while True:
        data = await reader.read(CHUNK)
        if not data:
            return
        await asyncio.to_thread(write_all, fd, data)


async def run_exec(
    profile: Profile, agent: str, argv: list[str], stdin: bool = True, request: str | None = None
) -> int:
    """Run ``argv`` on the agent; stdout and stderr kept apart; returns its status."""
    command = shlex.join(argv) if len(argv) > 1 else argv[0]
    async with ssh_session(profile, agent, "exec", request) as (conn, _):
        proc = await conn.create_process(command, encoding=None)
        feeder = None
        if stdin:
            feeder = asyncio.create_task(_pump_stdin(proc, sys.stdin.fileno()))
        else:
            proc.stdin.write_eof()
        await asyncio.gather(
            _pump_out(proc.stdout, sys.stdout.fileno()), _pump_out(proc.stderr, sys.stderr.fileno())
        )
        await proc.wait_closed()
        if feeder is not None:
            feeder.cancel()
        return exit_code(proc)


@contextlib.contextmanager
def _raw_terminal(fd: int) -> Iterator[None]:
    if not os.isatty(fd):
        yield None
        return
    saved = termios.tcgetattr(fd)
    tty.setraw(fd, termios.TCSANOW)  # keep typeahead (TCSAFLUSH would drop it)
    try:
        yield None
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _terminal_size(fd: int) -> tuple[int, int]:
    try:
        size = os.get_terminal_size(fd)
        if size.columns and size.lines:
            return size.columns, size.lines
        return 80, 24
    except OSError:
        return 80, 24


async def run_shell(
    profile: Profile,
    agent: str,
    on_open: Callable[[str], None] | None = None,
    request: str | None = None,
) -> int:
    """Interactive shell with a PTY; window size follows the local terminal."""
    in_fd, out_fd = sys.stdin.fileno(), sys.stdout.fileno()
    async with ssh_session(profile, agent, "shell", request) as (conn, opened):
        if on_open:
            on_open(opened.session_id)
        proc = await conn.create_process(
            term_type=os.environ.get("TERM", "xterm-256color"),
            term_size=_terminal_size(in_fd),
            encoding=None,
        )
        loop = asyncio.get_running_loop()

        def resized() -> None:
            proc.change_terminal_size(*_terminal_size(in_fd))

        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGWINCH, resized)
        with _raw_terminal(in_fd):
            feeder = asyncio.create_task(_pump_stdin(proc, in_fd, close_at_eof=False))
            await _pump_out(proc.stdout, out_fd)
            await proc.wait_closed()
            feeder.cancel()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGWINCH)
        return exit_code(proc)
