"""Trusting a relay's private certificate authority without copying files around.

The relay prints its CA's fingerprint (``--ca-pin sha256:<hex>``: SHA-256 of the
CA certificate's DER SubjectPublicKeyInfo, as kubeadm's discovery-token-ca-cert-hash).
A client given the pin reads the certificate chain the relay presents in a TLS
handshake, keeps the certificate whose key matches the pin, and stores it; every
connection after that verifies normally against the stored CA (chain and host name).
The discovery handshake sends nothing: it only reads certificates.
"""

from __future__ import annotations

import _ssl
import asyncio
import hashlib
import re
import socket
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from shared.errors import AuthError, ConfigError, UnavailableError, UsageError
from shared.secrets_io import write_private

#: The file a profile or an agent directory keeps the relay's CA in.
CA_FILE_NAME = "relay-ca.pem"
PIN_PREFIX = "sha256:"
DISCOVERY_TIMEOUT = 10.0
NOT_TRUSTED = "the relay's certificate is not trusted"


def fingerprint(cert: x509.Certificate) -> str:
    """``sha256:<hex>`` of the certificate's DER SubjectPublicKeyInfo."""
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return PIN_PREFIX + hashlib.sha256(spki).hexdigest()


def pem_fingerprint(pem: bytes) -> str:
    """The fingerprint of the first certificate in a PEM file's text."""
    return fingerprint(load_certificates(pem, "the CA file")[0])


def load_certificates(pem: bytes, what: str) -> list[x509.Certificate]:
    """Every certificate in PEM text; ConfigError when there is none."""
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError:
        certs = []
    if not certs:
        raise ConfigError(f"{what} holds no PEM certificate")
    return certs


def parse_pin(text: str) -> str:
    """A ``--ca-pin`` value, normalised (lower case, no colons); UsageError if malformed."""
    value = text.strip().lower()
    digits = value.removeprefix(PIN_PREFIX).replace(":", "")
    if not value.startswith(PIN_PREFIX) or not re.fullmatch(r"[0-9a-f]{64}", digits):
        raise UsageError(
            f"--ca-pin {text!r} should be sha256: and 64 hex digits, as the relay prints it"
        )
    return PIN_PREFIX + digits


def _unverified_chain(sock: ssl.SSLSocket) -> list[bytes]:
    """DER certificates the peer presented, leaf first (public from Python 3.13;
    the same method of the underlying object before that)."""
    public = getattr(sock, "get_unverified_chain", None)
    if public is not None:
        return [bytes(der) for der in public()]
    inner: Any = getattr(sock, "_sslobj")  # noqa: B009 - private before 3.13
    der_format = getattr(_ssl, "ENCODING_DER")  # noqa: B009 - not in the type stubs
    return [bytes(cert.public_bytes(der_format)) for cert in inner.get_unverified_chain()]


def _presented_chain(host: str, port: int) -> list[bytes]:
    # Verification is off for this handshake only: it reads the chain and sends
    # nothing; the pin decides which certificate to trust, and every connection
    # after it verifies chain and host name against that certificate.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((host, port), timeout=DISCOVERY_TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        return _unverified_chain(tls)


async def discover_ca(url: str, pin: str) -> bytes:
    """The PEM certificate the relay at ``url`` presents whose key matches ``pin``.

    Raises AuthError ("… not trusted: …") when none matches."""
    parts = urlsplit(url)
    if parts.scheme != "wss":
        raise UsageError(f"--ca-pin needs a wss:// relay URL, not {url!r}")
    try:
        host, port = parts.hostname or "", parts.port or 443
    except ValueError as exc:
        raise UsageError(f"invalid relay URL {url!r}: {exc}") from None
    try:
        chain = await asyncio.to_thread(_presented_chain, host, port)
    except (OSError, TimeoutError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        base = f"{parts.scheme}://{parts.netloc}"
        raise UnavailableError(f"cannot reach the relay at {base}: {reason}") from None
    for der in chain:
        cert = x509.load_der_x509_certificate(der)
        if fingerprint(cert) == pin:
            return cert.public_bytes(serialization.Encoding.PEM)
    raise AuthError(
        f"{NOT_TRUSTED}: none of the {len(chain)} certificate(s) it presented matches "
        f"--ca-pin {pin}; check the pin with the relay's operator"
    )


def adopt_ca_file(source: str, pin: str | None) -> bytes:
    """The PEM text of ``--ca-file`` (checked against ``pin`` when both are given)."""
    try:
        pem = Path(source).expanduser().read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read --ca-file {source}: {exc.strerror or exc}") from None
    certs = load_certificates(pem, f"--ca-file {source}")
    if pin is not None and all(fingerprint(c) != pin for c in certs):
        raise AuthError(f"{NOT_TRUSTED}: --ca-file {source} does not match --ca-pin {pin}")
    return pem


async def relay_ca(url: str, ca_file: str | None, ca_pin: str | None) -> bytes | None:
    """What to trust for ``url`` from ``--ca-file``/``--ca-pin`` (None: the system's CAs)."""
    pin = parse_pin(ca_pin) if ca_pin else None
    if ca_file:
        return adopt_ca_file(ca_file, pin)
    if pin:
        return await discover_ca(url, pin)
    return None


def store_ca(directory: Path, pem: bytes, name: str = CA_FILE_NAME) -> str:
    """Keep ``pem`` in ``directory``; its absolute path (works from any directory)."""
    path = (directory / name).absolute()
    write_private(path, pem)
    return str(path)
