"""Run what the technician asked for: a command or a shell, with or without a PTY.

All I/O is explicit read → write → drain loops; asyncssh's ``redirect()`` loses
or corrupts data under backpressure (spike notes, trap 1). Every command is
written to the agent's audit log, and every PTY session is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import pwd
import signal
import struct
import termios
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from agent.audit import AgentAudit
from agent.recording import CastRecorder

log = logging.getLogger("qp.agent")

CHUNK = 64 * 1024
SSHProcess = asyncssh.SSHServerProcess[bytes]


@dataclass(frozen=True)
class SessionContext:
    """What the agent knows about the session a process belongs to."""

    session_id: str
    technician: str
    audit: AgentAudit
    recordings: Path | None = None  # directory for asciicast files; None: no recording
    record_input: bool = False
    #: Called with a finished recording when policy says to upload it to the relay.
    upload: Callable[[Path], Awaitable[None]] | None = None


def login_shell() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_shell or "/bin/sh"
    except KeyError:
        return "/bin/sh"


def _argv(command: str | None) -> list[str]:
    shell = login_shell()
    return [shell, "-c", command] if command else [shell, "-l"]


def process_handler(ctx: SessionContext) -> Callable[[SSHProcess], object]:
    """asyncssh ``process_factory`` for one session."""

    async def handle(process: SSHProcess) -> None:
        await handle_process(ctx, process)

    return handle


async def handle_process(ctx: SessionContext, process: SSHProcess) -> None:
    """Run one process; its exit status always reaches the technician."""
    pty = bool(process.get_terminal_type())
    ctx.audit.record(
        "exec" if process.command else "shell",
        ctx.session_id,
        technician=ctx.technician,
        command=(process.command or "")[:1000],
        pty=pty,
    )
    try:
        status = await (_run_pty(ctx, process) if pty else _run_pipes(process))
    except (asyncssh.Error, ConnectionError, BrokenPipeError):
        return
    except OSError as exc:
        with contextlib.suppress(Exception):
            process.stderr.write(f"qp-agent: cannot start: {exc.strerror}\r\n".encode())
        status = 127
    ctx.audit.record("exit", ctx.session_id, status=status)
    process.exit(status)


def _status(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


async def _copy(
    reader: asyncio.StreamReader,
    writer: asyncssh.SSHWriter[bytes],
    tee: Callable[[bytes], None] | None = None,
) -> None:
    while True:
        data = await reader.read(CHUNK)
        if not data:
            return
        if tee is not None:
            tee(data)
        writer.write(data)
        await writer.drain()


async def _run_pipes(process: SSHProcess) -> int:
    proc = await asyncio.create_subprocess_exec(
        *_argv(process.command),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stdin and proc.stdout and proc.stderr

    async def feed() -> None:
        assert proc.stdin
        try:
            while True:
                try:
                    data = await process.stdin.read(CHUNK)
                except (asyncssh.TerminalSizeChanged, asyncssh.BreakReceived):
                    continue
                if not data:
                    break
                proc.stdin.write(data)
                await proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            with contextlib.suppress(Exception):
                proc.stdin.close()

    feeder = asyncio.create_task(feed())
    try:
        await asyncio.gather(_copy(proc.stdout, process.stdout), _copy(proc.stderr, process.stderr))
        return _status(await proc.wait())
    finally:
        feeder.cancel()
        _hang_up(proc)


def _hang_up(proc: asyncio.subprocess.Process) -> None:
    """The technician left: the process group goes with them."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGHUP)


def _set_winsize(fd: int, size: tuple[int, int, int, int]) -> None:
    width, height, pixw, pixh = size
    if width and height:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, pixw, pixh))


def _make_controlling_tty() -> None:
    # Runs in the child after setsid(): the PTY on stdin becomes its terminal.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _recorder(ctx: SessionContext, process: SSHProcess) -> CastRecorder | None:
    if ctx.recordings is None:
        return None
    width, height, _, _ = process.get_terminal_size()
    try:
        ctx.recordings.mkdir(mode=0o700, exist_ok=True)
        path = ctx.recordings / f"{ctx.session_id}.cast"
        recorder = CastRecorder(
            path,
            width,
            height,
            process.get_terminal_type() or "xterm",
            ctx.session_id,
            ctx.record_input,
        )
    except OSError:
        return None
    ctx.audit.record("recording", ctx.session_id, path=str(path))
    return recorder


async def _run_pty(ctx: SessionContext, process: SSHProcess) -> int:
    master, slave = os.openpty()
    _set_winsize(master, process.get_terminal_size())
    env = dict(os.environ, TERM=process.get_terminal_type() or "xterm")
    try:
        proc = await asyncio.create_subprocess_exec(
            *_argv(process.command),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            preexec_fn=_make_controlling_tty,
            env=env,
        )
    finally:
        os.close(slave)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=CHUNK)
    read_transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(master, "rb", buffering=0)
    )
    write_transport, write_protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(os.dup(master), "wb", buffering=0)
    )
    writer = asyncio.StreamWriter(write_transport, write_protocol, None, loop)
    recorder = _recorder(ctx, process)

    async def feed() -> None:
        try:
            while True:
                try:
                    data = await process.stdin.read(CHUNK)
                except asyncssh.TerminalSizeChanged as change:
                    size = (change.width, change.height, change.pixwidth, change.pixheight)
                    _set_winsize(master, size)
                    if recorder is not None:
                        recorder.resize(change.width, change.height)
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGWINCH)
                    continue
                except asyncssh.BreakReceived:
                    continue
                if not data:
                    break
                if recorder is not None:
                    recorder.input(data)
                writer.write(data)
                await writer.drain()
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass

    feeder = asyncio.create_task(feed())
    try:
        with contextlib.suppress(OSError):  # EIO once the last slave fd closes
            await _copy(reader, process.stdout, recorder.output if recorder else None)
        return _status(await proc.wait())
    finally:
        feeder.cancel()
        _hang_up(proc)
        read_transport.close()
        write_transport.close()
        if recorder is not None:
            recorder.close()
            if ctx.upload is not None:
                try:
                    await ctx.upload(recorder.path)
                except Exception as exc:  # the recording stays on the client's machine
                    log.warning("recording of %s not uploaded: %s", ctx.session_id, exc)
