"""The gate's settings: defaults as written by ``qp-relay init``, and refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay.settings import DEFAULT_TOML, Limits, load_settings
from shared.errors import ConfigError


def test_the_written_defaults_are_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "relay.toml"
    path.write_text(DEFAULT_TOML.format(public_url="", tls_cert="", tls_key="", tls_ca=""))
    assert load_settings(path).limits == Limits()
    assert Limits().max_preauth_per_address < Limits().max_preauth


def test_trusted_proxies_are_read(tmp_path: Path) -> None:
    path = tmp_path / "relay.toml"
    path.write_text(
        '[limits]\ntrusted_proxies = ["10.0.0.5", "10.1.0.0/24"]\nproxy_protocol = true\n'
    )
    limits = load_settings(path).limits
    assert limits.trusted_proxies == ("10.0.0.5", "10.1.0.0/24")
    assert limits.proxy_protocol is True


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('trusted_proxies = ["10.0.0.5", "proxy.example"]', "trusted_proxies: 'proxy.example'"),
        ("max_preauth_per_address = 512", "max_preauth_per_address must be below"),
        ("max_preauth_per_address = 0", "max_preauth_per_address must be positive"),
        ("auth_failures_per_identity = 0", "auth_failures_per_identity must be positive"),
        ("auth_failures_per_address = -1", "auth_failures_per_address must be positive"),
        ("throttle_max_keys = 0", "throttle_max_keys must be positive"),
        ("auth_failure_delay_ms = 600000", "auth_failure_delay_ms must be between"),
        ("proxy_protocol = true", "proxy_protocol needs the proxies in limits.trusted_proxies"),
        ('trusted_proxies = ["10.0.0.5"]\nproxy_protocol = 1', "should be like False"),
        ("max_preauth = true", "should be like 512"),  # a bool is no number here
    ],
)
def test_bad_gate_settings_are_refused(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "relay.toml"
    path.write_text(f"[limits]\n{text}\n")
    with pytest.raises(ConfigError, match=problem):
        load_settings(path)
