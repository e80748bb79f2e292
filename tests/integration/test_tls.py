"""wss:// with a certificate the machine does not trust by default: verification stays
on, and a private CA file is the way to trust it."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness import BIN, World


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "qp test relay")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "relay.crt", directory / "relay.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


@pytest.fixture
def tls_world(tmp_path: Path) -> Iterator[tuple[World, Path]]:
    world = World(tmp_path)
    cert, key = self_signed(tmp_path)
    world.init_relay()
    relay = world.spawn(
        [
            str(BIN / "qp-relay"),
            "serve",
            "--data",
            str(world.relay_data),
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            str(cert),
            "--tls-key",
            str(key),
        ]
    )
    world.relay = relay
    world.url = relay.wait_line(r"^listening on ", stream="stdout").split()[-1]
    try:
        yield world, cert
    finally:
        world.close()


def test_wss_end_to_end_with_a_private_ca(tls_world: tuple[World, Path]) -> None:
    world, cert = tls_world
    assert world.url.startswith("wss://127.0.0.1:")
    refused = world.qp("login", world.url, "--token", world.admin_token, check=False)
    assert refused.returncode == 1
    assert b"certificate verify failed" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1

    world.qp("login", world.url, "--token", world.admin_token, "--ca-file", str(cert))
    world.qp("customer", "add", "Acme")
    token = world.qp_json("enroll-token", "create", "--customer", "Acme")["token"]
    data = world.root / "agent"
    world.run(
        [
            str(BIN / "qp-agent"),
            "enroll",
            world.url,
            "--token",
            token,
            "--name",
            "pc",
            "--ca-file",
            str(cert),
            "--data",
            str(data),
        ]
    )
    world.start_agent(data)
    out = world.qp("exec", "pc", "--", "echo", "over tls")
    assert out.stdout == b"over tls\n"
