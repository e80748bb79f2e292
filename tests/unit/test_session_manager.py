"""The relay's session manager with a fake clock and a real SQLite file: timing,
idempotent ends, heartbeats, crash recovery and tunnel tokens. No sockets."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from relay.services.sessions import SessionManager
from relay.settings import Settings
from relay.store.interface import Store
from shared.clock import FakeClock
from shared.protocol.session_state import Event, State


def manager(store: Store, clock: FakeClock, node: str = "rly-1") -> SessionManager:
    m = SessionManager(store, clock, Settings(), node)
    m.ready_grace = 0  # no late "ready" messages in these tests
    return m


async def activate(m: SessionManager, login_ok: bool = True) -> str:
    live, _ = await m.create("agt-1", "tec-1", "cus-1", "exec")
    await m.advance(live, Event.OFFER)
    await m.advance(live, Event.ACCEPT)
    await m.advance(live, Event.PAIRED)
    if login_ok:
        await m.ready("agt-1", live.row.id)
    return live.row.id


def work(m: SessionManager, sid: str, clock: FakeClock, seconds: int) -> None:
    """``seconds`` of a session in which something happens every half minute."""
    for _ in range(seconds // 30):
        m.count(m.live[sid], "to_technician", b"o" * 300)
        clock.advance(30)
    clock.advance(seconds % 30)
    m.count(m.live[sid], "to_technician", b"o" * 300)


async def test_the_row_exists_before_the_offer(store: Store) -> None:
    m = manager(store, FakeClock())
    live, tokens = await m.create("agt-1", "tec-1", "cus-1", "shell")
    row = await store.get_session(live.row.id)
    assert row is not None and row.state == "requested"
    assert set(tokens) == {"agent", "technician"} and tokens["agent"] != tokens["technician"]


async def test_active_time_becomes_one_draft_entry(store: Store) -> None:
    clock = FakeClock()
    m = manager(store, clock)
    sid = await activate(m)
    work(m, sid, clock, 1000)  # 16 min 40 s → 17 whole minutes at the default 90.00/h
    live = m.live[sid]
    assert await m.end(live, Event.TECHNICIAN_LEFT)
    assert not await m.end(live, Event.CLIENT_LEFT)  # duplicate end: no-op
    (entry,) = await store.list_time_entries()
    assert entry.session_ids == (sid,)
    assert entry.actual_seconds == 1000
    assert entry.billable_minutes == 17
    assert entry.amount == Decimal("25.50")
    assert entry.ended_at - entry.started_at == timedelta(seconds=1000)
    row = await store.get_session(sid)
    assert row is not None and (row.state, row.end_reason) == ("ended", "completed")
    assert sid not in m.live


async def test_a_session_that_never_paired_bills_nothing(store: Store) -> None:
    m = manager(store, FakeClock())
    live, _ = await m.create("agt-1", "tec-1", "cus-1", "exec")
    await m.advance(live, Event.OFFER)
    await m.end(live, Event.DECLINE)
    assert await store.list_time_entries() == []
    row = await store.get_session(live.row.id)
    assert row is not None and row.end_reason == "declined"


async def test_crash_recovery_closes_at_the_last_heartbeat(store: Store) -> None:
    clock = FakeClock()
    m = manager(store, clock)
    sid = await activate(m)
    started = clock.now()
    work(m, sid, clock, 600)
    assert await m.heartbeat_once() == 1
    clock.advance(25)  # seen by nobody: the relay "crashes" here
    # A new process on the same node, an hour later.
    clock.advance(3600)
    fresh = manager(store, clock)
    assert await fresh.recover() == 1
    assert await fresh.recover() == 0  # exactly once
    row = await store.get_session(sid)
    assert row is not None and row.end_reason == "recovered"
    assert row.ended_at == started + timedelta(seconds=600)
    (entry,) = await store.list_time_entries()
    assert entry.actual_seconds == 600


async def test_recovery_leaves_other_nodes_alone(store: Store) -> None:
    clock = FakeClock()
    await activate(manager(store, clock, node="rly-other"))
    assert await manager(store, clock, node="rly-1").recover() == 0


async def test_shutdown_ends_everything_as_relay_shutdown(store: Store) -> None:
    clock = FakeClock()
    m = manager(store, clock)
    sids = [await activate(m), await activate(m)]
    clock.advance(90)
    await m.shutdown()
    for sid in sids:
        row = await store.get_session(sid)
        assert row is not None and row.end_reason == "relay_shutdown"
    # One technician on one machine at once: one piece of work, billed once.
    (entry,) = await store.list_time_entries()
    assert sorted(entry.session_ids) == sorted(sids)


async def test_tunnel_tokens_are_single_use_and_expire(store: Store) -> None:
    clock = FakeClock()
    m = manager(store, clock)
    live, tokens = await m.create("agt-1", "tec-1", "cus-1", "exec")
    sid = live.row.id
    assert m.claim_token(sid, tokens["agent"]) is None  # not offered yet
    await m.advance(live, Event.OFFER)
    assert m.claim_token(sid, "qpx_forged") is None
    assert m.claim_token("ses-other", tokens["agent"]) is None
    assert m.claim_token(sid, tokens["agent"]) == "agent"
    assert m.claim_token(sid, tokens["agent"]) is None  # used
    clock.advance(61)
    assert m.claim_token(sid, tokens["technician"]) is None  # expired
    await m.end(live, Event.SHUTDOWN)


async def test_offers_are_answered_only_by_their_agent(store: Store) -> None:
    m = manager(store, FakeClock())
    live, _ = await m.create("agt-1", "tec-1", "cus-1", "exec")
    await m.advance(live, Event.OFFER)
    m.resolve_offer("agt-intruder", live.row.id, None)
    assert not live.accepted.done()
    m.resolve_offer("agt-1", live.row.id, None)
    await m.wait_accept(live)
    assert live.state is State.CONNECTING
    await m.end(live, Event.SHUTDOWN)


async def test_a_refused_ssh_login_bills_nothing(store: Store) -> None:
    clock = FakeClock()
    m = manager(store, clock)
    sid = await activate(m, login_ok=False)
    await m.ready("agt-intruder", sid)  # only the session's own agent can vouch
    clock.advance(30)
    await m.end(m.live[sid], Event.TECHNICIAN_LEFT)
    assert await store.list_time_entries() == []
    row = await store.get_session(sid)
    assert row is not None and row.started_at is None and row.end_reason == "completed"


async def test_recovery_does_not_bill_a_session_whose_login_never_succeeded(store: Store) -> None:
    clock = FakeClock()
    m = manager(store, clock)
    await activate(m, login_ok=False)
    clock.advance(60)
    await m.heartbeat_once()
    assert await manager(store, clock).recover() == 1
    assert await store.list_time_entries() == []


async def test_the_minutes_with_traffic_are_kept_for_billing(store: Store) -> None:
    clock = FakeClock()
    m = manager(store, clock)
    sid = await activate(m)
    live = m.live[sid]
    for step in (1, 60, 240, 29):  # at 1 s, 61 s, 301 s and 330 s after pairing
        clock.advance(step)
        m.count(live, "to_agent", b"x" * 300)  # above the noise threshold
    await m.end(live, Event.TECHNICIAN_LEFT)
    row = await store.get_session(sid)
    assert row is not None
    assert row.traffic_minutes == (0, 1, 5)
    assert row.active_minutes == 3


async def test_a_minute_with_only_noise_is_idle(store: Store) -> None:
    clock = FakeClock()
    m = manager(store, clock)
    sid = await activate(m)
    live = m.live[sid]
    m.count(live, "to_agent", b"k" * 100)  # minute 0: a rekey-sized trickle, both ways
    m.count(live, "to_technician", b"k" * 100)
    clock.advance(60)
    m.count(live, "to_agent", b"k" * 150)  # minute 1: 150 + 150 bytes, over 256
    m.count(live, "to_technician", b"k" * 150)
    clock.advance(180)  # minutes 2-4: nothing at all
    await m.end(live, Event.TECHNICIAN_LEFT)
    row = await store.get_session(sid)
    assert row is not None and row.traffic_minutes == (1,) and row.active_minutes == 1
