"""Billing end to end with real processes: two sessions of one technician on one
agent (a reconnect) become one time entry, which is approved and invoiced; the
invoice adds up to the cent; the entry is then locked."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from harness import World
from tests.integration.billing_world import DUTCH, FLAT_CARD, import_card, start_office

AMS = ZoneInfo("Europe/Amsterdam")


def test_a_reconnect_becomes_one_entry_that_is_invoiced_and_locked(world: World) -> None:
    start_office(world)
    world.qp("customer", "add", "Acme")
    world.technician("alice", "Acme")
    world.technician("bob", "Acme")
    _, data = world.enroll("Acme", "acme-pc")
    world.start_agent(data)
    card = import_card(world, FLAT_CARD)
    assert card["in_force_now"]

    # Two sessions, the second a reconnect seconds after the first.
    for text in ("first", "second"):
        out = world.qp("exec", "acme-pc", "--", "echo", text, home="alice")
        assert out.stdout.decode().strip() == text
    (entry,) = world.qp_json("time", home="alice")
    assert len(entry["session_ids"]) == 2
    sessions = {s["id"] for s in world.qp_json("sessions") if s["technician"] == "alice"}
    assert set(entry["session_ids"]) == sessions
    # One minimum of 15 minutes at 90.00/h, not two.
    assert (entry["billable_minutes"], entry["amount"], entry["rate_card"]) == (
        15,
        "22.50",
        card["digest"],
    )
    shown = world.qp("time", "show", entry["id"], home="alice").stdout.decode()
    assert "Merged 2 sessions" in shown and "the minimum is charged once" in shown

    # A technician sees only their own drafts; unknown and forbidden look the same.
    assert world.qp_json("time", home="bob") == []
    other = world.qp("time", "show", entry["id"], home="bob", check=False)
    unknown = world.qp("time", "show", "ent-000000000000", home="bob", check=False)
    assert other.returncode == unknown.returncode == 1
    assert other.stderr.decode().replace(entry["id"], "X") == unknown.stderr.decode().replace(
        "ent-000000000000", "X"
    )
    noted = world.qp_json(
        "time", "edit", entry["id"], "--notes", "mail queue", "--reason", "notes", home="alice"
    )
    assert (noted["notes"], noted["amount"]) == ("mail queue", "22.50")
    refused = world.qp("time", "approve", entry["id"], home="alice", check=False)
    assert "needs the admin or billing role" in refused.stderr.decode()

    world.qp("customer", "billing", "Acme", *DUTCH)
    assert world.qp_json("time", "approve", entry["id"]) == {
        "approved": [entry["id"]],
        "unchanged": [],
    }
    assert world.qp_json("time", home="alice") == []  # no longer a draft of hers
    period = datetime.fromisoformat(entry["started_at"]).astimezone(AMS).strftime("%Y-%m")
    made = world.qp_json("invoice", "create", "--customer", "Acme", "--period", period)
    assert (made["lines"], made["total_excl_vat"], made["vat"], made["total_incl_vat"]) == (
        1,
        "22.50",
        "4.73",
        "27.23",
    )

    doc = json.loads(world.qp("invoice", "export", made["number"], "--format", "json").stdout)
    line_sum = sum(Decimal(line["line_amount"]) for line in doc["lines"])
    vat = sum(Decimal(v["tax"]) for v in doc["totals"]["vat"])
    assert line_sum == Decimal(entry["amount"])
    assert Decimal(doc["totals"]["payable"]) == line_sum + vat == Decimal(made["total_incl_vat"])
    assert doc["lines"][0]["technician"] == "alice"

    (locked,) = world.qp_json("time", "--status", "invoiced")
    assert (locked["id"], locked["invoice"]) == (entry["id"], made["number"])
    edit = world.qp("time", "edit", entry["id"], "--notes", "later", "--reason", "x", check=False)
    assert edit.returncode == 1
    assert "is invoiced and locked" in edit.stderr.decode()
    assert world.qp_json("time", "show", entry["id"])["notes"] == "mail queue"
