"""Credentials that can be taken back, through real relay, agent and console
processes: disabling a technician refuses their logins and ends their running
session; a rotated token works and the old one does not (admins included, and on
the relay machine with ``qp-relay admin-token --rotate``); an expired token is
refused with a line that says so; ``qp logout`` removes the stored credential; a
billing login reads diagnostics only once an admin grants it."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from console.profile import Profile
from console.rpc import RelayClient
from harness import BIN, World, timeout
from tests.integration.toolkit_helpers import one_line

REFUSED = "qp: the relay refused this token; ask an admin for a new one"


@dataclass
class Shop:
    world: World
    agent: str


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    world = World(Path(tmp_path_factory.mktemp("lifecycle")))
    try:
        token = world.init_relay()
        world.start_relay(0)
        world.login(token)
        world.qp("customer", "add", "Acme")
        agent_id, data = world.enroll("Acme", "acme-pc")
        world.start_agent(data)
        yield Shop(world, agent_id)
    finally:
        world.close()


def _set_expiry(world: World, name: str, when: datetime) -> None:
    """Move a technician's token expiry in the relay's database (as time would)."""
    stamp = when.astimezone(UTC).isoformat(timespec="microseconds")
    with closing(sqlite3.connect(world.relay_data / "relay.db")) as db:
        db.execute("UPDATE technicians SET token_expires_at = ? WHERE name = ?", (stamp, name))
        db.commit()


def test_a_disabled_technician_cannot_log_in_and_their_running_session_ends(
    shop: Shop,
) -> None:
    w = shop.world
    w.technician("carol", "Acme")
    running = w.spawn(
        [str(BIN / "qp"), "exec", "acme-pc", "--", "sh", "-c", "echo started; sleep 600"],
        home="carol",
    )
    running.wait_line("^started$", stream="stdout", within=30)
    (live,) = [s for s in w.qp_json("sessions") if s["state"] == "active"]
    assert w.qp_json("technician", "disable", "carol") == {
        "name": "carol",
        "disabled": True,
        "sessions_ended": 1,
    }
    assert running.wait(within=30) != 0  # its session is gone: qp exec does not hang
    (ended,) = [s for s in w.qp_json("sessions") if s["id"] == live["id"]]
    assert (ended["state"], ended["end_reason"]) == ("ended", "technician_disabled")
    refused = w.qp("whoami", home="carol", check=False)
    assert refused.returncode != 0
    unknown = w.run(
        [str(BIN / "qp"), "login", w.url, "--token", "qpt_" + "0" * 40], home="nobody", check=False
    )
    # Disabled and unknown look the same.
    assert one_line(refused.stderr) == one_line(unknown.stderr) == REFUSED
    w.qp("technician", "enable", "carol")
    assert w.qp_json("whoami", home="carol")["name"] == "carol"


def test_disabling_closes_the_technicians_open_console_links(shop: Shop) -> None:
    w = shop.world
    token = w.technician("grace", "Acme")

    async def scenario() -> tuple[int | None, str | None]:
        async with RelayClient(Profile(w.url, token)) as grace:
            await grace.call("whoami")
            await asyncio.to_thread(w.qp, "technician", "disable", "grace")
            ws = grace._ws
            assert ws is not None
            # Closed by the relay, not left open for its next call to be refused.
            await asyncio.wait_for(ws.wait_closed(), timeout(15))
            return ws.close_code, ws.close_reason

    code, reason = asyncio.run(scenario())
    assert (code, reason) == (1008, "the relay refused this token; ask an admin for a new one")


def test_a_rotated_token_works_and_the_old_one_does_not(shop: Shop) -> None:
    w = shop.world
    old = w.technician("dave", "Acme")
    rotated = w.qp_json("technician", "rotate-token", "dave")
    assert rotated["token"] != old and rotated["yours"] is False
    stale = w.qp("whoami", home="dave", check=False)
    assert stale.returncode != 0 and one_line(stale.stderr) == REFUSED
    w.login(rotated["token"], home="dave")
    assert w.qp_json("whoami", home="dave")["name"] == "dave"


def test_an_admin_rotates_their_own_token_and_keeps_working(shop: Shop) -> None:
    w = shop.world
    before = json.loads((w.root / "qp" / "admin" / "profile.json").read_text())["token"]
    done = w.qp("technician", "rotate-token")
    after = json.loads((w.root / "qp" / "admin" / "profile.json").read_text())["token"]
    assert after != before and after in done.stdout.decode()
    assert "your profile" in done.stderr.decode()
    assert w.qp_json("whoami")["name"] == "admin"
    stale = w.run(
        [str(BIN / "qp"), "login", w.url, "--token", before], home="old-admin", check=False
    )
    assert one_line(stale.stderr) == REFUSED


def test_the_relay_machine_issues_a_new_admin_token(shop: Shop) -> None:
    w = shop.world
    before = json.loads((w.root / "qp" / "admin" / "profile.json").read_text())["token"]
    out = w.run(
        [str(BIN / "qp-relay"), "admin-token", "--rotate", "--data", str(w.relay_data), "--json"]
    )
    new = json.loads(out.stdout)
    assert new["name"] == "admin" and new["token"] != before
    stale = w.qp("whoami", check=False)  # the running relay refuses the old one at once
    assert one_line(stale.stderr) == REFUSED
    w.login(new["token"])
    assert w.qp_json("whoami")["name"] == "admin"


def test_an_expired_token_is_refused_with_a_line_that_says_so(shop: Shop) -> None:
    w = shop.world
    w.technician("erin", "Acme")
    _set_expiry(w, "erin", datetime.now(UTC) + timedelta(days=3))
    warned = w.qp("whoami", home="erin")
    assert "warning: your token expires on" in warned.stderr.decode()
    assert "qp technician rotate-token erin" in warned.stderr.decode()
    _set_expiry(w, "erin", datetime(2026, 2, 1, tzinfo=UTC))
    expired = w.qp("whoami", home="erin", check=False)
    assert expired.returncode != 0
    assert one_line(expired.stderr) == (
        "qp: your token expired on 2026-02-01; ask an admin for a new one "
        "(qp technician rotate-token erin), then run qp login again"
    )
    w.login(w.qp_json("technician", "rotate-token", "erin")["token"], home="erin")
    assert w.qp_json("whoami", home="erin")["name"] == "erin"


def test_logout_removes_the_stored_credential(shop: Shop) -> None:
    w = shop.world
    token = w.technician("frank", "Acme")
    profile = w.root / "qp" / "frank" / "profile.json"
    assert token in profile.read_text()
    out = w.qp("logout", home="frank")
    assert "logged out" in out.stdout.decode()
    assert not profile.exists()
    after = w.qp("whoami", home="frank", check=False)
    assert one_line(after.stderr) == "qp: not logged in; run 'qp login URL --token TOKEN' first"
    again = w.qp("logout", home="frank")
    assert "not logged in" in again.stdout.decode()


def test_billing_reads_diagnostics_only_when_granted(shop: Shop) -> None:
    w = shop.world
    w.technician("olga", role="billing")
    denied = w.qp("diag", "acme-pc", "--refresh", home="olga", check=False)
    assert one_line(denied.stderr) == "qp: no agent 'acme-pc' that you can reach"
    assert w.qp_json("agents", home="olga")  # metadata stays visible
    w.qp("technician", "grant", "olga", "diagnostics")
    granted = w.qp_json("diag", "acme-pc", "--refresh", home="olga")
    assert granted["agent_name"] == "acme-pc"
    w.qp("technician", "revoke-grant", "olga", "diagnostics")
    again = w.qp("diag", "acme-pc", home="olga", check=False)
    assert one_line(again.stderr) == "qp: no agent 'acme-pc' that you can reach"
