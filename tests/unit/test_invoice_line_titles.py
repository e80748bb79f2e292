"""Each invoice line says what the work was: the entry's notes, or else the text of
the help request it was done for (its first line, shortened)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from relay.billing.invoice_build import month_period
from relay.model import HelpRequest
from relay.services.documents import request_titles
from relay.services.invoicing import plan_invoice
from relay.store.interface import Store
from tests.unit.test_billing_invoicing import ACME, BILLING, COMPANY, NOW, approve, entry
from tests.unit.test_billing_timekeeping import MONDAY_10H


async def ask(store: Store, text: str) -> str:
    request = HelpRequest(0, "agt-1", "cus-1", text, False, "open", MONDAY_10H, MONDAY_10H)
    return f"REQ-{await store.add_help_request(request)}"


async def test_a_line_without_notes_carries_its_request_text(store: Store) -> None:
    await store.set_customer_billing(BILLING)
    printer = await ask(store, "  De printer\tin de winkel  drukt niet\nsinds gisteren")
    mail = await ask(store, "Mail komt niet aan")
    day = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
    await approve(
        store,
        replace(entry("e1", day, 20, "30.00"), request=printer),
        replace(entry("e2", day.replace(day=4), 20, "30.00"), request=mail, notes="DNS  hersteld"),
        replace(entry("e3", day.replace(day=5), 20, "30.00"), request="TICKET-9"),
        replace(entry("e4", day.replace(day=6), 20, "30.00"), request=None),
    )
    plan = await plan_invoice(
        store, COMPANY, ACME, month_period("2026-11"), reference=None, actor="t", now=NOW
    )
    assert [line.description for line in plan.invoice.lines] == [
        "Telefonische ondersteuning: De printer in de winkel drukt niet",
        "Telefonische ondersteuning: DNS hersteld",  # the technician's notes come first
        "Telefonische ondersteuning",  # the customer's own ticket: nothing to look up
        "Telefonische ondersteuning",
    ]
    assert [line.request_ref for line in plan.invoice.lines] == [printer, mail, "TICKET-9", None]


async def test_a_long_request_text_is_shortened(store: Store) -> None:
    ref = await ask(store, "x" * 300)
    assert await request_titles(store, [ref, None, "REQ-999"]) == {ref: "x" * 79 + "…"}
