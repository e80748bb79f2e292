"""``qp forward AGENT -L [BIND:]LPORT:HOST:PORT …``: reach the client's network.

Each local listener carries connections through the session to HOST:PORT as seen
from the agent; the agent checks every destination against the customer's
policy. A line is printed per connection; Ctrl+C ends the session.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import asyncssh

from console import output
from console.profile import Profile
from console.ssh_session import ssh_session
from shared.errors import UnavailableError, UsageError

CHUNK = 64 * 1024


@dataclass(frozen=True)
class ForwardSpec:
    bind: str
    port: int
    host: str
    dest_port: int

    @classmethod
    def parse(cls, text: str) -> ForwardSpec:
        parts = text.rsplit(":", 3)
        if len(parts) == 3:
            parts = ["127.0.0.1", *parts]
        if len(parts) != 4 or not parts[1].isdigit() or not parts[3].isdigit():
            raise UsageError(f"-L {text!r} should be [BIND:]LPORT:HOST:PORT")
        bind, port, host, dest = parts
        if not (0 <= int(port) < 65536 and 0 < int(dest) < 65536) or not host:
            raise UsageError(f"-L {text!r} has an invalid port or host")
        return cls(bind.strip("[]") or "127.0.0.1", int(port), host.strip("[]"), int(dest))


def say(text: str) -> None:
    """One progress line on stderr (it may hold the agent's refusal reason)."""
    output.say(text, err=True)


async def _pipe(reader: asyncio.StreamReader | asyncssh.SSHReader[bytes], writer: object) -> int:
    total = 0
    try:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                break
            total += len(data)
            writer.write(data)  # type: ignore[attr-defined]
            await writer.drain()  # type: ignore[attr-defined]
    except (ConnectionError, asyncssh.Error, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.write_eof()  # type: ignore[attr-defined]
    return total


async def run_forward(profile: Profile, agent: str, specs: list[ForwardSpec]) -> int:
    """Listen locally until Ctrl+C (or the session ends)."""
    async with ssh_session(profile, agent, "forward") as (conn, opened):
        servers: list[asyncio.Server] = []

        def handler(spec: ForwardSpec) -> object:
            async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                peer = writer.get_extra_info("peername")
                where = f"{spec.host}:{spec.dest_port}"
                try:
                    remote_r, remote_w = await conn.open_connection(spec.host, spec.dest_port)
                except asyncssh.ChannelOpenError as exc:
                    say(f"refused {peer[0]}:{peer[1]} → {where}: {exc.reason}")
                    writer.close()
                    return
                say(f"connection {peer[0]}:{peer[1]} → {where}")
                sent, received = await asyncio.gather(
                    _pipe(reader, remote_w), _pipe(remote_r, writer)
                )
                writer.close()
                say(f"closed {peer[0]}:{peer[1]} → {where} ({sent} B out, {received} B in)")

            return serve

        for spec in specs:
            try:
                server = await asyncio.start_server(
                    handler(spec),  # type: ignore[arg-type]
                    spec.bind,
                    spec.port,
                )
            except OSError as exc:
                raise UnavailableError(
                    f"cannot listen on {spec.bind}:{spec.port}: {exc.strerror}"
                ) from None
            servers.append(server)
            bound = server.sockets[0].getsockname()
            say(
                f"forwarding {bound[0]}:{bound[1]} → {spec.host}:{spec.dest_port} "
                f"via {opened.agent_name} (session {opened.session_id})"
            )
        say("press Ctrl+C to end the session")
        try:
            await conn.wait_closed()
        finally:
            for server in servers:
                server.close()
        return 0
