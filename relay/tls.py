"""The relay's TLS: a private CA made by ``qp-relay init``, or the operator's files.

A generated CA lives in the data directory (``ca.pem``, ``ca-key.pem`` 0600) with a
server certificate for the names given (``server.pem`` = certificate + CA, so a
client pinning the CA finds it in the handshake; ``server-key.pem`` 0600).
``relay.toml``'s ``tls_cert``/``tls_key``/``tls_ca`` name the files serve uses;
relative paths are relative to the data directory.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from relay.settings import Settings
from shared.errors import ConfigError, UsageError
from shared.secrets_io import write_private
from shared.tls_trust import load_certificates, pem_fingerprint

CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"
SERVER_CERT = "server.pem"
SERVER_KEY = "server-key.pem"
CA_DAYS = 3650
SERVER_DAYS = 3650  # a private CA pinned by its clients: no public 398-day rule applies

_HOST_NAME = re.compile(r"^(?=.{1,253}$)(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.?)+$", re.I)


@dataclass(frozen=True)
class TlsFiles:
    """What ``relay.toml`` records: certificate chain, key, and the CA (may be empty)."""

    cert: str
    key: str
    ca: str = ""


def parse_names(text: str) -> list[x509.GeneralName]:
    """``relay.example.com,127.0.0.1`` as subject alternative names."""
    names: list[x509.GeneralName] = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(item.strip("[]"))))
            continue
        except ValueError:
            pass
        if not _HOST_NAME.match(item):
            raise UsageError(f"--tls-names: {item!r} is neither a host name nor an IP address")
        names.append(x509.DNSName(item.lower().rstrip(".")))
    if not names:
        raise UsageError("--tls-names needs at least one name, e.g. relay.example.com,127.0.0.1")
    return names


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def create_private_ca(data_dir: Path, names_text: str, relay_id: str) -> TlsFiles:
    """A new CA and a server certificate for ``names_text`` in ``data_dir``."""
    names = parse_names(names_text)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Quarkpulse relay"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Quarkpulse relay CA {relay_id}"),
        ]
    )
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    first = names[0].value
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, str(first))]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    write_private(data_dir / CA_KEY, _pem_key(ca_key))
    write_private(data_dir / CA_CERT, ca_pem)
    write_private(data_dir / SERVER_KEY, _pem_key(key))
    write_private(data_dir / SERVER_CERT, cert.public_bytes(serialization.Encoding.PEM) + ca_pem)
    return TlsFiles(SERVER_CERT, SERVER_KEY, CA_CERT)


def given_files(cert: Path | None, key: Path | None, ca: Path | None) -> TlsFiles:
    """The operator's own files, checked now and recorded by absolute path."""
    if not (cert and key):
        raise UsageError("--tls-cert and --tls-key go together")
    server_context(cert, key)
    if ca is not None:
        load_certificates(_read(ca, "--tls-ca"), f"--tls-ca {ca}")
    return TlsFiles(str(cert.resolve()), str(key.resolve()), str(ca.resolve()) if ca else "")


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """The listening socket's TLS context; one clear line if the files do not load."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        why = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
        raise ConfigError(f"cannot load TLS certificate {cert} with key {key}: {why}") from None
    return context


def configured(data_dir: Path, settings: Settings) -> tuple[Path, Path] | None:
    """The certificate and key ``relay.toml`` names, if any."""
    if not (settings.tls_cert or settings.tls_key):
        return None
    if not (settings.tls_cert and settings.tls_key):
        raise ConfigError("relay.toml: tls_cert and tls_key go together")
    return data_dir / settings.tls_cert, data_dir / settings.tls_key


def ca_pin(data_dir: Path, settings: Settings) -> str:
    """The pin of the private CA clients should trust: ``tls_ca`` or the data
    directory's ``ca.pem``; empty when there is none (a public certificate)."""
    path = data_dir / (settings.tls_ca or CA_CERT)
    if not settings.tls_ca and not path.exists():
        return ""
    return pem_fingerprint(_read(path, "tls_ca"))
