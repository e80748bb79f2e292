"""Invoices and rate cards through the ``qp`` command line against a real relay:
numbers stay gap-free when twenty invoices are created at once, a new card leaves
existing entries alone, and bad input is refused with a clear one-line error.
(Their UBL against the official rules: ``test_billing_cli_ubl.py``.)"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import BIN, World, timeout
from tests.integration.billing_world import (
    DUTCH,
    FLAT_CARD,
    add_manual,
    import_card,
    office_world,
    parallel,
    start_office,
)


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from office_world(tmp_path_factory)


def test_twenty_invoices_created_at_once_get_gap_free_numbers(office: World) -> None:
    months = [f"{2023 + m // 12}-{m % 12 + 1:02d}" for m in range(20)]
    entries = parallel(
        [
            lambda month=month: add_manual(office, "Acme", f"{month}-10 10:00", 10)
            for month in months
        ]
    )
    office.qp("time", "approve", *entries)
    before = {i["number"] for i in office.qp_json("invoice", "list")}
    home = office.env()
    procs = [
        subprocess.Popen(
            [str(BIN / "qp"), "invoice", "create", "--customer", "Acme", "--period", m, "--json"],
            env=home,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for m in months
    ]
    results = [p.communicate(timeout=timeout(120)) for p in procs]
    assert [p.returncode for p in procs] == [0] * 20, [err for _, err in results]
    numbers = sorted(json.loads(out)["number"] for out, _ in results)
    year = numbers[0][:4]
    first = len([n for n in before if n.startswith(year)]) + 1
    assert numbers == [f"{year}-{n:06d}" for n in range(first, first + 20)]
    listed = {i["number"] for i in office.qp_json("invoice", "list")} - before
    assert sorted(listed) == numbers


def test_a_malformed_rate_card_is_refused_and_the_old_one_stays(office: World) -> None:
    in_force = office.qp_json("rates", "show")["in_force"]["digest"]
    bad = FLAT_CARD.replace(
        "phone          = { 1 = 45.00, 2 = 60.00, 3 = 75.00 }",
        'phone          = { 1 = 45.00, 2 = "sixty", 3 = 75.00 }',
    )
    line = bad.splitlines().index('phone          = { 1 = 45.00, 2 = "sixty", 3 = 75.00 }') + 1
    path = office.root / "bad-rates.toml"
    path.write_text(bad)
    refused = office.qp("rates", "import", str(path), check=False)
    assert refused.returncode == 1
    assert refused.stderr.decode() == (
        f"qp: {path}, line {line}: rates.phone.2: "
        "a rate should be a number such as 90.00, not 'sixty'\n"
    )
    broken = office.root / "broken.toml"
    broken.write_text(FLAT_CARD.replace("[complexity]", "[complexity"))
    line = FLAT_CARD.splitlines().index("[complexity]") + 1
    refused = office.qp("rates", "import", str(broken), check=False)
    assert refused.stderr.decode().startswith(f"qp: {broken}, line {line}, column ")
    assert "not valid TOML" in refused.stderr.decode()
    assert office.qp_json("rates", "show")["in_force"]["digest"] == in_force
    assert office.qp("rates", "export").stdout.decode() == FLAT_CARD


def test_a_new_rate_card_leaves_existing_entries_as_they_are(office: World) -> None:
    entry_id = add_manual(office, "Acme", "2025-06-02 10:00", 30)
    before = office.qp_json("time", "show", entry_id)
    assert before["amount"] == "37.50"  # the admin's own phone work: level 3, 75.00/h
    dearer = FLAT_CARD.replace('name = "Flat rates"', 'name = "Dearer"').replace(
        "phone          = { 1 = 45.00, 2 = 60.00, 3 = 75.00 }",
        "phone          = { 1 = 90.00, 2 = 120.00, 3 = 150.00 }",
    )
    assert import_card(office, dearer, "dearer.toml")["in_force_now"]
    assert office.qp_json("time", "show", entry_id) == before
    newer = add_manual(office, "Acme", "2025-06-03 10:00", 30)
    assert office.qp_json("time", "show", newer)["amount"] == "75.00"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "2025-07-01 10:00", "--minutes", "-5"], "must end after it starts"),
        (["--start", "2025-07-01 10:00", "--end", "2025-07-01 09:00"], "must end after it starts"),
        (["--start", "2025-07-01 10:20", "--minutes", "30"], "overlaps time entry"),
        (["--start", "2099-01-01 10:00", "--minutes", "30"], "cannot end in the future"),
    ],
)
def test_negative_overlapping_or_future_manual_work_is_refused(
    office: World, args: list[str], message: str
) -> None:
    if message == "overlaps time entry":
        add_manual(office, "Acme", "2025-07-01 10:00", 30)
    before = len(office.qp_json("time"))
    out = office.qp("time", "add", "--customer", "Acme", "--service", "phone", *args, check=False)
    assert out.returncode == 1
    assert out.stderr.decode().startswith("qp: ") and message in out.stderr.decode()
    assert len(out.stderr.decode().splitlines()) == 1
    assert len(office.qp_json("time")) == before


def test_invoices_refuse_while_the_company_data_is_missing(tmp_path: Path) -> None:
    world = World(tmp_path)
    try:
        start_office(world, company={})
        world.qp("customer", "add", "Acme")
        world.qp("customer", "billing", "Acme", *DUTCH)
        world.qp("time", "approve", add_manual(world, "Acme", "2025-03-03 10:00", 20))
        out = world.qp(
            "invoice", "create", "--customer", "Acme", "--period", "2025-03", check=False
        )
        assert out.returncode == 1
        assert out.stderr.decode() == (
            "qp: invoices need the company's own data: set it with qp company set"
            " --legal-name … --address … --postcode … --city … --kvk … --vat … --iban …\n"
        )
        assert world.qp_json("invoice", "list") == []
    finally:
        world.close()
