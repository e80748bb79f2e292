"""The pieces of TLS trust and the single-instance lock that need no network."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from relay.settings import Settings
from relay.tls import CA_CERT, SERVER_CERT, ca_pin, create_private_ca, parse_names
from shared.errors import ConflictError, UsageError
from shared.instance_lock import lock_data_dir
from shared.tls_trust import adopt_ca_file, parse_pin, pem_fingerprint

PIN = "sha256:" + "ab" * 32


def test_a_pin_is_normalised_and_a_malformed_one_refused() -> None:
    assert parse_pin(" SHA256:" + "AB" * 32) == PIN
    assert parse_pin("sha256:" + ":".join(["ab"] * 32)) == PIN
    for bad in ("", "ab" * 32, "sha1:" + "ab" * 20, "sha256:" + "ab" * 31, "sha256:" + "zz" * 32):
        with pytest.raises(UsageError, match="should be sha256: and 64 hex digits"):
            parse_pin(bad)


def test_names_are_ip_addresses_or_host_names() -> None:
    names = parse_names("relay.example.com, 127.0.0.1,::1")
    assert [str(n.value) for n in names] == ["relay.example.com", "127.0.0.1", "::1"]
    for bad in ("", " , ", "under_score.example", "a..b"):
        with pytest.raises(UsageError):
            parse_names(bad)


def test_the_private_ca_signs_a_server_certificate_clients_verify(tmp_path: Path) -> None:
    files = create_private_ca(tmp_path, "relay.example.com,127.0.0.1", "rly-test")
    settings = Settings(tls_cert=files.cert, tls_key=files.key, tls_ca=files.ca)
    pin = ca_pin(tmp_path, settings)
    assert pin == pem_fingerprint((tmp_path / CA_CERT).read_bytes())
    assert ca_pin(tmp_path, Settings()) == pin  # the data directory's ca.pem by default
    for name in ("ca-key.pem", "server-key.pem"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600
    # The chain file carries the CA, so a client pinning it finds it in the handshake.
    chain = x509.load_pem_x509_certificates((tmp_path / SERVER_CERT).read_bytes())
    assert len(chain) == 2 and pem_fingerprint(chain[1].public_bytes(Encoding.PEM)) == pin
    # Ordinary verification against the CA alone accepts the server certificate.
    store = x509.verification.Store([chain[1]])
    verifier = (
        x509.verification.PolicyBuilder()
        .store(store)
        .build_server_verifier(x509.DNSName("relay.example.com"))
    )
    verifier.verify(chain[0], [])
    adopt_ca_file(str(tmp_path / CA_CERT), pin)  # the file and the pin agree


def test_a_second_holder_of_a_data_directory_is_refused_naming_the_first(
    tmp_path: Path,
) -> None:
    first = lock_data_dir(tmp_path, "relay.lock", "qp-relay serve")
    with pytest.raises(ConflictError) as refused:
        lock_data_dir(tmp_path, "relay.lock", "qp-relay serve")
    assert f"in use by another qp-relay serve (pid {os.getpid()})" in str(refused.value)
    assert (tmp_path / "relay.lock").read_text() == f"{os.getpid()}\n"
    first.release()
    lock_data_dir(tmp_path, "relay.lock", "qp-relay serve").release()
