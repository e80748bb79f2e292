"""Backoff, durations, settings, close-code errors and the no-I/O guard on shared/protocol."""

from __future__ import annotations

import ast
import random
from pathlib import Path

import pytest

from relay.settings import Settings, load_settings
from shared.backoff import full_jitter
from shared.durations import parse_duration
from shared.errors import (
    AuthError,
    ConfigError,
    QPError,
    UnavailableError,
    UsageError,
    error_from_close,
)

ROOT = Path(__file__).resolve().parents[2]


def test_full_jitter_stays_within_the_growing_cap() -> None:
    rng = random.Random(7)
    for attempt in range(40):
        ceiling = min(30.0, 0.5 * 2**attempt)
        delays = [full_jitter(attempt, 0.5, 30.0, rng) for _ in range(50)]
        assert all(0 <= d <= ceiling for d in delays)
    # Full jitter really spreads: late attempts use the whole [0, cap] range.
    late = [full_jitter(20, 0.5, 30.0, rng) for _ in range(500)]
    assert min(late) < 3 and max(late) > 27


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("24h", 86400), ("7d", 604800)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "-5m", "1w", "h", "1.5h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(UsageError, match="invalid duration"):
        parse_duration(text)


def test_settings_defaults_and_overrides(tmp_path: Path) -> None:
    assert load_settings(tmp_path / "missing.toml") == Settings()
    path = tmp_path / "relay.toml"
    path.write_text('heartbeat_interval = 5\n[billing]\nhourly_rate = "120.50"\n')
    settings = load_settings(path)
    assert settings.heartbeat_interval == 5
    assert str(settings.billing.hourly_rate) == "120.50"
    assert settings.limits.tunnel_token_ttl == 60


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("heartbeat_intervall = 5\n", "unknown setting"),
        ("[limits]\ntunnel_token_ttl = 600\n", "tunnel_token_ttl"),
        ("heartbeat_interval = 120\n", "heartbeat_interval"),
        ('[limits]\npair_timeout = "soon"\n', "should be like"),
        ('[billing]\nrounding = "sideways"\n', "rounding"),
        ("not toml ===\n", "cannot read"),
    ],
)
def test_bad_settings_are_refused_with_the_key(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "relay.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=problem):
        load_settings(path)


ALLOWED_IN_PROTOCOL = {"__future__", "json", "dataclasses", "enum", "typing", "shared.errors"}


def test_protocol_package_does_no_io() -> None:
    for path in (ROOT / "shared" / "protocol").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                    assert node.func.id not in ("open", "print", "input"), path
                continue
            for name in names:
                assert name in ALLOWED_IN_PROTOCOL, f"{path.name} imports {name}"


@pytest.mark.parametrize(
    ("code", "reason", "kind", "text"),
    [
        (1008, "too many failed attempts; retry in a minute", AuthError, None),
        (1013, "busy, retry later", UnavailableError, None),
        (1001, "relay shutting down", UnavailableError, None),
        (1008, "", AuthError, "the relay closed the link (code 1008)"),
        (1000, "  ", UnavailableError, "the relay closed the link (code 1000)"),
        (None, "", UnavailableError, "the link to the relay broke"),
        (1008, "bad\x1b[2Jterminal", AuthError, "bad[2Jterminal"),
    ],
)
def test_a_close_frame_becomes_one_line_error(
    code: int | None, reason: str, kind: type[QPError], text: str | None
) -> None:
    error = error_from_close(code, reason)
    assert type(error) is kind
    assert str(error) == (reason if text is None else text)


def test_a_support_agent_can_leave_the_gateway_alone(tmp_path: Path) -> None:
    from agent.support import SupportRunner

    quiet = SupportRunner("ws://127.0.0.1:1", "CODE", tmp_path / "a", probe_gateway=False)
    assert quiet.diag_options().probe_gateway is False
    assert SupportRunner("ws://127.0.0.1:1", "CODE", tmp_path / "b").diag_options().probe_gateway
