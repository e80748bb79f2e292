"""The relay's two SSH certificate authorities: host CA and user CA."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import asyncssh

from shared.clock import CERT_CLOCK_SKEW
from shared.keys import generate_key, load_private_key, public_text, save_private_key

HOST_CA_FILE = "host_ca"
USER_CA_FILE = "user_ca"
#: Tolerated clock difference between relay and agent when checking validity.
CLOCK_SKEW = CERT_CLOCK_SKEW


@dataclass(frozen=True)
class Authorities:
    host_ca: asyncssh.SSHKey
    user_ca: asyncssh.SSHKey

    @property
    def loaded(self) -> bool:
        """Whether both CA keys are private keys this relay can sign with."""
        try:
            return bool(self.host_ca.private_data and self.user_ca.private_data)
        except asyncssh.KeyExportError:  # a public key only
            return False

    @property
    def host_ca_public(self) -> str:
        return public_text(self.host_ca)

    @property
    def user_ca_public(self) -> str:
        return public_text(self.user_ca)

    def sign_host(
        self, host_key: asyncssh.SSHKey, agent_id: str, now: datetime, days: int
    ) -> asyncssh.SSHCertificate:
        """Host certificate for an agent: principal = agent id."""
        return self.host_ca.generate_host_certificate(
            host_key,
            key_id=f"agent:{agent_id}",
            principals=[agent_id],
            valid_after=int((now - CLOCK_SKEW).timestamp()),
            valid_before=int((now + timedelta(days=days)).timestamp()),
        )

    def sign_session_user(
        self,
        user_key: asyncssh.SSHKey,
        session_id: str,
        technician_id: str,
        now: datetime,
        minutes: int,
        permit_pty: bool,
        permit_port_forwarding: bool,
        kind: str = "",
    ) -> asyncssh.SSHCertificate:
        """Per-session user certificate: principal ``session:<id>``, minutes of
        validity, and only the extensions the policy allows. The key id names the
        session ``kind``; a ``files`` session gets neither a PTY nor port forwards
        here, and the agent serves it the SFTP subsystem only (agent/sshserver.py)."""
        files = kind == "files"
        return self.user_ca.generate_user_certificate(
            user_key,
            key_id=f"technician:{technician_id}/session:{session_id}/kind:{kind or 'any'}",
            principals=[f"session:{session_id}"],
            valid_after=int((now - CLOCK_SKEW).timestamp()),
            valid_before=int((now + timedelta(minutes=minutes)).timestamp()),
            permit_pty=permit_pty and not files,
            permit_port_forwarding=permit_port_forwarding and not files,
            permit_agent_forwarding=False,
            permit_x11_forwarding=False,
            permit_user_rc=False,
        )


def create_authorities(data_dir: Path) -> Authorities:
    """Make both CA keys (0600) in ``data_dir``."""
    host_ca, user_ca = generate_key(), generate_key()
    save_private_key(data_dir / HOST_CA_FILE, host_ca)
    save_private_key(data_dir / USER_CA_FILE, user_ca)
    return Authorities(host_ca, user_ca)


def load_authorities(data_dir: Path) -> Authorities:
    return Authorities(
        load_private_key(data_dir / HOST_CA_FILE), load_private_key(data_dir / USER_CA_FILE)
    )
