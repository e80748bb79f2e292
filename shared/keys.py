"""SSH keys, certificates and the agent's challenge signature (asyncssh under the hood)."""

from __future__ import annotations

import base64
from pathlib import Path

import asyncssh

from shared.errors import AuthError, ConfigError, RemoteProtocolError
from shared.secrets_io import write_private

#: Domain separation for the agent-link challenge, so the signature cannot be
#: replayed as anything else the identity key might sign.
_CHALLENGE_CONTEXT = b"quarkpulse agent-link v1\x00"


def generate_key() -> asyncssh.SSHKey:
    """A fresh Ed25519 private key."""
    return asyncssh.generate_private_key("ssh-ed25519")


def save_private_key(path: Path, key: asyncssh.SSHKey) -> None:
    """Store ``key`` in OpenSSH format, mode 0600."""
    write_private(path, key.export_private_key("openssh"))


def load_private_key(path: Path) -> asyncssh.SSHKey:
    """Read a private key written by :func:`save_private_key`."""
    try:
        return asyncssh.read_private_key(str(path))
    except (OSError, asyncssh.KeyImportError) as exc:
        raise ConfigError(f"cannot read key {path}: {exc}") from exc


def public_text(key: asyncssh.SSHKey) -> str:
    """The OpenSSH one-line public key (``ssh-ed25519 AAAA…``)."""
    return key.export_public_key("openssh").decode().strip()


def parse_public_key(text: str) -> asyncssh.SSHKey:
    """Parse a peer-supplied OpenSSH public key; refuse anything else."""
    try:
        return asyncssh.import_public_key(text)
    except (asyncssh.KeyImportError, ValueError, TypeError) as exc:
        raise RemoteProtocolError("malformed public key") from exc


def parse_certificate(text: str | bytes) -> asyncssh.SSHCertificate:
    """Parse an OpenSSH certificate."""
    try:
        return asyncssh.import_certificate(text)
    except (asyncssh.KeyImportError, ValueError, TypeError) as exc:
        raise RemoteProtocolError("malformed certificate") from exc


def certificate_text(cert: asyncssh.SSHCertificate) -> str:
    """The OpenSSH one-line form of ``cert``."""
    return cert.export_certificate("openssh").decode().strip()


def challenge_payload(nonce: str, relay_id: str) -> bytes:
    """The exact bytes an agent signs to prove it holds its identity key."""
    return _CHALLENGE_CONTEXT + nonce.encode() + b"\x00" + relay_id.encode()


def sign_challenge(key: asyncssh.SSHKey, nonce: str, relay_id: str) -> str:
    """Signature over the challenge, base64."""
    return base64.b64encode(key.sign(challenge_payload(nonce, relay_id), key.algorithm)).decode()


def verify_challenge(public_key: str, signature: str, nonce: str, relay_id: str) -> None:
    """Raise :class:`AuthError` unless ``signature`` is valid for the challenge."""
    try:
        key = asyncssh.import_public_key(public_key)
        raw = base64.b64decode(signature, validate=True)
        ok = key.verify(challenge_payload(nonce, relay_id), raw)
    except (asyncssh.KeyImportError, ValueError, TypeError):
        ok = False
    if not ok:
        raise AuthError("authentication failed")
