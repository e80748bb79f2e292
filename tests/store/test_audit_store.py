"""Compliance tests for audit records written with the change they describe
(every Store backend): committed together, or not at all when the change fails or
finds nothing to do.

Backend-agnostic: only the ``store`` fixture (one run per backend, see conftest.py)
and the interface of ``relay/store/interface.py``. Fixed datetimes, no sleeps.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from relay.model import AuditEvent, HelpRequest
from relay.store.interface import Store
from shared.errors import ConflictError
from tests.store.records import (
    agent,
    at,
    closing,
    customer,
    enroll_token,
    seed,
    session,
    time_entry,
    token_hash,
)
from tests.store.test_billing_store import approved, card, draft, entry


def event(kind: str, subject: str = "", minute: float = 0, /, **detail: Any) -> AuditEvent:
    """An audit record by technician tec-1 at minute ``minute``."""
    return AuditEvent(at(minute), kind, "tec-1", subject, detail)


async def trail(store: Store) -> list[tuple[Any, ...]]:
    """The audit trail, oldest first, as (at, event, actor, subject, detail)."""
    records = await store.list_audit()
    return [(r.at, r.event, r.actor, r.subject, r.detail) for r in reversed(records)]


# -- written with the change ---------------------------------------------------------------


async def test_add_customer_writes_its_audit_and_a_refused_one_writes_none(store: Store) -> None:
    added = event("customer_add", "cus-1", name="Acme GmbH")
    await store.add_customer(customer(), audit=[added])
    assert await trail(store) == [(at(0), "customer_add", "tec-1", "cus-1", {"name": "Acme GmbH"})]

    with pytest.raises(ConflictError):
        await store.add_customer(customer("cus-2", "ACME GMBH"), audit=[event("customer_add")])
    assert len(await trail(store)) == 1
    assert [c.id for c in await store.list_customers()] == ["cus-1"]


async def test_close_session_audits_once_and_not_when_already_ended(store: Store) -> None:
    await seed(store)
    await store.add_session(session())
    closed = event("session_end", "ses-1", 30, reason="completed")
    assert await store.close_session(closing(entry=time_entry()), audit=[closed])
    assert await trail(store) == [
        (at(30), "session_end", "tec-1", "ses-1", {"reason": "completed"})
    ]

    again = closing(entry=time_entry("te-2"), ended_at=at(40))
    assert not await store.close_session(again, audit=[event("session_end", "ses-1", 40)])
    assert not await store.close_session(closing("ses-404"), audit=[event("session_end")])
    assert len(await trail(store)) == 1


async def test_a_close_refused_by_its_entry_audits_nothing(store: Store) -> None:
    await seed(store)
    await store.add_session(session("ses-1"))
    await store.add_session(session("ses-2", created_at=at(1)))
    await store.close_session(closing("ses-1", entry=time_entry("te-1", "ses-1")))
    clash = closing("ses-2", entry=time_entry("te-1", "ses-2"))  # the same entry id again
    with pytest.raises(ConflictError):
        await store.close_session(clash, audit=[event("session_end", "ses-2")])
    assert await trail(store) == []
    assert [s.id for s in await store.open_sessions()] == ["ses-2"]


async def test_create_invoice_audits_with_its_number_or_not_at_all(store: Store) -> None:
    await seed(store)
    await approved(store, "ent-1")
    await store.add_entry(entry("ent-2", start=120))  # a draft: cannot be invoiced
    with pytest.raises(ConflictError):
        await store.create_invoice(draft("inv-2", ("ent-2",)), audit=[event("invoice_create")])
    assert await trail(store) == []

    made = await store.create_invoice(
        draft(), audit=[event("invoice_create", "inv-1", 60, entries=1)]
    )
    assert made.number == "2026-000001"  # the refused invoice used no number
    assert await trail(store) == [(at(60), "invoice_create", "tec-1", "inv-1", {"entries": 1})]


async def test_a_help_request_taken_audits_once_and_the_lost_race_not_at_all(
    store: Store,
) -> None:
    await seed(store)
    number = await store.add_help_request(
        HelpRequest(0, "agt-1", "cus-1", "printer offline", False, "open", at(0), at(0))
    )
    taken = event("help_take", str(number), 5)
    # ``audit`` is a parameter, not a column to change (that would be a ValueError).
    assert await store.update_help_request(
        number, "open", audit=[taken], state="assigned", assigned_to="tec-1"
    )
    assert not await store.update_help_request(
        number, "open", audit=[event("help_take", str(number), 6)], state="assigned"
    )
    assert await trail(store) == [(at(5), "help_take", "tec-1", str(number), {})]
    got = await store.get_help_request(number)
    assert got is not None and (got.state, got.assigned_to) == ("assigned", "tec-1")


async def test_a_new_help_request_is_audited_under_its_own_number(store: Store) -> None:
    await seed(store)
    first = await store.add_help_request(
        HelpRequest(0, "agt-1", "cus-1", "printer offline", False, "open", at(0), at(0))
    )
    asked = AuditEvent(at(1), "help_request", "agt-1", "REQ-{number}", {"urgent": True})
    second = await store.add_help_request(
        HelpRequest(0, "agt-1", "cus-1", "no mail", True, "open", at(1), at(1)), audit=[asked]
    )
    assert second == first + 1
    assert await trail(store) == [
        (at(1), "help_request", "agt-1", f"REQ-{second}", {"urgent": True})
    ]


async def test_concurrent_takes_audit_only_the_winner(store: Store) -> None:
    await seed(store)
    number = await store.add_help_request(
        HelpRequest(0, "agt-1", "cus-1", "no network", True, "open", at(0), at(0))
    )
    results = await asyncio.gather(
        *(
            store.update_help_request(
                number,
                "open",
                audit=[event("help_take", str(number), i, by=f"t{i}")],
                state="assigned",
                assigned_to=f"t{i}",
            )
            for i in range(6)
        )
    )
    assert sum(results) == 1
    winner = results.index(True)
    assert await trail(store) == [
        (at(winner), "help_take", "tec-1", str(number), {"by": f"t{winner}"})
    ]


async def test_every_record_of_a_change_is_written_in_order(store: Store) -> None:
    await seed(store)
    await store.add_entry(entry("ent-1"))
    await store.add_entry(entry("ent-2", start=60))
    records = [event("time_approve", "ent-1", 100), event("time_approve", "ent-2", 100)]
    assert await store.approve_entries(["ent-1", "ent-2"], "tec-1", at(100), audit=records)
    assert [(e, s) for _, e, _, s, _ in await trail(store)] == [
        ("time_approve", "ent-1"),
        ("time_approve", "ent-2"),
    ]


async def test_a_change_and_its_audit_are_one_write_transaction(store: Store) -> None:
    before = store.write_transactions
    await store.add_customer(customer(), audit=[event("customer_add"), event("customer_note")])
    assert store.write_transactions == before + 1
    assert len(await trail(store)) == 2


# -- nothing changed, nothing audited --------------------------------------------------------


async def test_changes_that_find_nothing_to_do_audit_nothing(store: Store) -> None:
    await seed(store)
    await store.add_enroll_token(enroll_token(uses_left=1), token_hash("s"))
    await store.add_session(session())
    await store.close_session(closing())
    await store.add_rate_card(card("d1"))
    await store.add_entry(entry("ent-1"))
    await store.approve_entries(["ent-1"], "tec-1", at(40))
    nothing = [event("nothing")]

    assert await store.consume_enroll_token(token_hash("other"), at(1), audit=nothing) is None
    assert await store.consume_support_code("hash-unknown", at(1), audit=nothing) is None
    assert not await store.revoke_enroll_token("enr-404", audit=nothing)
    assert not await store.revoke_agent("agt-404", audit=nothing)
    assert not await store.set_agent_policy("agt-404", {}, audit=nothing)
    assert not await store.set_customer_policy("cus-404", {}, audit=nothing)
    assert not await store.set_session_state("ses-1", "active", audit=nothing)  # ended
    assert not await store.add_rate_card(card("d1"), audit=nothing)  # already stored
    assert await store.approve_entries(["ent-1"], "tec-1", at(41), audit=nothing) == []
    assert await trail(store) == []
    # The same calls audit when they do change something.
    assert await store.revoke_agent(agent().id, audit=[event("agent_revoke", agent().id)])
    assert [e for _, e, _, _, _ in await trail(store)] == ["agent_revoke"]


# -- reading the trail (qp audit) ----------------------------------------------------------


async def test_list_audit_filters_pages_and_appends_many(store: Store) -> None:
    await store.append_audit(
        [
            AuditEvent(at(0), "login_refused", "anonymous", "", {"peer": "10.0.0.1", "count": 7}),
            AuditEvent(at(1), "role_refused", "tec-1", "technician.list"),
            AuditEvent(at(2), "out_of_scope", "tec-2", "agt-9", {"method": "diag.get"}),
            AuditEvent(at(3), "out_of_scope", "tec-1", "agt-9", {"method": "diag.list"}),
        ]
    )
    await store.append_audit([])  # nothing to write is not an error

    async def ids(**filters: Any) -> list[tuple[str, str]]:
        return [(r.event, r.actor) for r in await store.list_audit(**filters)]

    assert await ids() == [
        ("out_of_scope", "tec-1"),
        ("out_of_scope", "tec-2"),
        ("role_refused", "tec-1"),
        ("login_refused", "anonymous"),
    ]
    assert await ids(actor="tec-1") == [("out_of_scope", "tec-1"), ("role_refused", "tec-1")]
    assert await ids(event="out_of_scope", subject="agt-9", actor="tec-2") == [
        ("out_of_scope", "tec-2")
    ]
    assert await ids(since=at(1), until=at(3)) == [
        ("out_of_scope", "tec-2"),
        ("role_refused", "tec-1"),
    ]
    assert await ids(limit=2, offset=1) == [("out_of_scope", "tec-2"), ("role_refused", "tec-1")]
    (flood,) = await store.list_audit(actor="anonymous")
    assert flood.detail == {"peer": "10.0.0.1", "count": 7}
