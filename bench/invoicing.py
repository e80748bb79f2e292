"""Invoice run over many time entries: time and peak memory at 10k and 100k entries.

For each size, synthetic approved entries of one customer in one month (five
technicians, some with surcharges, a prepaid block) are inserted through the
store into a SQLite file in a temp dir. The file is then copied, and the invoice
run — plan (read the entries, draw prepaid hours, build and check every line and
the totals) plus create (number, write the lines, lock the entries, in one
transaction) — is timed on one copy and measured with ``tracemalloc`` on the other,
so the tracing overhead does not distort the time. Ends with one JSON line.

    .venv/bin/python -m bench.invoicing [--sizes 10000 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from relay.billing.invoice_build import month_period
from relay.model import Agent, BillableEntry, Customer, CustomerBilling, PrepaidBlock, Technician
from relay.services.invoicing import plan_invoice
from relay.settings import Company
from relay.store.sqlite import SQLiteStore

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
PERIOD = "2026-11"
BATCH = 10_000
COMPANY = Company(
    legal_name="Quarkpulse IT B.V.",
    address="Keizersgracht 100",
    postcode="1015 AA",
    city="Amsterdam",
    kvk="12345678",
    vat_id="NL123456782B01",
    iban="NL91ABNA0417164300",
)
CUSTOMER = Customer("cus-bench", "Bench B.V.", T0)
TECHS = [Technician(f"tec-{n}", f"tech{n}", 1 + n % 3, "technician", (), T0) for n in range(5)]


def entry(n: int, span_s: int) -> BillableEntry:
    """Entry ``n`` of ``span_s`` seconds, spread evenly over November."""
    start = T0 + timedelta(seconds=n * span_s)
    minutes = 15 + 5 * (n % 7)
    rate = Decimal(("75.00", "90.00", "115.00")[n % 3])
    surcharged = n % 4 == 0
    amount = (Decimal(minutes) * rate / 60 * (Decimal("1.5") if surcharged else 1)).quantize(
        Decimal("0.01")
    )
    return BillableEntry(
        id=f"ent-{n:08d}",
        session_ids=(f"ses-{n:08d}",),
        customer_id=CUSTOMER.id,
        agent_id="agt-bench",
        technician_id=TECHS[n % 5].id,
        started_at=start,
        ended_at=start + timedelta(minutes=minutes - 2),
        actual_seconds=(minutes - 2) * 60,
        billable_minutes=minutes,
        hourly_rate=rate,
        amount=amount,
        status="approved",
        created_at=start,
        request=f"REQ-{n % 997}",
        details={"synthetic": True},
        surcharges=(f"evening +50 % ({minutes} min)",) if surcharged else (),
        card_digest="synthetic",
        approved_at=NOW,
        approved_by="tec-0",
    )


async def build(path: Path, size: int) -> float:
    """A database holding ``size`` approved entries; returns the seconds it took."""
    began = time.perf_counter()
    store = SQLiteStore(str(path))
    await store.open()
    try:
        await store.add_customer(CUSTOMER)
        for tech in TECHS:
            await store.add_technician(tech, f"hash-{tech.id}")
        await store.add_agent(Agent("agt-bench", "bench-pc", CUSTOMER.id, "k", "h", T0))
        await store.set_customer_billing(
            CustomerBilling(
                CUSTOMER.id,
                "Bench B.V.",
                ("Dorpsstraat 1",),
                "1234 AB",
                "Utrecht",
                "NL",
                "87654321",
                "0106",
                14,
                T0,
                kvk="87654321",
                vat_id="NL987654329B01",
            )  # fmt: skip
        )
        await store.add_prepaid_block(PrepaidBlock("pre-1", CUSTOMER.id, 6000, T0, "tec-0"))
        span = (29 * 86400) // size
        for first in range(0, size, BATCH):
            await store.add_entries(
                [entry(n, span) for n in range(first, min(size, first + BATCH))]
            )
    finally:
        await store.close()
    return time.perf_counter() - began


async def invoice_run(path: Path) -> dict[str, Any]:
    """Plan and create the month's invoice; what it made and how long each half took."""
    store = SQLiteStore(str(path))
    await store.open()
    try:
        began = time.perf_counter()
        plan = await plan_invoice(
            store, COMPANY, CUSTOMER, month_period(PERIOD), reference=None, actor="tec-0", now=NOW
        )
        planned = time.perf_counter()
        record = await store.create_invoice(plan.draft)
        done = time.perf_counter()
    finally:
        await store.close()
    return {
        "number": record.number,
        "lines": len(record.lines),
        "total_incl_vat": str(record.total_incl_vat),
        "plan_s": planned - began,
        "create_s": done - planned,
    }


def traced(run: Callable[[], Coroutine[Any, Any, dict[str, Any]]]) -> tuple[dict[str, Any], int]:
    tracemalloc.start()
    try:
        result = asyncio.run(run())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def measure(size: int, tmp: Path) -> dict[str, Any]:
    timed, traced_copy = tmp / f"timed-{size}.db", tmp / f"traced-{size}.db"
    setup = asyncio.run(build(timed, size))
    shutil.copyfile(timed, traced_copy)
    run = asyncio.run(invoice_run(timed))
    memory, peak = traced(lambda: invoice_run(traced_copy))
    assert memory["total_incl_vat"] == run["total_incl_vat"] and run["lines"] == size
    figures = {
        "entries": size,
        "setup_s": round(setup, 2),
        "plan_s": round(run["plan_s"], 3),
        "create_s": round(run["create_s"], 3),
        "run_s": round(run["plan_s"] + run["create_s"], 3),
        "peak_mib": round(peak / 2**20, 1),
        "total_incl_vat": run["total_incl_vat"],
    }
    print(
        f"{size:>7} entries: invoice run {figures['run_s']:.2f} s "
        f"(plan {figures['plan_s']:.2f} s, create {figures['create_s']:.2f} s), "
        f"peak {figures['peak_mib']} MiB traced; total incl. VAT {run['total_incl_vat']}",
        flush=True,
    )
    return figures


def main(sizes: list[int]) -> None:
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="qp-bench-invoicing-") as tmp:
        results = [measure(size, Path(tmp)) for size in sizes]
    out: dict[str, Any] = {"runs": results}
    if len(results) >= 2:
        small, big = results[0], results[-1]
        scale = big["entries"] / small["entries"]
        out["size_ratio"] = scale
        out["time_ratio"] = round(big["run_s"] / small["run_s"], 2)
        out["memory_ratio"] = round(big["peak_mib"] / small["peak_mib"], 2)
        print(
            f"x{scale:g} entries: x{out['time_ratio']} time, x{out['memory_ratio']} peak memory"
            f" (linear: x{scale:g})"
        )
    out["elapsed_s"] = round(time.perf_counter() - began, 1)
    print(json.dumps(out, separators=(",", ":")))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    main(parser.parse_args().sizes)
