"""Session limits with a fake clock and a real SQLite file: idle timeout, maximum
length, login timeout (never billed), and the per-technician cap. No sockets."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from asyncssh.public_key import SSHOpenSSHCertificate

from relay.model import Agent, Technician
from relay.services.authorities import create_authorities
from relay.services.ports import OfflineChannel
from relay.services.session_limits import certificate_minutes
from relay.services.sessions import OpenRequest, SessionManager
from relay.settings import DEFAULT_TOML, Limits, Settings, load_settings
from relay.store.interface import Store
from shared.clock import FakeClock
from shared.errors import ConfigError, UnavailableError
from shared.keys import generate_key
from shared.protocol.end_text import close_reason, describe
from shared.protocol.session_state import Event


class Online(OfflineChannel):
    """An agent channel on which every agent is online (the cap is checked first)."""

    def online(self, agent_id: str) -> bool:
        return True


def manager(store: Store, clock: FakeClock, **limits: Any) -> SessionManager:
    settings = Settings(limits=dataclasses.replace(Limits(), **limits))
    m = SessionManager(store, clock, settings, "rly-1")
    m.ready_grace = 0  # no late "ready" messages in these tests
    return m


async def activate(m: SessionManager, login_ok: bool = True, tech: str = "tec-1") -> str:
    live, _ = await m.create("agt-1", tech, "cus-1", "shell")
    await m.advance(live, Event.OFFER)
    await m.advance(live, Event.ACCEPT)
    await m.advance(live, Event.PAIRED)
    if login_ok:
        await m.ready("agt-1", live.row.id)
    return live.row.id


async def end_reason(store: Store, sid: str) -> str | None:
    row = await store.get_session(sid)
    assert row is not None
    return row.end_reason


async def test_a_session_idle_past_the_idle_timeout_ends_idle_timeout(store: Store) -> None:
    clock = FakeClock()
    m = manager(store, clock, idle_timeout=30)
    sid = await activate(m)
    live = m.live[sid]
    clock.advance(600)
    m.count(live, "to_agent", b"x" * 300)  # work at 10 min: idle counts from here
    clock.advance(29 * 60)
    m.count(live, "to_agent", b"k" * 100)  # a rekey-sized trickle is not work
    assert await m.sweep_once() == 0
    clock.advance(60)
    assert await m.sweep_once() == 1
    assert await end_reason(store, sid) == "idle_timeout"
    (entry,) = await store.list_time_entries()  # the session itself is billed as usual
    assert entry.session_ids == (sid,)


async def test_work_keeps_a_session_alive(store: Store) -> None:
    clock = FakeClock()
    m = manager(store, clock, idle_timeout=30)
    sid = await activate(m)
    for _ in range(8):  # two hours, something every quarter
        clock.advance(15 * 60)
        m.count(m.live[sid], "to_technician", b"o" * 300)
        assert await m.sweep_once() == 0
    assert sid in m.live


async def test_a_maximum_length_ends_the_session_on_time(store: Store) -> None:
    clock = FakeClock()
    m = manager(store, clock, max_duration=60, idle_timeout=30)
    sid = await activate(m)
    for _ in range(59):  # busy every minute: never idle
        clock.advance(60)
        m.count(m.live[sid], "to_technician", b"o" * 300)
        assert await m.sweep_once() == 0
    clock.advance(60)
    assert await m.sweep_once() == 1
    assert await end_reason(store, sid) == "max_duration"
    (entry,) = await store.list_time_entries()
    assert entry.actual_seconds == 3600


async def test_a_tunnel_without_an_ssh_login_is_closed_and_never_billed(store: Store) -> None:
    clock = FakeClock()
    m = manager(store, clock, login_timeout=60)
    sid = await activate(m, login_ok=False)
    clock.advance(59)
    assert await m.sweep_once() == 0
    clock.advance(1)
    assert await m.sweep_once() == 1
    assert await end_reason(store, sid) == "login_timeout"
    assert await store.list_time_entries() == []
    row = await store.get_session(sid)
    assert row is not None and row.started_at is None


async def test_a_late_login_report_does_not_save_a_closed_tunnel(store: Store) -> None:
    clock = FakeClock()
    m = manager(store, clock, login_timeout=60)
    sid = await activate(m, login_ok=False)
    clock.advance(61)
    await m.sweep_once()
    await m.ready("agt-1", sid)  # too late: the session is gone
    assert await store.list_time_entries() == []


async def test_the_technician_cap_refuses_the_extra_session(store: Store, tmp_path: Path) -> None:
    clock = FakeClock()
    m = manager(store, clock, max_sessions_per_technician=2)
    m.authorities = create_authorities(tmp_path)
    await activate(m)
    await activate(m)
    bob = Technician("tec-2", "bob", 2, "technician", ("cus-1",), clock.now())
    await store.add_technician(bob, "h2")
    await activate(m, tech="tec-2")  # another technician's sessions do not count
    tech = Technician("tec-1", "alice", 1, "technician", ("cus-1",), clock.now())
    agent = Agent("agt-1", "pc-1", "cus-1", "ssh-ed25519 A", "ssh-ed25519 B", clock.now())
    m.channel = Online()
    request = OpenRequest(agent, tech, "exec", generate_key(), {}, False)
    with pytest.raises(UnavailableError, match="max_sessions_per_technician") as refused:
        await m.open(request)
    assert "\n" not in str(refused.value)
    assert len(m.live) == 3  # nothing was offered
    (audit,) = [a for a in await store.list_audit() if a.event == "session_refused"]
    assert (audit.actor, audit.subject) == ("tec-1", "agt-1")


def test_the_end_reason_is_one_line_for_the_technician() -> None:
    why = close_reason("idle_timeout", "idle for 30 minutes")
    assert describe(why) == "session ended: idle for 30 minutes (idle_timeout)"
    assert describe(why, "ses-1") == "session ses-1 ended: idle for 30 minutes (idle_timeout)"
    assert describe("max_duration") == (
        "session ended: it reached the maximum session length (max_duration)"
    )
    assert describe("idle_timeout: \x1b]52;c;AAAA\x07x") is not None
    assert "\x1b" not in (describe("idle_timeout: \x1b]0;owned\x07") or "")


def test_the_certificate_names_the_kind_and_outlives_the_maximum_length(tmp_path: Path) -> None:
    clock = FakeClock()
    authorities = create_authorities(tmp_path)
    limits = Limits(max_duration=120, cert_minutes=10)
    cert = authorities.sign_session_user(
        generate_key(),
        "ses-1",
        "tec-1",
        clock.now(),
        certificate_minutes(limits),
        permit_pty=True,
        permit_port_forwarding=True,
        kind="files",
    )
    assert isinstance(cert, SSHOpenSSHCertificate)
    # asyncssh has no public getter for the key id and validity: read the fields.
    assert cert._key_id == "technician:tec-1/session:ses-1/kind:files"
    assert cert._valid_before == int(clock.now().timestamp()) + 130 * 60
    # A files certificate permits neither a PTY nor port forwards, whatever was asked.
    assert "permit-pty" not in cert.options
    assert "permit-port-forwarding" not in cert.options


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("idle_timeout = 0", "limits.idle_timeout must be positive"),
        ("login_timeout = -1", "limits.login_timeout must be positive"),
        ("max_sessions_per_technician = 0", "limits.max_sessions_per_technician must be"),
        ("idle_timeout = 600", "idle_timeout must not exceed limits.max_duration"),
    ],
)
def test_unsafe_limits_are_refused(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "relay.toml"
    path.write_text(f"[limits]\n{line}\n")
    with pytest.raises(ConfigError, match=message):
        load_settings(path)


def test_the_defaults_are_in_the_written_settings(tmp_path: Path) -> None:
    path = tmp_path / "relay.toml"
    path.write_text(DEFAULT_TOML.format(public_url="", tls_cert="", tls_key="", tls_ca=""))
    limits = load_settings(path).limits
    assert (limits.idle_timeout, limits.max_duration, limits.login_timeout) == (30, 480, 60)
    assert limits.max_sessions_per_technician == 10
