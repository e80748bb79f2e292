"""Behaviour every :class:`relay.store.interface.Store` implementation must share.

Backend-agnostic: only the ``store`` fixture (one run per backend, see conftest.py)
and the interface of ``relay/store/base.py``. Fixed datetimes, no sleeps.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from relay.model import (
    Agent,
    Customer,
    EnrollToken,
    Session,
    SessionBeat,
    SessionClose,
    SupportCode,
    Technician,
    TimeEntry,
)
from relay.store.interface import Store
from shared.errors import ConflictError

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


EXPIRES = at(60)  # default expiry of enrollment tokens
ENDED = at(30)  # default end of sessions, and creation of their time entries
LAST_SEEN = at(29)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def customer(id: str = "cus-1", name: str = "Acme GmbH") -> Customer:
    return Customer(id=id, name=name, created_at=T0)


def technician(
    id: str = "tec-1", name: str = "alice", customer_ids: tuple[str, ...] = ("cus-1",)
) -> Technician:
    return Technician(
        id=id, name=name, level=2, role="technician", customer_ids=customer_ids, created_at=T0
    )


def agent(id: str = "agt-1", name: str = "frontdesk-pc", customer_id: str = "cus-1") -> Agent:
    return Agent(
        id=id,
        name=name,
        customer_id=customer_id,
        identity_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIdentity agent",
        host_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHost agent",
        enrolled_at=T0,
    )


def enroll_token(
    id: str = "enr-1", uses_left: int = 1, expires_at: datetime = EXPIRES, created_at: datetime = T0
) -> EnrollToken:
    return EnrollToken(
        id=id,
        customer_id="cus-1",
        expires_at=expires_at,
        uses_left=uses_left,
        created_by="tec-1",
        created_at=created_at,
    )


def session(id: str = "ses-1", created_at: datetime = T0, relay_node: str = "node-a") -> Session:
    return Session(
        id=id,
        agent_id="agt-1",
        technician_id="tec-1",
        customer_id="cus-1",
        kind="shell",
        state="requested",
        created_at=created_at,
        relay_node=relay_node,
        ticket="T-1234",
    )


def time_entry(
    id: str = "te-1", session_id: str = "ses-1", created_at: datetime = ENDED
) -> TimeEntry:
    return TimeEntry(
        id=id,
        session_ids=(session_id,),
        customer_id="cus-1",
        agent_id="agt-1",
        technician_id="tec-1",
        started_at=at(1),
        ended_at=at(30),
        actual_seconds=1740,
        billable_minutes=30,
        hourly_rate=Decimal("87.50"),
        amount=Decimal("43.75"),
        status="draft",
        created_at=created_at,
        ticket="T-1234",
        notes="printer driver reinstalled",
        details={"rounding": "15min", "increments": 2, "minimum_minutes": 15},
    )


def closing(
    session_id: str = "ses-1",
    entry: TimeEntry | None = None,
    ended_at: datetime = ENDED,
    last_seen_at: datetime | None = LAST_SEEN,
) -> SessionClose:
    return SessionClose(
        session_id=session_id,
        state="ended",
        end_reason="completed",
        ended_at=ended_at,
        last_seen_at=last_seen_at,
        bytes_to_agent=1000,
        bytes_to_technician=5000,
        active_minutes=28,
        entry=entry,
    )


def beat(
    session_id: str, last_seen_at: datetime | None, to_agent: int, to_tech: int, minutes: int
) -> SessionBeat:
    """A heartbeat of an active session."""
    return SessionBeat(
        session_id=session_id,
        last_seen_at=last_seen_at,
        bytes_to_agent=to_agent,
        bytes_to_technician=to_tech,
        active_minutes=minutes,
    )


async def seed(store: Store) -> None:
    """One customer, one technician (token "tech-token") and one agent."""
    await store.add_customer(customer())
    await store.add_technician(technician(), token_hash("tech-token"))
    await store.add_agent(agent())


# -- lifecycle and meta ------------------------------------------------------------------


async def test_close_is_idempotent(store: Store) -> None:
    await store.close()
    await store.close()


async def test_meta_get_and_set(store: Store) -> None:
    assert await store.get_meta("relay_id") is None
    await store.set_meta("relay_id", "relay-1")
    assert await store.get_meta("relay_id") == "relay-1"
    await store.set_meta("relay_id", "relay-2")
    assert await store.get_meta("relay_id") == "relay-2"
    assert await store.get_meta("other") is None


# -- customers ---------------------------------------------------------------------------


async def test_customer_round_trip(store: Store) -> None:
    acme = customer()
    await store.add_customer(acme)
    assert await store.get_customer("cus-1") == acme
    assert await store.find_customer("ACME gmbh") == acme
    assert await store.get_customer("cus-404") is None
    assert await store.find_customer("Nobody Ltd") is None


async def test_customer_name_conflicts_case_insensitively(store: Store) -> None:
    await store.add_customer(customer("cus-1", "Acme GmbH"))
    with pytest.raises(ConflictError):
        await store.add_customer(customer("cus-2", "ACME GMBH"))
    assert await store.list_customers() == [customer("cus-1", "Acme GmbH")]


async def test_customer_id_conflicts(store: Store) -> None:
    await store.add_customer(customer("cus-1", "Acme GmbH"))
    with pytest.raises(ConflictError):
        await store.add_customer(customer("cus-1", "Beta AG"))


async def test_customers_listed_by_name_ignoring_case(store: Store) -> None:
    for id, name in [("c1", "charlie"), ("c2", "Alpha"), ("c3", "bravo")]:
        await store.add_customer(customer(id, name))
    assert [c.name for c in await store.list_customers()] == ["Alpha", "bravo", "charlie"]


# -- technicians -------------------------------------------------------------------------


async def test_technician_round_trip_and_token_lookup(store: Store) -> None:
    await store.add_customer(customer("cus-1", "Acme GmbH"))
    await store.add_customer(customer("cus-2", "Beta AG"))
    alice = technician("tec-1", "alice", customer_ids=("cus-2", "cus-1"))  # order kept
    await store.add_technician(alice, token_hash("alice-token"))
    assert await store.get_technician("tec-1") == alice
    assert await store.technician_by_token(token_hash("alice-token")) == alice
    assert await store.technician_by_token(token_hash("wrong-token")) is None
    assert await store.get_technician("tec-404") is None


async def test_technician_without_scope_round_trips(store: Store) -> None:
    admin = replace(technician("tec-9", "root"), role="admin", level=3, customer_ids=())
    await store.add_technician(admin, token_hash("admin-token"))
    assert await store.technician_by_token(token_hash("admin-token")) == admin


async def test_disabled_technician_is_not_found_by_token(store: Store) -> None:
    await store.add_customer(customer())
    bob = replace(technician("tec-2", "bob"), disabled=True)
    await store.add_technician(bob, token_hash("bob-token"))
    assert await store.technician_by_token(token_hash("bob-token")) is None
    assert await store.get_technician("tec-2") == bob


async def test_technician_name_and_token_conflict(store: Store) -> None:
    await store.add_customer(customer())
    await store.add_technician(technician("tec-1", "alice"), token_hash("t1"))
    with pytest.raises(ConflictError):
        await store.add_technician(technician("tec-2", "alice"), token_hash("t2"))
    with pytest.raises(ConflictError):
        await store.add_technician(technician("tec-3", "carol"), token_hash("t1"))
    assert [t.id for t in await store.list_technicians()] == ["tec-1"]


async def test_technicians_listed_by_name(store: Store) -> None:
    await store.add_customer(customer("cus-1", "Acme GmbH"))
    await store.add_customer(customer("cus-2", "Beta AG"))
    for id, name, scope in [
        ("tec-1", "dave", ("cus-1",)),
        ("tec-2", "alice", ("cus-1", "cus-2")),
        ("tec-3", "carol", ()),
    ]:
        await store.add_technician(technician(id, name, scope), token_hash(id))
    listed = await store.list_technicians()
    assert [(t.name, t.customer_ids) for t in listed] == [
        ("alice", ("cus-1", "cus-2")),
        ("carol", ()),
        ("dave", ("cus-1",)),
    ]


# -- enrollment tokens -------------------------------------------------------------------


async def test_enroll_token_round_trip_and_newest_first(store: Store) -> None:
    await seed(store)
    tokens = [enroll_token(f"enr-{i}", uses_left=i, created_at=at(i)) for i in (1, 2, 3)]
    for token in tokens:
        await store.add_enroll_token(token, token_hash(token.id))
    assert await store.list_enroll_tokens() == tokens[::-1]


async def test_enroll_token_uses_count_down_to_zero(store: Store) -> None:
    await seed(store)
    await store.add_enroll_token(enroll_token(uses_left=2), token_hash("secret"))
    first = await store.consume_enroll_token(token_hash("secret"), at(1))
    second = await store.consume_enroll_token(token_hash("secret"), at(2))
    assert first == enroll_token(uses_left=2)  # as it was before the use
    assert second == enroll_token(uses_left=1)
    assert await store.consume_enroll_token(token_hash("secret"), at(3)) is None
    assert [t.uses_left for t in await store.list_enroll_tokens()] == [0]


async def test_expired_enroll_token_is_refused(store: Store) -> None:
    await seed(store)
    await store.add_enroll_token(enroll_token(uses_left=5, expires_at=at(60)), token_hash("s"))
    assert await store.consume_enroll_token(token_hash("s"), at(60)) is None  # boundary
    assert await store.consume_enroll_token(token_hash("s"), at(61)) is None
    assert [t.uses_left for t in await store.list_enroll_tokens()] == [5]
    assert await store.consume_enroll_token(token_hash("s"), at(59)) is not None


async def test_revoked_enroll_token_is_refused(store: Store) -> None:
    await seed(store)
    await store.add_enroll_token(enroll_token(uses_left=5), token_hash("s"))
    assert await store.revoke_enroll_token("enr-1") is True
    assert await store.consume_enroll_token(token_hash("s"), at(1)) is None
    [listed] = await store.list_enroll_tokens()
    assert listed.revoked and listed.uses_left == 5
    assert await store.revoke_enroll_token("enr-404") is False


async def test_unknown_enroll_token_is_refused(store: Store) -> None:
    await seed(store)
    await store.add_enroll_token(enroll_token(), token_hash("s"))
    assert await store.consume_enroll_token(token_hash("other"), at(1)) is None


async def test_enroll_token_hash_conflicts(store: Store) -> None:
    await seed(store)
    await store.add_enroll_token(enroll_token("enr-1"), token_hash("s"))
    with pytest.raises(ConflictError):
        await store.add_enroll_token(enroll_token("enr-2"), token_hash("s"))


async def test_concurrent_consumption_of_single_use_token(store: Store) -> None:
    await seed(store)
    await store.add_enroll_token(enroll_token(uses_left=1), token_hash("s"))
    results = await asyncio.gather(
        *(store.consume_enroll_token(token_hash("s"), at(1)) for _ in range(8))
    )
    assert [r for r in results if r is not None] == [enroll_token(uses_left=1)]
    assert [t.uses_left for t in await store.list_enroll_tokens()] == [0]


# -- agents ------------------------------------------------------------------------------


async def test_agent_round_trip_touch_and_revoke(store: Store) -> None:
    await seed(store)
    assert await store.get_agent("agt-1") == agent()
    await store.touch_agent("agt-1", at(5))
    assert await store.get_agent("agt-1") == replace(agent(), last_seen_at=at(5))
    assert await store.revoke_agent("agt-1") is True
    assert await store.get_agent("agt-1") == replace(agent(), last_seen_at=at(5), revoked=True)
    assert await store.revoke_agent("agt-404") is False
    assert await store.get_agent("agt-404") is None


async def test_agent_id_conflicts(store: Store) -> None:
    await seed(store)
    with pytest.raises(ConflictError):
        await store.add_agent(agent("agt-1", "another-name"))


async def test_agents_listed_by_name_then_id_including_revoked(store: Store) -> None:
    await store.add_customer(customer())
    for id, name in [("agt-x", "b-pc"), ("agt-z", "a-pc"), ("agt-y", "a-pc")]:
        await store.add_agent(agent(id, name))
    await store.revoke_agent("agt-z")
    listed = await store.list_agents()
    assert [(a.name, a.id, a.revoked) for a in listed] == [
        ("a-pc", "agt-y", False),
        ("a-pc", "agt-z", True),
        ("b-pc", "agt-x", False),
    ]


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


# -- policies and support codes ----------------------------------------------------------


async def test_policies_round_trip_and_default_to_empty(store: Store) -> None:
    await seed(store)
    found = await store.get_customer(customer().id)
    assert found is not None and found.policy == {}
    policy = {"consent": "attended", "forward_allow": ["10.0.0.0/8:*"]}
    assert await store.set_customer_policy(customer().id, policy)
    assert await store.set_agent_policy(agent().id, {"forwarding": "lan"})
    assert not await store.set_agent_policy("agt-unknown", {})
    assert not await store.set_customer_policy("cus-unknown", {})
    found = await store.get_customer(customer().id)
    assert found is not None and found.policy == policy
    got = await store.get_agent(agent().id)
    assert got is not None and got.policy == {"forwarding": "lan"} and not got.ephemeral


async def test_support_codes_are_single_use_and_expire(store: Store) -> None:
    await seed(store)
    code = SupportCode("sup-1", customer().id, "REQ-7", at(15), "tec-1", at(0))
    await store.add_support_code(code, "hash-1")
    await store.add_support_code(
        SupportCode("sup-2", customer().id, None, at(15), "tec-1", at(0)), "hash-2"
    )
    assert await store.consume_support_code("hash-unknown", at(1)) is None
    used = await store.consume_support_code("hash-1", at(1))
    assert used is not None and used.request == "REQ-7" and used.used_at is None
    assert await store.consume_support_code("hash-1", at(2)) is None  # single use
    assert await store.consume_support_code("hash-2", at(15)) is None  # expired at 15


async def test_concurrent_support_code_use_succeeds_once(store: Store) -> None:
    await seed(store)
    await store.add_support_code(
        SupportCode("sup-1", customer().id, None, at(15), "tec-1", at(0)), "hash-1"
    )
    results = await asyncio.gather(*(store.consume_support_code("hash-1", at(1)) for _ in range(8)))
    assert sum(r is not None for r in results) == 1


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
