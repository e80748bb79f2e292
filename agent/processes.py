"""Run what the technician asked for: a command or a shell, with or without a PTY.

All I/O is explicit read → write → drain loops; asyncssh's ``redirect()`` loses
or corrupts data under backpressure (spike notes, trap 1).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pwd
import signal
import struct
import termios

import asyncssh

CHUNK = 64 * 1024
SSHProcess = asyncssh.SSHServerProcess[bytes]


def login_shell() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_shell or "/bin/sh"
    except KeyError:
        return "/bin/sh"


def _argv(command: str | None) -> list[str]:
    shell = login_shell()
    return [shell, "-c", command] if command else [shell, "-l"]


async def handle_process(process: SSHProcess) -> None:
    """asyncssh ``process_factory``: exit status always reaches the technician."""
    try:
        if process.get_terminal_type():
            status = await _run_pty(process)
        else:
            status = await _run_pipes(process)
    except (asyncssh.Error, ConnectionError, BrokenPipeError):
        return
    except OSError as exc:
        with contextlib.suppress(Exception):
            process.stderr.write(f"qp-agent: cannot start: {exc.strerror}\r\n".encode())
        status = 127
    process.exit(status)


def _status(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


async def _copy(reader: asyncio.StreamReader, writer: asyncssh.SSHWriter[bytes]) -> None:
    while True:
        data = await reader.read(CHUNK)
        if not data:
            return
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


async def _run_pty(process: SSHProcess) -> int:
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

    async def feed() -> None:
        try:
            while True:
                try:
                    data = await process.stdin.read(CHUNK)
                except asyncssh.TerminalSizeChanged as change:
                    _set_winsize(
                        master, (change.width, change.height, change.pixwidth, change.pixheight)
                    )
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGWINCH)
                    continue
                except asyncssh.BreakReceived:
                    continue
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass

    feeder = asyncio.create_task(feed())
    try:
        with contextlib.suppress(OSError):  # EIO once the last slave fd closes
            await _copy(reader, process.stdout)
        return _status(await proc.wait())
    finally:
        feeder.cancel()
        _hang_up(proc)
        read_transport.close()
        write_transport.close()
