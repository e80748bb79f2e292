"""Compliance tests for the session spine (every Store backend): sessions, their
heartbeats and close, time entries, the audit trail.

Backend-agnostic: only the ``store`` fixture (one run per backend, see conftest.py)
and the interface of ``relay/store/interface.py``. Fixed datetimes, no sleeps.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from relay.model import SessionBeat
from relay.store.interface import Store
from shared.errors import ConflictError
from tests.store.records import at, beat, closing, seed, session, time_entry

# -- sessions ----------------------------------------------------------------------------


async def test_session_lifecycle(store: Store) -> None:
    await seed(store)
    await store.add_session(session())
    assert await store.get_session("ses-1") == session()

    assert await store.set_session_state("ses-1", "connecting") is True
    assert await store.set_session_state("ses-1", "active", started_at=at(1)) is True
    await store.heartbeat_sessions([beat("ses-1", at(10), 300, 900, 9)])
    assert await store.get_session("ses-1") == replace(
        session(),
        state="active",
        started_at=at(1),
        last_seen_at=at(10),
        bytes_to_agent=300,
        bytes_to_technician=900,
        active_minutes=9,
    )

    entry = time_entry()
    assert await store.close_session(closing(entry=entry)) is True
    ended = replace(
        session(),
        state="ended",
        started_at=at(1),
        last_seen_at=at(29),
        ended_at=at(30),
        end_reason="completed",
        bytes_to_agent=1000,
        bytes_to_technician=5000,
        active_minutes=28,
    )
    assert await store.get_session("ses-1") == ended
    assert await store.get_time_entry("te-1") == entry
    assert await store.open_sessions() == []

    # Closing again writes nothing, not even a second entry.
    again = closing(entry=time_entry("te-2"), ended_at=at(40))
    assert await store.close_session(again) is False
    assert await store.list_time_entries() == [entry]
    assert await store.get_session("ses-1") == ended


async def test_state_change_keeps_started_at_when_not_given(store: Store) -> None:
    await seed(store)
    await store.add_session(session())
    await store.set_session_state("ses-1", "active", started_at=at(1))
    await store.set_session_state("ses-1", "active")
    got = await store.get_session("ses-1")
    assert got is not None and got.started_at == at(1)


async def test_close_without_entry_writes_no_entry(store: Store) -> None:
    await seed(store)
    await store.add_session(session())
    assert await store.close_session(closing(entry=None)) is True
    got = await store.get_session("ses-1")
    assert got is not None and got.ended_at == at(30) and got.state == "ended"
    assert await store.list_time_entries() == []


async def test_close_without_last_seen_keeps_the_heartbeat_value(store: Store) -> None:
    await seed(store)
    await store.add_session(session())
    await store.heartbeat_sessions([beat("ses-1", at(10), 1, 2, 3)])
    assert await store.close_session(closing(last_seen_at=None)) is True
    got = await store.get_session("ses-1")
    assert got is not None and got.last_seen_at == at(10)


async def test_close_unknown_session_returns_false(store: Store) -> None:
    await seed(store)
    assert await store.close_session(closing("ses-404", entry=time_entry())) is False
    assert await store.list_time_entries() == []


async def test_close_with_clashing_entry_writes_nothing(store: Store) -> None:
    await seed(store)
    await store.add_session(session("ses-1"))
    await store.add_session(session("ses-2", created_at=at(1)))
    first = time_entry("te-1", "ses-1")
    await store.close_session(closing("ses-1", entry=first))
    with pytest.raises(ConflictError):  # same entry id again
        await store.close_session(closing("ses-2", entry=time_entry("te-1", "ses-2")))
    assert [s.id for s in await store.open_sessions()] == ["ses-2"]
    assert await store.list_time_entries() == [first]


async def test_ended_or_unknown_session_refuses_state_change(store: Store) -> None:
    await seed(store)
    await store.add_session(session())
    await store.close_session(closing())
    assert await store.set_session_state("ses-1", "active", started_at=at(50)) is False
    got = await store.get_session("ses-1")
    assert got is not None and got.state == "ended" and got.started_at is None
    assert await store.set_session_state("ses-404", "active") is False


async def test_heartbeat_touches_only_open_sessions(store: Store) -> None:
    await seed(store)
    await store.add_session(session("ses-1"))
    await store.add_session(session("ses-2", created_at=at(1)))
    await store.close_session(closing("ses-1"))
    ended = await store.get_session("ses-1")

    await store.heartbeat_sessions(
        [
            beat("ses-1", at(45), 7, 7, 7),
            beat("ses-2", at(45), 10, 20, 3),
            beat("ses-404", at(45), 1, 1, 1),
        ]
    )
    await store.heartbeat_sessions([])
    assert await store.get_session("ses-1") == ended
    assert await store.get_session("ses-2") == replace(
        session("ses-2", created_at=at(1)),
        last_seen_at=at(45),
        bytes_to_agent=10,
        bytes_to_technician=20,
        active_minutes=3,
    )


async def test_open_sessions_filtered_by_node_oldest_first(store: Store) -> None:
    await seed(store)
    for id, minute, node in [
        ("ses-3", 2, "node-a"),
        ("ses-1", 0, "node-a"),
        ("ses-2", 1, "node-b"),
        ("ses-4", 3, "node-a"),
    ]:
        await store.add_session(session(id, created_at=at(minute), relay_node=node))
    await store.close_session(closing("ses-4"))
    assert [s.id for s in await store.open_sessions()] == ["ses-1", "ses-2", "ses-3"]
    assert [s.id for s in await store.open_sessions("node-a")] == ["ses-1", "ses-3"]
    assert await store.open_sessions("node-c") == []


async def test_sessions_listed_most_recent_first(store: Store) -> None:
    await seed(store)
    for minute in (0, 2, 1):
        await store.add_session(session(f"ses-{minute}", created_at=at(minute)))
    assert [s.id for s in await store.list_sessions()] == ["ses-2", "ses-1", "ses-0"]
    assert [s.id for s in await store.list_sessions(limit=2)] == ["ses-2", "ses-1"]


async def test_session_id_conflicts(store: Store) -> None:
    await seed(store)
    await store.add_session(session())
    with pytest.raises(ConflictError):
        await store.add_session(session())


# -- time entries ------------------------------------------------------------------------


async def test_time_entry_money_round_trips_exactly(store: Store) -> None:
    await seed(store)
    await store.add_session(session())
    entry = replace(
        time_entry(),
        hourly_rate=Decimal("87.50"),
        amount=Decimal("123456789012345678.0100"),
        details={"rate_source": "contract", "nested": {"steps": [15, 30]}, "ok": True},
    )
    await store.close_session(closing(entry=entry))
    got = await store.get_time_entry("te-1")
    assert got == entry
    assert got is not None
    assert str(got.hourly_rate) == "87.50"
    assert str(got.amount) == "123456789012345678.0100"
    assert isinstance(got.amount, Decimal)
    assert await store.get_time_entry("te-404") is None


async def test_time_entries_listed_most_recent_first(store: Store) -> None:
    await seed(store)
    entries = []
    for i, minute in enumerate((30, 50, 40)):
        await store.add_session(session(f"ses-{i}", created_at=at(i)))
        entry = time_entry(f"te-{i}", f"ses-{i}", created_at=at(minute))
        await store.close_session(closing(f"ses-{i}", entry=entry))
        entries.append(entry)
    assert await store.list_time_entries() == [entries[1], entries[2], entries[0]]
    assert await store.list_time_entries(limit=1) == [entries[1]]


# -- audit -------------------------------------------------------------------------------


async def test_audit_append_and_list_most_recent_first(store: Store) -> None:
    await store.audit(at(0), "login_failed", "anonymous", ip="192.0.2.7")
    await store.audit(at(1), "enroll", "agt-1", "cus-1", token="enr-1", uses_left=0)
    await store.audit(at(2), "session_open", "tec-1", "ses-1")
    records = await store.list_audit()
    assert [(r.at, r.event, r.actor, r.subject, r.detail) for r in records] == [
        (at(2), "session_open", "tec-1", "ses-1", {}),
        (at(1), "enroll", "agt-1", "cus-1", {"token": "enr-1", "uses_left": 0}),
        (at(0), "login_failed", "anonymous", "", {"ip": "192.0.2.7"}),
    ]
    ids = [r.id for r in records]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 3
    assert [r.event for r in await store.list_audit(limit=2)] == ["session_open", "enroll"]


async def test_traffic_minutes_survive_heartbeat_and_close(store: Store) -> None:
    await seed(store)
    await store.add_session(session())
    await store.heartbeat_sessions([SessionBeat("ses-1", at(3), 10, 20, 2, traffic_minutes=(0, 2))])
    got = await store.get_session("ses-1")
    assert got is not None and got.traffic_minutes == (0, 2)
    close = replace(closing("ses-1", None), traffic_minutes=(0, 2, 7))
    assert await store.close_session(close)
    got = await store.get_session("ses-1")
    assert got is not None and got.traffic_minutes == (0, 2, 7)
