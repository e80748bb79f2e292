"""The asyncssh options of a session's two ends: the console's client, the agent's server.

Built here only, so the console, the agent, the tests and the benchmarks cannot drift
apart. Trust is never optional: the client trusts exactly the relay's host CA for the
agent's id, the server trusts exactly the relay's user CA for the session's principal.
Neither end reads ``~/.ssh``: no config file, no agent, no default keys.

Neither end sends SSH keepalives: inside the tunnel the relay cannot tell them from
work, and it bills minutes with traffic (architecture.md §9). Liveness is the
WebSocket ping/pong of each end with the relay (``shared.transport``), which the
relay terminates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import asyncssh
from asyncssh.public_key import SSHOpenSSHCertificate, decode_ssh_certificate

from shared.keys import parse_public_key
from shared.wstunnel import WebSocketTunnel

#: The login name on the agent; access is decided by the certificate's principal.
USERNAME = "qp"
LOGIN_TIMEOUT = 30
#: AES-GCM first: with AES-NI it costs both ends far less CPU than ChaCha20 (bench/).
PREFERRED_CIPHERS = [
    "aes128-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes256-gcm@openssh.com",
    "aes256-ctr",
]

KnownHosts = tuple[list[Any], list[Any], list[Any]]


def known_hosts_for(host_ca: str) -> KnownHosts:
    """Trust exactly the relay's host CA: no plain keys, nothing revoked."""
    return ([], [parse_public_key(host_ca)], [])


class _PrincipalsRequired(asyncssh.SSHClient):
    """Refuses a host certificate that names no principals.

    asyncssh takes a certificate without principals as valid for *any* host (the
    same trap as for user certificates, see :func:`authorized_for`), so one such
    certificate from the host CA would let one agent pose as every other. The check
    wraps the connection's own host-key validation, before any authentication.
    """

    def connection_made(self, conn: asyncssh.SSHClientConnection) -> None:
        validate = conn.validate_server_host_key

        def with_principals(key_data: bytes) -> asyncssh.SSHKey:
            try:
                cert = decode_ssh_certificate(key_data)
            except asyncssh.KeyImportError:
                cert = None  # a plain key: the known hosts (no plain keys) refuse it
            if isinstance(cert, SSHOpenSSHCertificate) and not cert.principals:
                raise asyncssh.HostKeyNotVerifiable(
                    "the host certificate names no principals; it is refused for every agent"
                )
            return validate(key_data)

        conn.validate_server_host_key = with_principals  # type: ignore[method-assign]


def client_options(
    agent_id: str,
    host_ca: str,
    key: asyncssh.SSHKey,
    certificate: asyncssh.SSHCertificate,
    *,
    encryption_algs: Sequence[str] | None = None,
) -> asyncssh.SSHClientConnectionOptions:
    """The console's options for SSH to agent ``agent_id`` as ``key`` + ``certificate``.

    The agent's host certificate must be signed by ``host_ca`` for principal
    ``agent_id`` and name at least one principal. ``encryption_algs`` replaces
    :data:`PREFERRED_CIPHERS` (benchmarks).
    Connect with :func:`connect`: ``asyncssh.connect`` alone would read ``~/.ssh/config``.
    """
    return asyncssh.SSHClientConnectionOptions(
        config=None,
        username=USERNAME,
        known_hosts=known_hosts_for(host_ca),
        # The principal is checked against this, not against whatever host name the
        # caller dials (a tunnel, or 127.0.0.1 in the benchmarks).
        host_key_alias=agent_id,
        client_factory=_PrincipalsRequired,
        client_keys=[(key, certificate)],
        agent_path=None,
        password=None,
        kbdint_auth=False,
        gss_auth=False,
        compression_algs=None,  # zlib would cost CPU on every byte of bulk transfers
        encryption_algs=list(encryption_algs or PREFERRED_CIPHERS),
        login_timeout=LOGIN_TIMEOUT,
        encoding=None,
    )


async def connect(
    host: str,
    options: asyncssh.SSHClientConnectionOptions,
    *,
    tunnel: WebSocketTunnel | None = None,
    port: int | None = None,
) -> asyncssh.SSHClientConnection:
    """``asyncssh.connect`` with :func:`client_options`, through ``tunnel`` or to ``port``.

    ``config=None`` is passed again on purpose: ``asyncssh.connect`` hands its own
    ``config=()`` default over the one in ``options``, and that reads ``~/.ssh/config``.
    """
    where: dict[str, Any] = {}
    if tunnel is not None:
        where["tunnel"] = tunnel
    if port is not None:
        where["port"] = port
    return await asyncssh.connect(host, config=None, options=options, **where)


def authorized_for(user_ca: str, session_id: str) -> asyncssh.SSHAuthorizedKeys:
    """Trust the user CA for exactly this session's principal.

    The ``principals=`` restriction matters: without it asyncssh would accept a
    certificate with no principals at all (spike notes, trap 2).
    """
    if not session_id.replace("-", "").isalnum():
        raise ValueError("malformed session id")
    return asyncssh.import_authorized_keys(
        f'cert-authority,principals="session:{session_id}" {user_ca}\n'
    )


def server_options(
    host_key: asyncssh.SSHKey,
    host_cert: asyncssh.SSHCertificate,
    user_ca: str,
    session_id: str,
    *,
    process_factory: Callable[[asyncssh.SSHServerProcess[bytes]], object] | None,
    sftp_factory: Callable[[asyncssh.SSHServerChannel[bytes]], asyncssh.SFTPServer] | None = None,
    server_factory: Callable[[], asyncssh.SSHServer] | None = None,
) -> asyncssh.SSHServerConnectionOptions:
    """The agent's options for serving session ``session_id``.

    Logins need a certificate from ``user_ca`` for principal ``session:<session_id>``.
    Commands and shells go to ``process_factory`` (refused without one); SFTP is
    off without ``sftp_factory``;
    no agent or X11 forwarding, no scp.
    """
    return asyncssh.SSHServerConnectionOptions(
        config=None,
        server_host_keys=[(host_key, host_cert)],
        authorized_client_keys=authorized_for(user_ca, session_id),
        server_factory=server_factory,
        process_factory=process_factory,
        sftp_factory=sftp_factory,
        encoding=None,
        login_timeout=LOGIN_TIMEOUT,
        agent_forwarding=False,
        x11_forwarding=False,
        allow_scp=False,
        compression_algs=None,
    )
