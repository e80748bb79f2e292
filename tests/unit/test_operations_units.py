"""The small parts behind the operations features: a settings swap reaches the next
session's price, store writes are measured, JSON log lines, ``metrics_allow``."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from relay.model import EntryQuery
from relay.services.live_settings import LiveSettings
from relay.services.metrics import RelayMetrics
from relay.services.sessions import SessionManager
from relay.settings import Billing, Settings, load_settings
from relay.store.interface import Store
from relay.transport.server import address_allowed
from shared.clock import FakeClock
from shared.errors import ConfigError
from shared.logs import JsonFormatter
from tests.unit.test_billing_timekeeping import MONDAY_10H, work


def _rate(rate: str) -> Settings:
    return dataclasses.replace(
        Settings(), billing=dataclasses.replace(Billing(), hourly_rate=Decimal(rate))
    )


async def test_a_swap_prices_the_next_session_and_leaves_the_last_alone(store: Store) -> None:
    """No card imported: the relay's [billing] rate prices sessions; a reload that
    changes it prices the next session, never one already written."""
    clock = FakeClock(MONDAY_10H)
    live = LiveSettings(_rate("90.00"))
    manager = SessionManager(store, clock, live, "rly-1")
    manager.ready_grace = 0
    await work(manager, clock, 60 * 60)
    clock.advance(3600)  # past the merge window: the next session is an entry of its own
    live.swap(_rate("120.00"))
    assert manager.settings.billing.hourly_rate == Decimal("120.00")
    await work(manager, clock, 60 * 60)
    entries = await store.query_entries(EntryQuery())
    assert sorted(e.amount for e in entries) == [Decimal("90.00"), Decimal("120.00")]


def _samples(metrics: RelayMetrics) -> dict[str, float]:
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for sample in family.samples
        if not sample.labels or sample.labels == {"le": "+Inf"}
    }


async def test_store_writes_are_timed_and_reads_are_not(store: Store) -> None:
    metrics = RelayMetrics()
    store.write_observer = metrics.store_write
    await store.set_meta("probe", "1")
    await store.get_meta("probe")
    samples = _samples(metrics)
    assert samples["qp_store_write_seconds_count"] == 1
    assert samples["qp_store_write_failures_total"] == 0


def test_two_nodes_in_one_process_keep_their_own_counts() -> None:
    a, b = RelayMetrics(), RelayMetrics()
    a.session_started("exec")
    assert "qp_sessions_started_total" in a.render().decode()
    assert 'kind="exec"' not in b.render().decode()


def test_a_json_log_line_has_the_fields_and_the_extras() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord(
            "qp.relay", logging.ERROR, __file__, 1, "failed %s", ("here",), sys.exc_info()
        )
    record.session = "ses-1"
    line = json.loads(JsonFormatter().format(record))
    assert (line["level"], line["logger"], line["message"]) == ("error", "qp.relay", "failed here")
    assert line["session"] == "ses-1" and "ValueError: boom" in line["exception"]
    assert line["time"].endswith("+00:00")


def test_metrics_allow_takes_addresses_and_networks(tmp_path: Path) -> None:
    assert address_allowed("127.0.0.1", ("127.0.0.1", "::1"))
    assert address_allowed("::ffff:10.1.2.3", ("10.0.0.0/8",))
    assert not address_allowed("192.0.2.1", ("127.0.0.1", "::1"))
    assert not address_allowed("?", ("0.0.0.0/0",))
    path = tmp_path / "relay.toml"
    path.write_text('[limits]\nmetrics_allow = ["10.0.0.0/8", "monitoring"]\n')
    with pytest.raises(ConfigError, match="'monitoring' is not an address or network"):
        load_settings(path)


def test_a_reload_changes_the_help_request_limit(tmp_path: Path) -> None:
    import asyncio

    from relay.app import Relay
    from relay.init import init_relay
    from relay.settings import Limits

    init_relay(tmp_path / "relay")

    async def run() -> tuple[int, int]:
        relay = await Relay.open(tmp_path / "relay")
        try:
            before = relay.services.requests.per_agent
            new = dataclasses.replace(
                Settings(), limits=dataclasses.replace(Limits(), help_requests_per_agent=3)
            )
            relay.services.live.swap(new)
            return before, relay.services.requests.per_agent
        finally:
            await relay.stop()

    assert asyncio.run(run()) == (Limits().help_requests_per_agent, 3)
