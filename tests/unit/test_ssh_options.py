"""shared.ssh_options: the one place the console's and the agent's SSH options are made."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import asyncssh
import pytest

from console.ssh_session import host_key_refused
from shared.clock import iso
from shared.keys import generate_key, public_text
from shared.ssh_options import (
    PREFERRED_CIPHERS,
    KnownHosts,
    authorized_for,
    client_options,
    connect,
    server_options,
)
from shared.wstunnel import WebSocketTunnel

CA = generate_key()
KEY = generate_key()
USER_CERT = CA.generate_user_certificate(KEY, "tech", principals=["session:ses-1"])
HOST_CERT = CA.generate_host_certificate(KEY, "agent", principals=["agt-1"])


class RefusingTunnel:
    """A tunnel whose far end is never there: connect() fails before any SSH."""

    async def create_connection(self, *_args: Any) -> Any:
        raise ConnectionRefusedError("no agent behind this tunnel")

    def close(self) -> None:
        pass

    async def wait_closed(self) -> None:
        pass


def test_client_trusts_only_the_host_ca_for_the_agent_id() -> None:
    options = client_options("agt-1", public_text(CA), KEY, USER_CERT)
    plain, authorities, revoked = cast(KnownHosts, options.known_hosts)
    assert (plain, revoked) == ([], [])
    assert [public_text(ca) for ca in authorities] == [public_text(CA)]
    assert options.host_key_alias == "agt-1"  # the principal the host cert must carry
    assert options.username == "qp"
    assert (options.password, options.kbdint_auth, options.gss_auth) == (None, False, False)
    assert options.compression_algs == [b"none"]
    assert options.encryption_algs == [alg.encode() for alg in PREFERRED_CIPHERS]
    assert (options.keepalive_interval, options.login_timeout) == (0, 30)  # liveness: WebSocket


def test_benchmarks_may_choose_the_cipher_and_nothing_else() -> None:
    options = client_options(
        "agt-1", public_text(CA), KEY, USER_CERT, encryption_algs=["chacha20-poly1305@openssh.com"]
    )
    assert options.encryption_algs == [b"chacha20-poly1305@openssh.com"]
    assert options.host_key_alias == "agt-1" and options.compression_algs == [b"none"]


async def test_connect_never_reads_the_users_ssh_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A config asyncssh cannot parse: reading it would raise ConfigParseError.
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "config").write_text("Host *\n    Port not-a-number\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    options = client_options("agt-1", public_text(CA), KEY, USER_CERT)
    tunnel = cast(WebSocketTunnel, RefusingTunnel())
    with pytest.raises(ConnectionRefusedError, match="no agent behind this tunnel"):
        await connect("agt-1", options, tunnel=tunnel)


def test_server_trusts_the_user_ca_for_this_session_only() -> None:
    options = server_options(
        KEY, HOST_CERT, public_text(CA), "ses-1", process_factory=lambda _process: None
    )
    assert list(options.server_host_keys) == [b"ssh-ed25519-cert-v01@openssh.com", b"ssh-ed25519"]
    assert options.sftp_factory is None  # no SFTP unless the caller serves it
    assert (options.agent_forwarding, options.x11_forwarding, options.allow_scp) == (
        False,
        False,
        False,
    )
    assert options.compression_algs == [b"none"]
    assert (options.keepalive_interval, options.login_timeout) == (0, 30)  # liveness: WebSocket


def test_authorized_for_names_the_session_principal() -> None:
    keys = authorized_for(public_text(CA), "ses-1")
    assert isinstance(keys, asyncssh.SSHAuthorizedKeys)
    with pytest.raises(ValueError, match="malformed session id"):
        authorized_for(public_text(CA), 'ses-1" evil')


async def _connect_to_host_cert(host_cert: asyncssh.SSHCertificate) -> None:
    """SSH as the console does (agent ``agt-1``) to a real server on 127.0.0.1
    presenting ``host_cert``."""
    options = server_options(
        KEY, host_cert, public_text(CA), "ses-1", process_factory=lambda p: p.exit(0)
    )
    server = await asyncssh.listen("127.0.0.1", 0, options=options)
    try:
        port = server.sockets[0].getsockname()[1]
        conn = await connect(
            "127.0.0.1", client_options("agt-1", public_text(CA), KEY, USER_CERT), port=port
        )
        conn.close()
        await conn.wait_closed()
    finally:
        server.close()
        await server.wait_closed()


async def test_a_host_certificate_without_principals_is_refused() -> None:
    await _connect_to_host_cert(HOST_CERT)  # control: the agent's own principal works
    anyone = CA.generate_host_certificate(KEY, "agent", principals=[])
    with pytest.raises(asyncssh.HostKeyNotVerifiable, match="names no principals"):
        await _connect_to_host_cert(anyone)
    other = CA.generate_host_certificate(KEY, "agent", principals=["agt-2"])
    with pytest.raises(asyncssh.HostKeyNotVerifiable, match="principal mismatch"):
        await _connect_to_host_cert(other)


async def test_a_host_certificate_refused_for_its_dates_names_the_clocks() -> None:
    now = int(time.time())
    later = CA.generate_host_certificate(
        KEY, "agent", principals=["agt-1"], valid_after=now + 600, valid_before=now + 3600
    )
    with pytest.raises(asyncssh.HostKeyNotVerifiable) as caught:
        await _connect_to_host_cert(later)
    relay_time = iso(datetime.now(UTC) + timedelta(minutes=10, seconds=2))
    line = str(host_key_refused(caught.value, "agt-1", relay_time))
    assert line.startswith("agent agt-1's host certificate is not valid by this computer's clock")
    assert re.search(
        r"the clocks differ: this computer's clock is (9 min 5\d|10 min [0-2]) s behind", line
    ), line
    # Unknown relay time: still names the clocks, without an amount.
    assert "the clocks differ. Set" in str(host_key_refused(caught.value, "agt-1", None))
    # Any other refusal keeps its own line.
    with pytest.raises(asyncssh.HostKeyNotVerifiable) as other:
        await _connect_to_host_cert(CA.generate_host_certificate(KEY, "a", principals=["agt-2"]))
    assert "did not certify" in str(host_key_refused(other.value, "agt-1", relay_time))
