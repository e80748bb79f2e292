"""Prepaid hours and manual work through ``qp`` against a real relay: a block pays
only for work from its first day, meets a weekend surcharge as the customer's terms
say, and every invoice shows what it paid and the balance (warning when low), as
does ``qp prepaid list``; a short call is kept with its time and the reason it
bills nothing; manual work overlapping a session joins that session's entry with
``--attach``; a local time the clocks skip or repeat needs its offset."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from harness import World
from tests.integration.billing_world import (
    DUTCH,
    FLAT_CARD,
    add_manual,
    import_card,
    start_office,
)
from tests.integration.test_billing_ubl import Validate
from tests.integration.test_billing_ubl import validate as validate  # noqa: F401  (fixture)

#: The flat card with +50 % at weekends and phone calls under a minute not billed.
WEEKEND_CARD = (
    FLAT_CARD.replace('name = "Flat rates"', 'name = "Weekend rates"')
    + """grace_seconds = 60

[[surcharges.window]]
name = "weekend"
days = ["sat", "sun"]
from = "00:00"
to = "24:00"
percent = 50
"""
)
BASE_NOTE = (
    "Strippenkaart: 1:00 uur werk betaald tegen het basistarief; toeslagen (avond, weekend, "
    "feestdag, spoed) over die uren worden gefactureerd."
)
ALL_NOTE = (
    "Strippenkaart: 1:30 uur afgeschreven, 1:00 uur werk en 0:30 uur toeslagen "
    "(avond, weekend, feestdag, spoed)."
)


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    world = World(Path(tmp_path_factory.mktemp("prepaid")))
    try:
        start_office(world)
        world.qp("customer", "add", "Acme")
        world.qp("customer", "billing", "Acme", *DUTCH)
        assert import_card(world, WEEKEND_CARD)["in_force_now"]
        yield world
    finally:
        world.close()


def create(world: World, *extra: str) -> dict[str, Any]:
    made: dict[str, Any] = world.qp_json(
        "invoice", "create", "--customer", "Acme", "--period", "2025-11", *extra
    )
    return made


def lines(made: dict[str, Any]) -> list[tuple[str, int, str, str, list[str]]]:
    return [
        (ln["description"], ln["prepaid_minutes"], ln["rate"], ln["amount"], ln["surcharges"])
        for ln in made["shown_lines"]
    ]


def export(world: World, number: str, fmt: str) -> str:
    return world.qp("invoice", "export", number, "--format", fmt).stdout.decode()


def test_prepaid_hours_meet_the_weekend_as_set_and_every_invoice_shows_the_balance(
    office: World, validate: Validate, tmp_path: Path
) -> None:
    # The admin's remote work (level 3, 115.00/h) on a Saturday: +50 % makes 172.50.
    saturday = add_manual(office, "Acme", "2025-11-08 10:00", 60, service="remote_support")
    office.qp("time", "approve", saturday)
    # Bought on 1 December: it does not pay November's work, but the invoice shows it.
    office.qp("prepaid", "add", "Acme", "--hours", "10", "--from", "2025-12-01")
    dry = create(office, "--dry-run")
    assert (dry["prepaid_minutes"], dry["total_excl_vat"]) == (0, "172.50")
    assert dry["notes"] == ["Saldo strippenkaart na deze factuur: 10:00 uur."]
    args = ["invoice", "create", "--customer", "Acme", "--period", "2025-11", "--dry-run"]
    shown = office.qp(*args).stdout.decode().splitlines()
    assert shown[-1] == "note: Saldo strippenkaart na deze factuur: 10:00 uur."

    # Hours valid from 1 November pay the hour at the base rate; the surcharge is charged.
    office.qp("prepaid", "add", "Acme", "--hours", "2.5", "--from", "2025-11-01")
    made = create(office)
    weekend = ["weekend +50 % (60 min)"]
    assert lines(made) == [
        ("Ondersteuning op afstand", 60, "172.50", "0.00", weekend),
        (
            "Toeslagen over strippenkaarturen: Ondersteuning op afstand",
            0,
            "57.50",
            "57.50",
            weekend,
        ),
    ]
    assert (made["prepaid_minutes"], made["total_excl_vat"]) == (60, "57.50")
    assert made["notes"] == [BASE_NOTE, "Saldo strippenkaart na deze factuur: 11:30 uur."]
    html = export(office, made["number"], "html")
    assert f'<p class="note">{BASE_NOTE}</p>' in html
    assert "Saldo strippenkaart na deze factuur: 11:30 uur." in html
    doc = json.loads(export(office, made["number"], "json"))
    assert (doc["prepaid_left_minutes"], doc["notes"]) == (690, made["notes"])
    ubl = office.qp("invoice", "export", made["number"], "--format", "ubl").stdout
    verdict = validate(ubl, "nlcius")
    assert (verdict.fatal, verdict.warnings) == ((), ())
    listed = office.qp_json("prepaid", "list", "Acme")
    assert (listed["left_hours"], listed["pays"], listed["low"], listed["warning"]) == (
        "11.50",
        "base",
        False,
        None,
    )
    assert [(b["from"], b["left_hours"]) for b in listed["blocks"]] == [
        ("2025-12-01", "10.00"),
        ("2025-11-01", "1.50"),
    ]

    # Acme's own terms: the surcharge is drawn as well, and below 12 hours is low.
    office.qp("invoice", "credit", made["number"], "--reason", "new prepaid terms")
    terms = office.qp_json("prepaid", "terms", "Acme", "--pays", "all", "--warn-below", "12")
    assert terms == {
        "customer": "Acme",
        "pays": "all",
        "pays_from": "customer",
        "warn_below_hours": "12.00",
        "warn_below_from": "customer",
    }
    again = create(office)
    assert lines(again) == [
        (
            "Ondersteuning op afstand", 60, "172.50", "0.00",
            [*weekend, "toeslag van strippenkaart (30 min)"],
        ),
    ]  # fmt: skip
    low = "Let op: het saldo van uw strippenkaart is lager dan 12:00 uur."
    assert again["notes"] == [ALL_NOTE, "Saldo strippenkaart na deze factuur: 11:00 uur.", low]
    assert low in export(office, again["number"], "html")
    listed = office.qp_json("prepaid", "list", "Acme")
    assert (listed["left_hours"], listed["low"]) == ("11.00", True)
    warning = "Acme has 11.00 prepaid hours left, less than 12.00 (see qp prepaid terms)"
    assert listed["warning"] == warning
    shown = office.qp("prepaid", "list", "Acme").stdout.decode().splitlines()
    assert shown[-2:] == [
        "left: 11.00 hours (surcharges: all; warns below 12.00)",
        f"warning: {warning}",
    ]
    back = office.qp_json("prepaid", "terms", "Acme", "--pays", "default")
    assert (back["pays"], back["pays_from"], back["warn_below_hours"]) == (
        "base",
        "relay.toml",
        "12.00",
    )


def test_a_call_too_short_to_bill_is_kept_with_its_time_and_why(office: World) -> None:
    call = office.qp_json(
        "time", "add", "--customer", "Acme", "--service", "phone", "--notes", "wrong number",
        "--start", "2025-11-10 10:00", "--end", "2025-11-10 10:00:40",
    )  # fmt: skip
    reason = "0 min 40 s is shorter than the 60 s grace period: not billed"
    assert (call["actual_seconds"], call["billable_minutes"], call["amount"]) == (40, 0, "0.00")
    assert (call["not_billed"], call["started_at"]) == (reason, "2025-11-10T09:00:00Z")
    shown = office.qp("time", "show", call["id"]).stdout.decode()
    assert f"Not billed: {reason}" in shown


@pytest.mark.parametrize(
    ("start", "says"),
    [
        ("2025-10-26 02:30", "happens twice in Europe/Amsterdam (the clocks go back)"),
        ("2025-03-30 02:30", "does not exist in Europe/Amsterdam (the clocks go forward)"),
    ],
)
def test_a_time_the_clocks_repeat_or_skip_needs_its_offset(
    office: World, start: str, says: str
) -> None:
    args = ["time", "add", "--customer", "Acme", "--service", "phone", "--minutes", "10"]
    refused = office.qp(*args, "--start", start, check=False)
    assert refused.returncode == 1
    error = refused.stderr.decode()
    assert error.startswith(f"qp: start '{start}' {says}; give the offset")
    assert len(error.splitlines()) == 1
    made = office.qp_json(*args, "--start", f"{start}+01:00")
    assert made["started_at"] == f"{start.replace(' ', 'T')[:-5]}01:30:00Z"


def test_manual_work_overlapping_a_session_is_attached_to_its_entry(office: World) -> None:
    _, data = office.enroll("Acme", "acme-pc")
    office.start_agent(data)
    office.qp("exec", "acme-pc", "--", "true")
    (session,) = [e for e in office.qp_json("time", "--customer", "Acme") if e["session_ids"]]
    # A call from five minutes before the session until a second after it (whole
    # seconds, as people type them; the session's times have fractions).
    began = datetime.fromisoformat(session["started_at"]).replace(microsecond=0)
    start = began - timedelta(minutes=5)
    end = datetime.fromisoformat(session["ended_at"]).replace(microsecond=0) + timedelta(seconds=2)
    args = ["time", "add", "--customer", "Acme", "--start", start.isoformat()]
    args += ["--end", end.isoformat()]
    before = len(office.qp_json("time"))
    refused = office.qp(*args, "--service", "phone", check=False)
    assert refused.returncode == 1
    error = refused.stderr.decode()
    assert error.startswith(f"qp: it overlaps time entry {session['id']} of the same technician")
    assert error.endswith(
        f"; to add this work to that session's entry, repeat with --attach {session['id']}\n"
    )
    attached = office.qp_json(*args, "--attach", session["id"], "--notes", "called first")
    assert (attached["id"], attached["attached"], attached["notes"]) == (
        session["id"],
        True,
        "called first",
    )
    # The call covers the session: the entry's time is the call's, the overlap once.
    assert attached["actual_seconds"] == (end - start).total_seconds()
    assert (attached["started_at"], attached["ended_at"]) == (
        start.isoformat().replace("+00:00", "Z"),
        end.isoformat().replace("+00:00", "Z"),
    )
    history = office.qp_json("time", "show", session["id"])["history"]
    assert [h["reason"] for h in history if h["field"] == "attached"] == ["manual work attached"]
    assert len(office.qp_json("time")) == before  # no entry of its own
