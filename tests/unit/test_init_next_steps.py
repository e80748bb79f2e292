"""``qp-relay init`` ends with next steps complete enough to copy."""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness.processes import BIN


def init(tmp_path: Path, *flags: str) -> list[str]:
    done = subprocess.run(
        [str(BIN / "qp-relay"), "init", "--data", str(tmp_path / "relay"), *flags],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = done.stdout.splitlines()
    return lines[lines.index("next steps:") + 1 :]


def test_a_private_ca_serves_tls_itself_and_logs_in_with_the_pin(tmp_path: Path) -> None:
    steps = init(tmp_path, "--public-url", "wss://127.0.0.1:9443", "--tls-names", "127.0.0.1")
    assert steps[0].strip() == f"qp-relay serve --data {tmp_path / 'relay'} --listen 0.0.0.0:9443"
    assert steps[1].strip().startswith("qp login wss://127.0.0.1:9443 --token qpt_")
    assert " --ca-pin sha256:" in steps[1]
    assert steps[-1].strip().startswith('qp enroll-token create --customer "First Customer"')


def test_a_public_url_without_certificates_means_a_proxy_in_front(tmp_path: Path) -> None:
    steps = init(tmp_path, "--public-url", "wss://relay.example.nl")
    assert any("trusted_proxies" in line for line in steps)
    assert f"--data {tmp_path / 'relay'} --listen 127.0.0.1:8443" in "\n".join(steps)
    assert any(s.strip().startswith("qp login wss://relay.example.nl --token ") for s in steps)
    assert "--ca-pin" not in "\n".join(steps)


def test_no_url_serves_loopback(tmp_path: Path) -> None:
    steps = init(tmp_path)
    assert "--listen 127.0.0.1:8443" in steps[0]
    assert steps[1].strip().startswith("qp login ws://127.0.0.1:8443 --token qpt_")
