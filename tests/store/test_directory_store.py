"""Compliance tests for the directory (every Store backend): lifecycle and relay
settings, customers, technicians, enrollment tokens, agents, policies and support
codes.

Backend-agnostic: only the ``store`` fixture (one run per backend, see conftest.py)
and the interface of ``relay/store/interface.py``. Fixed datetimes, no sleeps.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from relay.model import AuditEvent, SupportCode, TechnicianChange
from relay.store.interface import Store
from shared.errors import ConflictError
from tests.store.records import (
    agent,
    at,
    customer,
    enroll_token,
    seed,
    technician,
    token_hash,
)

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


async def test_write_transactions_count_committed_writes_only(store: Store) -> None:
    before = store.write_transactions
    await store.add_customer(customer())
    assert store.write_transactions == before + 1

    assert await store.get_customer("cus-1") == customer()
    assert await store.list_customers() == [customer()]
    assert await store.list_technicians() == []
    assert await store.get_meta("relay_id") is None
    assert store.write_transactions == before + 1  # reads are not writes

    with pytest.raises(ConflictError):
        await store.add_customer(customer("cus-2", "ACME GMBH"))
    assert store.write_transactions == before + 1  # rolled back, not committed

    await store.add_technician(technician(), token_hash("t"))  # two tables, one transaction
    await store.set_meta("relay_id", "relay-1")
    assert not await store.revoke_agent("agt-404")  # committed, though it changed nothing
    assert store.write_transactions == before + 4


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


async def test_technician_lifecycle_fields_round_trip(store: Store) -> None:
    await store.add_customer(customer())
    office = replace(
        technician("tec-5", "olga", ()), role="billing", token_expires_at=at(90), grants=("help",)
    )
    await store.add_technician(office, token_hash("olga-token"))
    assert await store.get_technician("tec-5") == office
    assert await store.technician_holding(token_hash("olga-token")) == office


async def test_update_technician_changes_what_it_names_with_its_audit(store: Store) -> None:
    await store.add_customer(customer("cus-1", "Acme GmbH"))
    await store.add_customer(customer("cus-2", "Beta AG"))
    await store.add_technician(technician("tec-1", "alice"), token_hash("old"))
    audit = AuditEvent(at(5), "technician_disable", "tec-9", "tec-1")
    change = TechnicianChange(disabled=True, level=3, customer_ids=("cus-2", "cus-1"))
    assert await store.update_technician("tec-1", change, audit=(audit,))
    changed = replace(technician("tec-1", "alice", ("cus-2", "cus-1")), disabled=True, level=3)
    assert await store.get_technician("tec-1") == changed
    assert await store.technician_by_token(token_hash("old")) is None  # disabled
    assert await store.technician_holding(token_hash("old")) == changed
    (record,) = [r for r in await store.list_audit() if r.event == "technician_disable"]
    assert (record.actor, record.subject) == ("tec-9", "tec-1")


async def test_a_new_token_replaces_the_old_one_at_once(store: Store) -> None:
    await store.add_customer(customer())
    await store.add_technician(technician("tec-1", "alice"), token_hash("old"))
    change = TechnicianChange(token_hash=token_hash("new"), token_expires_at=at(100))
    assert await store.update_technician("tec-1", change)
    assert await store.technician_by_token(token_hash("old")) is None
    assert await store.technician_holding(token_hash("old")) is None
    found = await store.technician_by_token(token_hash("new"))
    assert found is not None and found.token_expires_at == at(100)


async def test_update_technician_refuses_unknown_ids_tokens_and_customers(store: Store) -> None:
    await store.add_customer(customer())
    await store.add_technician(technician("tec-1", "alice"), token_hash("a"))
    await store.add_technician(technician("tec-2", "bob"), token_hash("b"))
    audit = AuditEvent(at(1), "technician_grant", "tec-9", "tec-404")
    assert not await store.update_technician("tec-404", TechnicianChange(level=1), audit=(audit,))
    assert [r for r in await store.list_audit() if r.event == "technician_grant"] == []
    with pytest.raises(ConflictError):
        await store.update_technician("tec-2", TechnicianChange(token_hash=token_hash("a")))
    with pytest.raises(ConflictError):
        await store.update_technician("tec-2", TechnicianChange(customer_ids=("cus-404",)))
    assert await store.get_technician("tec-2") == technician("tec-2", "bob")  # rolled back


async def test_stamp_token_expiry_fills_only_missing_expiries(store: Store) -> None:
    await store.add_customer(customer())
    await store.add_technician(technician("tec-1", "alice"), token_hash("a"))
    dated = replace(technician("tec-2", "bob"), token_expires_at=at(10))
    await store.add_technician(dated, token_hash("b"))
    audit = AuditEvent(at(1), "token_expiry_stamped", "relay")
    assert await store.stamp_token_expiry(at(500), audit=(audit,)) == 1
    assert await store.stamp_token_expiry(at(900), audit=(audit,)) == 0
    assert [(t.name, t.token_expires_at) for t in await store.list_technicians()] == [
        ("alice", at(500)),
        ("bob", at(10)),
    ]
    assert len([r for r in await store.list_audit() if r.event == "token_expiry_stamped"]) == 1


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
