"""``qp put`` and ``qp get``: files over SFTP inside a session.

Modes and modification times are kept (``preserve``); directories need ``-r``. A
progress bar with rate and ETA is shown on a terminal, never when piped or with
``--quiet``. The agent confines SFTP to its allowed root; a refusal comes back
as one line.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncssh

from console.profile import Profile
from console.ssh_session import ssh_session
from shared.errors import NotFoundError, QPError, UsageError

Progress = Callable[[bytes, bytes, int, int], None]
#: 1 MiB requests moved more through the relay than asyncssh's 4 MiB default (bench/).
SFTP_BLOCK = 1024 * 1024


@contextmanager
def _progress(show: bool) -> Iterator[Progress | None]:
    if not show:
        yield None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        TaskID,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    from rich.progress import (
        Progress as Bar,
    )

    bar = Bar(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        transient=False,
    )
    tasks: dict[bytes, TaskID] = {}

    def update(src: bytes, dst: bytes, done: int, total: int) -> None:
        if src not in tasks:
            name = Path(src.decode(errors="replace")).name[:40]
            tasks[src] = bar.add_task(name, total=total or None)
        bar.update(tasks[src], completed=done)

    with bar:
        yield update


def _translate(exc: Exception) -> QPError:
    if isinstance(exc, asyncssh.SFTPNoSuchFile):
        return NotFoundError(f"no such file: {exc.reason}")
    if isinstance(exc, asyncssh.SFTPPermissionDenied):
        return UsageError(f"refused by the agent: {exc.reason}")
    if isinstance(exc, asyncssh.SFTPFailure):
        return UsageError(f"transfer failed: {exc.reason}")
    if isinstance(exc, asyncssh.SFTPError):
        return UsageError(f"transfer failed: {exc.reason}")
    return UsageError(f"transfer failed: {exc}")


def _show(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


async def put(
    profile: Profile, agent: str, local: list[str], remote: str, recurse: bool, quiet: bool
) -> int:
    """Copy local files (or trees with ``recurse``) to ``remote`` on the agent."""
    for path in local:
        p = Path(path)
        if not p.exists():
            raise NotFoundError(f"no such local file: {path}")
        if p.is_dir() and not recurse:
            raise UsageError(f"{path} is a directory; use -r to copy it")
    async with ssh_session(profile, agent, "files") as (conn, _):
        async with conn.start_sftp_client() as sftp:
            with _progress(_show(quiet)) as progress:
                try:
                    await sftp.put(
                        local,
                        remote,
                        recurse=recurse,
                        preserve=True,
                        progress_handler=progress,
                        block_size=SFTP_BLOCK,
                    )
                except (asyncssh.SFTPError, OSError) as exc:
                    raise _translate(exc) from exc
    return 0


async def get(
    profile: Profile, agent: str, remote: list[str], local: str, recurse: bool, quiet: bool
) -> int:
    """Copy files (or trees with ``recurse``) from the agent to ``local``."""
    async with ssh_session(profile, agent, "files") as (conn, _):
        async with conn.start_sftp_client() as sftp:
            with _progress(_show(quiet)) as progress:
                try:
                    await sftp.get(
                        remote,
                        local,
                        recurse=recurse,
                        preserve=True,
                        progress_handler=progress,
                        block_size=SFTP_BLOCK,
                    )
                except (asyncssh.SFTPError, OSError) as exc:
                    raise _translate(exc) from exc
    return 0
