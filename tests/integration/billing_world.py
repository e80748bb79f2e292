"""A relay set up for billing tests: the company's data in relay.toml, a flat rate
card (no time-window surcharges, so amounts do not depend on when the test runs),
customers with billing data."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from harness import World

COMPANY = {
    "legal_name": "Quarkpulse IT B.V.",
    "address": "Keizersgracht 100",
    "postcode": "1015 AA",
    "city": "Amsterdam",
    "kvk": "12345678",
    "vat_id": "NL123456782B01",
    "iban": "NL91ABNA0417164300",
    "email": "facturen@quarkpulse.example",
}

#: Level 2 remote support 90.00/h, phone 60.00/h; 15-minute minimum in 5-minute steps
#: (phone: 5 minutes, 1-minute steps); reconnects within 10 minutes merge.
FLAT_CARD = """\
name = "Flat rates"
effective_from = 2020-01-01
timezone = "Europe/Amsterdam"

[rates]
remote_support = { 1 = 75.00, 2 = 90.00, 3 = 115.00 }
project        = { 1 = 80.00, 2 = 95.00, 3 = 120.00 }
on_call        = { 1 = 95.00, 2 = 110.00, 3 = 135.00 }
phone          = { 1 = 45.00, 2 = 60.00, 3 = 75.00 }
on_site        = { 1 = 85.00, 2 = 100.00, 3 = 125.00 }

[complexity]
standard = 1.00
complex = 1.25
specialist = 1.50

[sessions]
merge_window_minutes = 10
idle_threshold_minutes = 5

[rounding.default]
minimum_minutes = 15
increment_minutes = 5
mode = "up"
grace_seconds = 0

[rounding.phone]
minimum_minutes = 5
increment_minutes = 1
"""

DUTCH = [
    "--legal-name", "Acme B.V.", "--address", "Dorpsstraat 12", "--postcode", "3511 AB",
    "--city", "Utrecht", "--country", "NL", "--kvk", "87654321", "--vat", "NL987654329B01",
    "--email", "admin@acme.example", "--terms", "14",
]  # fmt: skip
BELGIAN = [
    "--legal-name", "Brasserie Lambiek BV", "--address", "Grote Markt 5", "--postcode", "1000",
    "--city", "Brussel", "--country", "BE", "--vat", "BE0431701765", "--endpoint", "0431701765",
    "--endpoint-scheme", "0208", "--terms", "30", "--reverse-charge",
]  # fmt: skip


def set_company(world: World, values: dict[str, str]) -> None:
    """Fill the [company] section of the relay's relay.toml (before it starts)."""
    path = world.relay_data / "relay.toml"
    head, marker, section = path.read_text().partition("[company]")
    assert marker, "relay.toml has no [company] section"
    for key, value in values.items():
        section, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {json.dumps(value)}", section)
        assert n == 1, key
    path.write_text(head + marker + section)


def import_card(world: World, text: str, name: str = "rates.toml") -> dict[str, Any]:
    path = world.root / name
    path.write_text(text)
    result: dict[str, Any] = world.qp_json("rates", "import", str(path))
    return result


def start_office(world: World, company: dict[str, str] | None = None) -> str:
    """Init and start a relay (company data filled in), log the admin in."""
    token = world.init_relay(heartbeat_interval=1)
    set_company(world, COMPANY if company is None else company)
    world.start_relay(0)
    world.login(token)
    return token


def office_world(factory: pytest.TempPathFactory) -> Iterator[World]:
    """A relay with the flat card, a Dutch and a Belgian (reverse charge) customer."""
    world = World(Path(factory.mktemp("billing")))
    try:
        start_office(world)
        for name, data in (("Acme", DUTCH), ("Lambiek", BELGIAN)):
            world.qp("customer", "add", name)
            world.qp("customer", "billing", name, *data)
        import_card(world, FLAT_CARD)
        yield world
    finally:
        world.close()


def invoice(world: World, customer: str, period: str, *entries: str) -> dict[str, Any]:
    world.qp("time", "approve", *entries)
    made: dict[str, Any] = world.qp_json(
        "invoice", "create", "--customer", customer, "--period", period, "--reference", "PO-77"
    )
    return made


def add_manual(world: World, customer: str, start: str, minutes: int, **kw: str) -> str:
    args = ["time", "add", "--customer", customer, "--service", kw.pop("service", "phone")]
    args += ["--start", start, "--minutes", str(minutes)]
    for key, value in kw.items():
        args += [f"--{key}", value]
    entry_id: str = world.qp_json(*args)["id"]
    return entry_id


def parallel(jobs: list[Any], workers: int = 8) -> list[Any]:
    """Run zero-argument callables on threads (each starts its own process)."""
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda job: job(), jobs))
