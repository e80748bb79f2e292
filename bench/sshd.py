"""A throwaway asyncssh server for the benchmarks' direct-TCP baselines.

``python -m bench.sshd --host-key FILE --host-cert FILE --user-ca FILE --data DIR
[--sftp-root DIR]`` listens on 127.0.0.1:0 with the agent's own server options
(:func:`shared.ssh_options.server_options`: the host certificate, the user CA trusted
for session :data:`bench.common.DIRECT_SESSION_ID` only) and process handler
(:func:`agent.processes.process_handler` around :func:`~agent.processes.handle_process`,
auditing to ``DIR/audit.log`` and recording PTY sessions under ``DIR/recordings`` as the
agent does), prints ``listening on PORT`` on stdout, and serves until SIGTERM or SIGINT.
With ``--sftp-root`` it also serves SFTP with the agent's
:class:`agent.sftp.ConfinedSFTPServer` confined to that directory (auditing to the same
log); without it, SFTP stays off as before.

It is a separate process on purpose: the baselines must be process-to-process,
like the relayed path (console → relay → agent), not sharing one event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import asyncssh

from agent.audit import AgentAudit
from agent.processes import SessionContext, process_handler
from agent.sftp import ConfinedSFTPServer
from bench.common import DIRECT_SESSION_ID
from shared.keys import load_private_key, parse_certificate
from shared.ssh_options import server_options

SFTPFactory = Callable[[asyncssh.SSHServerChannel[bytes]], asyncssh.SFTPServer]


def sftp_factory(root: Path | None, audit: AgentAudit) -> SFTPFactory | None:
    """The agent's confined SFTP server for ``root`` (as serve_session makes it), or none."""
    if root is None:
        return None
    root.mkdir(parents=True, exist_ok=True)
    confined = str(root)
    return lambda chan: ConfinedSFTPServer(chan, confined, audit, DIRECT_SESSION_ID)


async def serve(
    host_key: Path, host_cert: Path, user_ca: Path, data: Path, sftp_root: Path | None
) -> None:
    data.mkdir(parents=True, exist_ok=True)
    audit = AgentAudit(data / "audit.log")
    ctx = SessionContext(DIRECT_SESSION_ID, "bench", audit, recordings=data / "recordings")
    options = server_options(
        load_private_key(host_key),
        parse_certificate(host_cert.read_bytes()),
        user_ca.read_text().strip(),
        DIRECT_SESSION_ID,
        process_factory=process_handler(ctx),
        sftp_factory=sftp_factory(sftp_root, audit),  # off unless --sftp-root
    )
    server = await asyncssh.listen("127.0.0.1", 0, options=options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"listening on {server.get_port()}", flush=True)
    await stop.wait()
    server.close()
    await server.wait_closed()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host-key", type=Path, required=True, help="private host key file")
    parser.add_argument("--host-cert", type=Path, required=True, help="its host certificate")
    parser.add_argument(
        "--user-ca", type=Path, required=True, help="public key of the user CA to trust"
    )
    parser.add_argument(
        "--data", type=Path, required=True, help="directory for the audit log and recordings"
    )
    parser.add_argument(
        "--sftp-root",
        type=Path,
        default=None,
        help="serve SFTP with the agent's ConfinedSFTPServer confined to this directory",
    )
    args = parser.parse_args()
    asyncio.run(serve(args.host_key, args.host_cert, args.user_ca, args.data, args.sftp_root))
    return 0


if __name__ == "__main__":
    sys.exit(main())
