"""A tiny ssh-agent that offers one key and its session certificate to OpenSSH.

Why: OpenSSH reads ``CertificateFile`` right after starting the ProxyCommand,
before ``qp proxy`` has obtained the per-session certificate. Keys from an
``IdentityAgent`` are asked for only when user authentication starts, which is
after the tunnel is up — so ``qp proxy`` serves the certificate this way.

Only REQUEST_IDENTITIES and SIGN_REQUEST (for the one certificate) are answered;
everything else gets SSH_AGENT_FAILURE. The socket lives in a 0700 directory and
is removed once OpenSSH has connected, so a later ``qp proxy`` can bind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import struct
import tempfile
from pathlib import Path

import asyncssh

from shared.errors import RemoteProtocolError

FAILURE, IDENTITIES_ANSWER, SIGN_RESPONSE = 5, 12, 14
REQUEST_IDENTITIES, SIGN_REQUEST = 11, 13
MAX_MESSAGE = 256 * 1024


def socket_dir(qp_home: Path) -> Path:
    """A short, per-user folder (Unix socket paths are limited to ~100 bytes)."""
    return Path(tempfile.gettempdir()) / f"qp-{os.getuid()}"


def socket_prefix(qp_home: Path) -> str:
    """What every socket of this profile starts with: ssh_config's ``IdentityAgent``
    appends ``%h.sock`` to it, so one wildcard block finds any agent's socket."""
    digest = hashlib.sha256(str(qp_home.resolve()).encode()).hexdigest()[:16]
    return str(socket_dir(qp_home) / f"{digest}-")


def socket_path(qp_home: Path, agent_id: str) -> Path:
    """The key agent socket of one target agent (its id is ``agt-`` and hex)."""
    if not all(c.isalnum() or c == "-" for c in agent_id):
        raise RemoteProtocolError(f"the relay named an agent id we cannot use: {agent_id[:40]!r}")
    return Path(f"{socket_prefix(qp_home)}{agent_id}.sock")


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _read_string(data: bytes, offset: int) -> tuple[bytes, int]:
    (length,) = struct.unpack_from(">I", data, offset)
    start = offset + 4
    if start + length > len(data):
        raise ValueError("truncated")
    return data[start : start + length], start + length


def answer(request: bytes, key: asyncssh.SSHKey, cert: asyncssh.SSHCertificate) -> bytes:
    """The reply to one agent-protocol message (without the length prefix)."""
    if not request:
        return bytes([FAILURE])
    kind, body = request[0], request[1:]
    blob = cert.public_data
    if kind == REQUEST_IDENTITIES:
        return bytes([IDENTITIES_ANSWER]) + struct.pack(">I", 1) + _string(blob) + _string(b"qp")
    if kind == SIGN_REQUEST:
        try:
            wanted, offset = _read_string(body, 0)
            data, _ = _read_string(body, offset)
        except (ValueError, struct.error):
            return bytes([FAILURE])
        if wanted != blob:
            return bytes([FAILURE])
        signature = key.sign(data, key.algorithm)
        return bytes([SIGN_RESPONSE]) + _string(signature)
    return bytes([FAILURE])


class KeyAgent:
    """Serves ``key`` + ``cert`` on a Unix socket until closed."""

    def __init__(self, path: Path, key: asyncssh.SSHKey, cert: asyncssh.SSHCertificate) -> None:
        self.path = path
        self._key = key
        self._cert = cert
        self._server: asyncio.AbstractServer | None = None
        self.connected = asyncio.Event()

    async def start(self, wait: float = 30.0) -> None:
        """Bind the socket; waits (bounded) while another ``qp proxy`` holds it."""
        self.path.parent.mkdir(mode=0o700, exist_ok=True)
        os.chmod(self.path.parent, 0o700)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            if not self.path.exists() or not await _alive(self.path):
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
                try:
                    self._server = await asyncio.start_unix_server(self._client, str(self.path))
                    os.chmod(self.path, 0o600)
                    return
                except OSError:
                    pass
            if loop.time() > deadline:
                raise OSError(f"key agent socket {self.path} stays busy")
            await asyncio.sleep(0.05)  # another proxy is mid-authentication

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connected.set()
        # One client is all we serve: free the path for the next qp proxy.
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        try:
            while True:
                header = await reader.readexactly(4)
                (length,) = struct.unpack(">I", header)
                if length > MAX_MESSAGE:
                    return
                reply = answer(await reader.readexactly(length), self._key, self._cert)
                writer.write(_string(reply))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        with contextlib.suppress(FileNotFoundError):
            if self.path.exists() and not self.connected.is_set():
                self.path.unlink()


async def _alive(path: Path) -> bool:
    try:
        _, writer = await asyncio.open_unix_connection(str(path))
    except OSError:
        return False
    writer.close()
    return True
