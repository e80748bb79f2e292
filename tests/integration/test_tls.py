"""wss:// with a certificate the machine does not trust by default: verification stays
on; the relay's private CA is trusted by the pin the relay prints (or a CA file), kept
with the profile or the agent so every later command works from any directory."""

from __future__ import annotations

import datetime
import ipaddress
import json
import re
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness import BIN, Proc, World, timeout


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
    assert b"the relay's certificate is not trusted: " in refused.stderr
    assert b"invalid" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1

    world.qp("login", world.url, "--token", world.admin_token, "--ca-file", str(cert))
    world.qp("customer", "add", "Acme")
    _, data = world.enroll("Acme", "pc", "--ca-file", str(cert))
    world.start_agent(data)
    out = world.qp("exec", "pc", "--", "echo", "over tls")
    assert out.stdout == b"over tls\n"


# -- a private CA made by qp-relay init, trusted by its pin ------------------------------


def run_in(
    world: World, cwd: Path, argv: list[str], home: str = "admin", check: bool = True
) -> subprocess.CompletedProcess[bytes]:
    """Run ``argv`` from ``cwd`` (which holds no certificate file)."""
    done = subprocess.run(
        argv, cwd=cwd, env=world.env(home), capture_output=True, timeout=timeout(60)
    )
    if check and done.returncode != 0:
        raise AssertionError(f"{argv} exited {done.returncode}: {done.stderr.decode()}")
    return done


def printed_line(stdout: bytes, after: str) -> list[str]:
    """The command line printed under ``after`` (e.g. "give the client this line:")."""
    lines = stdout.decode().splitlines()
    return shlex.split(lines[lines.index(after) + 1])


def as_installed(argv: list[str]) -> list[str]:
    """The printed line names the program; run this test's copy of it."""
    assert argv[0] == "qp-agent", argv
    return [str(BIN / "qp-agent"), *argv[1:]]


@dataclass
class PinnedRelay:
    world: World
    pin: str
    elsewhere: Path  # the working directory every client command runs in


@pytest.fixture
def pinned(tmp_path: Path) -> Iterator[PinnedRelay]:
    world = World(tmp_path)
    init = world.run(
        [str(BIN / "qp-relay"), "init", "--data", str(world.relay_data), "--json",
         "--tls-names", "127.0.0.1,localhost"]
    )  # fmt: skip
    made = json.loads(init.stdout)
    world.admin_token = made["admin_token"]
    for name in ("ca-key.pem", "server-key.pem", "server.pem"):
        assert (world.relay_data / name).stat().st_mode & 0o777 == 0o600, name
    relay = world.spawn(
        [str(BIN / "qp-relay"), "serve", "--data", str(world.relay_data), "--listen", "127.0.0.1:0"]
    )  # TLS from relay.toml, as init configured it
    world.relay = relay
    world.url = relay.wait_line(r"^listening on ", stream="stdout").split()[-1]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    try:
        yield PinnedRelay(world, made["ca_pin"], elsewhere)
    finally:
        world.close()


def test_login_enroll_and_support_with_the_pin_the_relay_prints(pinned: PinnedRelay) -> None:
    world, pin, cwd = pinned.world, pinned.pin, pinned.elsewhere
    assert world.url.startswith("wss://127.0.0.1:")
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", pin)
    qp = [str(BIN / "qp")]

    # Without the pin: one line saying why, not "invalid URL".
    bare = run_in(world, cwd, [*qp, "login", world.url, "--token", world.admin_token], check=False)
    assert bare.returncode == 1
    (line,) = bare.stderr.decode().splitlines()
    assert line.startswith("qp: the relay's certificate is not trusted: "), line
    assert "invalid" not in line

    run_in(world, cwd, [*qp, "login", world.url, "--token", world.admin_token, "--ca-pin", pin])
    kept = world.root / "qp" / "admin" / "relay-ca.pem"
    assert kept.read_bytes() == (world.relay_data / "ca.pem").read_bytes()
    run_in(world, cwd, [*qp, "customer", "add", "Acme"])

    created = run_in(world, cwd, [*qp, "enroll-token", "create", "--customer", "Acme"])
    enroll_line = printed_line(created.stdout, "give the client this line:")
    assert enroll_line[:2] == ["qp-agent", "enroll"] and enroll_line[-2:] == ["--ca-pin", pin]
    # Test-only additions: a data directory of its own and a name (the line has neither).
    data = world.root / "agent"
    client = "client"
    run_in(world, cwd, [*as_installed(enroll_line), "--data", str(data), "--name", "pc"], client)
    config = json.loads((data / "agent.json").read_text())
    assert config["ca_file"] == str(data / "relay-ca.pem")  # absolute: any directory works
    config["diagnostics"] = {"probe_gateway": False}  # tests never probe the real gateway
    (data / "agent.json").write_text(json.dumps(config))
    world.start_agent(data)
    out = run_in(world, cwd, [*qp, "exec", "pc", "--", "echo", "over tls"])
    assert out.stdout == b"over tls\n"

    code = run_in(world, cwd, [*qp, "support-code", "--customer", "Acme"])
    support_line = printed_line(code.stdout, "the client runs:")
    assert support_line[:2] == ["qp-agent", "support"] and support_line[-2:] == ["--ca-pin", pin]
    # Test-only addition: --no-gateway-probe (the line has none).
    support = Proc(
        [*as_installed(support_line), "--no-gateway-probe"], {**world.env(client)}, cwd=cwd
    )
    world.procs.append(support)
    connected = support.wait_line(r"^\[qp\] connected for Acme as agt-")
    agent_id = re.search(r"as (agt-[0-9a-f]+);", connected)
    assert agent_id, connected
    assert any(a["id"] == agent_id.group(1) for a in world.qp_json("agents"))


def test_a_wrong_pin_is_not_trusted(pinned: PinnedRelay) -> None:
    world, cwd = pinned.world, pinned.elsewhere
    wrong = "sha256:" + ("0" * 64)
    for argv in (
        [str(BIN / "qp"), "login", world.url, "--token", world.admin_token, "--ca-pin", wrong],
        [str(BIN / "qp-agent"), "enroll", world.url, "--token", "qpe_x", "--ca-pin", wrong,
         "--data", str(world.root / "agent")],
        [str(BIN / "qp-agent"), "support", "--relay", world.url, "--code", "ABCD-EFGH",
         "--ca-pin", wrong, "--no-gateway-probe"],
    ):  # fmt: skip
        done = run_in(world, cwd, argv, check=False)
        assert done.returncode == 1
        (line,) = done.stderr.decode().splitlines()
        assert "the relay's certificate is not trusted: " in line, line
    assert not (world.root / "qp" / "admin" / "profile.json").exists()
    assert not (world.root / "agent" / "agent.json").exists()


def test_ca_file_is_kept_in_the_profile_and_works_from_any_directory(
    pinned: PinnedRelay,
) -> None:
    world, elsewhere = pinned.world, pinned.elsewhere
    qp = str(BIN / "qp")
    # Typed as a relative path in the directory holding the file…
    login = [qp, "login", world.url, "--token", world.admin_token, "--ca-file", "ca.pem"]
    run_in(world, world.relay_data, login)
    # …and still good from anywhere else.
    who = json.loads(run_in(world, elsewhere, [qp, "whoami", "--json"]).stdout)
    assert who["name"] == "admin"
    profile = json.loads((world.root / "qp" / "admin" / "profile.json").read_text())
    assert profile["ca_file"] == str(world.root / "qp" / "admin" / "relay-ca.pem")
