"""Operating a relay, with real processes: ``/metrics`` after a session, ``/readyz``
without keys, JSON logs and log levels, and SIGHUP / ``qp-relay reload`` applying a
changed ``relay.toml`` to the next session while a running one continues (a bad
file is refused with one log line and the settings in force kept)."""

from __future__ import annotations

import asyncio
import json
import os
import signal

import asyncssh

from harness import BIN, World
from relay.app import Listen, Relay
from relay.services.authorities import Authorities
from tests.integration.ops_helpers import (
    HeldSession,
    cert_minutes,
    http_get,
    metrics,
    office_with_agent,
    relay_settings,
    value,
)
from tests.integration.toolkit_helpers import one_line, wait_session_ended, wait_until


def test_metrics_show_a_session_its_bytes_writes_and_a_failed_login(world: World) -> None:
    office_with_agent(world)
    before = metrics(world)
    assert value(before, "qp_agents_online") == 1
    out = world.qp("exec", "ops-pc", "--", "echo", "metrics-hello").stdout
    assert out.strip() == b"metrics-hello"
    bad = world.qp("login", world.url, "--token", "qpt_not-a-token", home="eve", check=False)
    assert bad.returncode != 0

    def moved() -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
        now = metrics(world)
        return now if value(now, "qp_sessions_ended_total", reason="completed") else None

    after = wait_until(moved, "the session's end to be counted")
    assert value(after, "qp_sessions_started_total", kind="exec") == 1
    assert value(after, "qp_sessions_ended_total", reason="completed") == 1
    for direction in ("to_agent", "to_technician"):
        moved_bytes = value(after, "qp_tunnel_bytes_total", direction=direction)
        assert moved_bytes > 1000, direction  # an SSH handshake each way at least
    writes = value(after, "qp_store_write_seconds_count")
    assert writes > value(before, "qp_store_write_seconds_count")
    assert value(after, "qp_store_write_seconds_bucket", le="+Inf") == writes
    assert value(after, "qp_store_write_failures_total") == 0
    assert value(after, "qp_auth_failures_total", kind="console") == 1
    assert value(after, "qp_agents_online") == 1
    assert value(after, "qp_preauth_connections") == 0
    assert value(after, "qp_sessions", state="active") == 0
    # Through a proxy every peer looks local: a forwarded request is refused.
    status, body = http_get(world, "/metrics", {"X-Forwarded-For": "203.0.113.9"})
    assert (status, body) == (403, "forbidden\n")


def test_metrics_are_refused_to_peers_not_allowed(world: World) -> None:
    token = world.init_relay()
    relay_settings(world, metrics_allow=["192.0.2.0/24"])
    world.start_relay(0)
    world.login(token)
    assert http_get(world, "/metrics") == (403, "forbidden\n")
    assert http_get(world, "/healthz") == (200, "ok\n")


async def _get(url: str, path: str) -> tuple[int, str]:
    """``GET path`` without blocking the loop that serves the in-process relay."""
    host, port = url.removeprefix("ws://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET {path} HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n".encode())
    raw = await reader.read()
    writer.close()
    head, _, body = raw.decode().partition("\r\n\r\n")
    return int(head.split()[1]), body


async def test_readyz_is_503_while_the_ca_keys_are_not_loaded(world: World) -> None:
    world.init_relay()
    node = await Relay.open(world.relay_data)
    try:
        url = await node.start(Listen("127.0.0.1", 0))
        assert await _get(url, "/readyz") == (200, "ready\n")
        loaded = node.services.sessions.authorities
        assert loaded is not None
        public_only = Authorities(
            asyncssh.import_public_key(loaded.host_ca_public),
            asyncssh.import_public_key(loaded.user_ca_public),
        )
        node.services.sessions.authorities = public_only
        assert await _get(url, "/readyz") == (503, "not ready: the SSH CA keys are not loaded\n")
        node.services.sessions.authorities = loaded
        assert await _get(url, "/readyz") == (200, "ready\n")
    finally:
        await node.stop()


def test_json_logs_are_one_object_per_line_and_the_level_filters(world: World) -> None:
    office_with_agent(world, "json-pc", "--log-format", "json")
    world.qp("exec", "json-pc", "--", "true")
    relay = world.relay
    assert relay is not None
    relay.wait_line(r'"session ses-[0-9a-f]+ ended: completed')
    lines = [line for line in relay.lines["stderr"] if line != "<eof>"]
    assert lines
    records = [json.loads(line) for line in lines]  # every line parses
    for record in records:
        assert {"time", "level", "logger", "message"} <= set(record), record
    (ended,) = [r for r in records if r["message"].startswith("session ")]
    assert ended["level"] == "info" and ended["logger"] == "qp.relay.sessions"
    assert ended["reason"] == "completed" and ended["session"].startswith("ses-")

    quiet = World(world.root / "quiet")
    try:
        office_with_agent(quiet, "quiet-pc", "--log-format", "json", "--log-level", "warning")
        quiet.qp("exec", "quiet-pc", "--", "true")
        assert quiet.relay is not None
        os.kill(quiet.relay.popen.pid, signal.SIGTERM)
        quiet.relay.popen.wait()
        quiet.relay.wait_line("<eof>")
        logged = [json.loads(line) for line in quiet.relay.lines["stderr"] if line != "<eof>"]
        assert all(r["level"] in ("warning", "error") for r in logged), logged
    finally:
        quiet.close()


async def test_sighup_applies_new_settings_to_the_next_session_only(world: World) -> None:
    agent = office_with_agent(world)
    relay = world.relay
    assert relay is not None
    running = await HeldSession.open(world, agent)
    assert cert_minutes(running.info) == 10
    assert (await running.run("echo before")).strip() == "before"

    relay_settings(world, cert_minutes=3)
    mark = relay.count()
    os.kill(relay.popen.pid, signal.SIGHUP)
    relay.wait_line(r"settings reloaded from", start=mark)

    assert (await running.run("echo after")).strip() == "after"  # not dropped
    following = await HeldSession.open(world, agent)
    assert cert_minutes(following.info) == 3
    assert (await following.run("echo next")).strip() == "next"
    await following.close()
    await running.close()
    for held in (running, following):
        row = wait_session_ended(world, held.id)
        assert row["end_reason"] == "completed", row
    assert relay.popen.poll() is None


async def test_a_bad_relay_toml_is_refused_with_one_line_and_the_old_kept(world: World) -> None:
    agent = office_with_agent(world)
    relay = world.relay
    assert relay is not None
    relay_settings(world, cert_minutes=4)
    path = world.relay_data / "relay.toml"
    path.write_text(path.read_text().replace("[limits]", "[limits\n", 1))  # broken TOML

    mark = relay.count()
    os.kill(relay.popen.pid, signal.SIGHUP)
    line = relay.wait_line(r"reload refused", start=mark)
    assert "relay.toml" in line and "kept" in line
    held = await HeldSession.open(world, agent)  # the relay serves on, old settings
    assert cert_minutes(held.info) == 10
    await held.close()
    new_lines = relay.lines["stderr"][mark:]
    assert [x for x in new_lines if "reload" in x] == [line]

    # qp-relay reload checks the file itself first and refuses it.
    proc = world.run(
        [str(BIN / "qp-relay"), "reload", "--data", str(world.relay_data)], check=False
    )
    assert proc.returncode == 1
    assert "relay keeps its settings" in one_line(proc.stderr)

    # Fixed file, through the command this time: now it applies.
    path.write_text(path.read_text().replace("[limits\n", "[limits]", 1))
    mark = relay.count()
    world.run([str(BIN / "qp-relay"), "reload", "--data", str(world.relay_data)])
    relay.wait_line(r"settings reloaded from", start=mark)
    held = await HeldSession.open(world, agent)
    assert cert_minutes(held.info) == 4
    await held.close()
