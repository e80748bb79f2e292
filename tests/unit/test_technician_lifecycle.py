"""Technicians' credentials and the office's reach, against a real SQLite file and a
fake clock: disable and enable, token rotation and expiry (with the warning in the
week before), the stamp that keeps an upgrade from locking anyone out, and what a
billing login may read with and without an admin's grant. No sockets."""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from relay.api.context import Context
from relay.api.dispatch import call
from relay.core.ids import token_hash
from relay.model import HelpRequest, SnapshotRecord, Technician
from relay.services.authorities import create_authorities
from relay.services.container import Services, build_services
from relay.services.directory import REFUSED
from relay.services.ports import OfflineChannel
from relay.settings import Settings
from relay.store.interface import Store
from shared.clock import FakeClock
from shared.errors import AuthError, NotFoundError
from shared.protocol.session_state import Event

DAY = 86400


def services(store: Store, clock: FakeClock, data: Path) -> Services:
    return build_services(
        store=store,
        clock=clock,
        settings=Settings(),
        authorities=create_authorities(data),
        relay_id="rly-1",
        channel=OfflineChannel(),
        data_dir=data,
    )


async def admin(s: Services) -> Technician:
    """The first admin, as ``qp-relay init`` makes one (logged in)."""
    root = Technician("tec-0", "root", 3, "admin", (), s.clock.now())
    await s.directory.store.add_technician(root, "root-token-hash")
    return root


async def refusals(store: Store) -> list[dict[str, Any]]:
    """The login refusals audited, oldest first (anonymous ones are counted per
    window: the caller flushes the auditor first)."""
    return [
        {"actor": r.actor, **{k: r.detail[k] for k in ("peer", "reason")}}
        for r in reversed(await store.list_audit())
        if r.event == "login_refused"
    ]


async def test_an_expired_token_is_refused_with_a_line_that_says_so(
    store: Store, tmp_path: Path
) -> None:
    clock = FakeClock()
    s = services(store, clock, tmp_path)
    tech, token = await s.directory.add_technician(await admin(s), "carol", 1, "technician", [])
    assert (await s.directory.login(token, "127.0.0.1")).id == tech.id
    clock.advance(90 * DAY - 1)
    await s.directory.login(token, "127.0.0.1")  # the last second of its 90 days
    clock.advance(1)
    with pytest.raises(AuthError) as refused:
        await s.directory.login(token, "127.0.0.1")
    assert str(refused.value) == (
        "your token expired on 2026-04-05; ask an admin for a new one "
        "(qp technician rotate-token carol), then run qp login again"
    )
    assert await refusals(store) == [
        {"actor": tech.id, "peer": "127.0.0.1", "reason": "token_expired"}
    ]


async def test_the_week_before_expiry_warns(store: Store, tmp_path: Path) -> None:
    clock = FakeClock()
    s = services(store, clock, tmp_path)
    _, token = await s.directory.add_technician(await admin(s), "carol", 1, "technician", [])
    clock.advance(82 * DAY)  # 8 days left: quiet
    assert s.directory.token_warning(await s.directory.login(token, "-")) is None
    clock.advance(2 * DAY)  # 6 days left
    tech = await s.directory.login(token, "-")
    assert s.directory.token_warning(tech) == (
        "your token expires on 2026-04-05 (in 6 day(s)); "
        "ask an admin for a new one: qp technician rotate-token carol"
    )
    who = await call(Context(s, tech), "whoami", {})
    assert who["token_warning"] == s.directory.token_warning(tech)
    assert who["token_expires_at"] == "2026-04-05T09:00:00Z"


async def test_a_rotated_token_works_and_the_old_one_stops_at_once(
    store: Store, tmp_path: Path
) -> None:
    clock = FakeClock()
    s = services(store, clock, tmp_path)
    root = await admin(s)
    _, old = await s.directory.add_technician(root, "carol", 1, "technician", [])
    clock.advance(89 * DAY)
    value = await call(Context(s, root), "technician.rotate_token", {"name": "carol"})
    assert value["token"] != old and not value["yours"]
    assert value["token_expires_at"] == "2026-07-03T09:00:00Z"  # 90 days from the rotation
    assert (await s.directory.login(value["token"], "-")).name == "carol"
    with pytest.raises(AuthError, match=f"^{REFUSED}$"):
        await s.directory.login(old, "-")
    rotated = [r for r in await store.list_audit() if r.event == "technician_token_rotate"]
    assert [(r.actor, r.subject) for r in rotated] == [(root.id, value["id"])]


async def test_a_disabled_technician_is_refused_like_an_unknown_token_and_their_session_ends(
    store: Store, tmp_path: Path
) -> None:
    s = services(store, FakeClock(), tmp_path)
    root = await admin(s)
    tech, token = await s.directory.add_technician(root, "carol", 1, "technician", ["Acme"])
    live, _ = await s.sessions.create("agt-1", tech.id, "cus-1", "shell")
    await s.sessions.advance(live, Event.OFFER)
    value = await call(Context(s, root), "technician.disable", {"name": "carol"})
    assert value == {"name": "carol", "disabled": True, "sessions_ended": 1}
    row = await store.get_session(live.row.id)
    assert row is not None and (row.state, row.end_reason) == ("ended", "technician_disabled")
    with pytest.raises(AuthError) as disabled:
        await s.directory.login(token, "10.0.0.7")
    with pytest.raises(AuthError) as unknown:
        await s.directory.login("qpt_nobody", "10.0.0.7")
    assert str(disabled.value) == str(unknown.value) == REFUSED
    await s.auditor.flush()
    assert await refusals(store) == [
        {"actor": tech.id, "peer": "10.0.0.7", "reason": "disabled"},
        {"actor": "anonymous", "peer": "10.0.0.7", "reason": "unknown_token"},
    ]
    await call(Context(s, root), "technician.enable", {"name": "carol"})
    assert (await s.directory.login(token, "-")).name == "carol"


async def test_an_admin_cannot_disable_themselves(store: Store, tmp_path: Path) -> None:
    s = services(store, FakeClock(), tmp_path)
    root = await admin(s)
    with pytest.raises(Exception, match="you cannot disable yourself"):
        await call(Context(s, root), "technician.disable", {"name": "root"})


async def test_tokens_from_before_expiry_get_the_full_lifetime_at_start(
    store: Store, tmp_path: Path
) -> None:
    clock = FakeClock()
    s = services(store, clock, tmp_path)
    # A token stored without an expiry, as every token was before migration 0011.
    dave = Technician("tec-7", "dave", 1, "technician", (), clock.now())
    await store.add_technician(dave, token_hash("qpt_dave"))
    clock.advance(400 * DAY)
    assert (await s.directory.login("qpt_dave", "-")).token_expires_at is None
    assert await s.directory.stamp_token_expiry() == 2  # dave and the fixture's alice
    assert await s.directory.stamp_token_expiry() == 0  # once
    stamped = await s.directory.login("qpt_dave", "-")
    assert stamped.token_expires_at == clock.now() + timedelta(days=90)
    clock.advance(90 * DAY)
    with pytest.raises(AuthError, match="expired"):
        await s.directory.login("qpt_dave", "-")


async def test_level_scope_and_grants_are_changed_with_their_audit(
    store: Store, tmp_path: Path
) -> None:
    s = services(store, FakeClock(), tmp_path)
    root = await admin(s)
    await s.directory.add_technician(root, "olga", 1, "billing", [])
    ctx = Context(s, root)
    assert await call(ctx, "technician.set_level", {"name": "olga", "level": 3}) == {
        "name": "olga",
        "level": 3,
    }
    assert await call(ctx, "technician.set_customers", {"name": "olga", "customers": ["Acme"]}) == {
        "name": "olga",
        "customers": ["Acme"],
    }
    await call(ctx, "technician.grant", {"name": "olga", "grant": "help"})
    await call(ctx, "technician.grant", {"name": "olga", "grant": "recordings"})
    assert await call(ctx, "technician.revoke_grant", {"name": "olga", "grant": "help"}) == {
        "name": "olga",
        "grants": ["recordings"],
    }
    (olga,) = [t for t in (await call(ctx, "technician.list", {}))["items"] if t["name"] == "olga"]
    assert (olga["level"], olga["customers"], olga["grants"]) == (3, ["Acme"], ["recordings"])
    events = [r.event for r in await store.list_audit() if r.actor == root.id]
    assert events.count("technician_grant") == 2 and "technician_set_level" in events


# -- what a billing login reads -------------------------------------------------------


async def _content(s: Services) -> tuple[str, int]:
    """A recorded session, a diagnostics snapshot and a help request of agent agt-1."""
    live, _ = await s.sessions.create("agt-1", "tec-1", "cus-1", "shell")
    await s.sessions.end(live, Event.TECHNICIAN_ENDED)
    s.recordings.append(live.row.id, 0, base64.b64encode(b"typed secrets").decode())
    now = s.clock.now()
    snap = SnapshotRecord(0, "agt-1", now, now, "refresh", data={"findings": [], "disk": "full"})
    await s.directory.store.add_snapshot(snap, 10)
    request = HelpRequest(0, "agt-1", "cus-1", "my password is hunter2", False, "open", now, now)
    number = await s.directory.store.add_help_request(request)
    return live.row.id, number


async def test_billing_gets_not_found_for_content_until_an_admin_grants_it(
    store: Store, tmp_path: Path
) -> None:
    s = services(store, FakeClock(), tmp_path)
    root = await admin(s)
    sid, number = await _content(s)
    office, _ = await s.directory.add_technician(root, "olga", 1, "billing", [])
    ctx = Context(s, office)
    asks = {
        "session.recording": ({"session": sid}, "no recording for that session"),
        "diag.get": ({"agent": "agt-1"}, "no agent 'agt-1' that you can reach"),
        "diag.list": ({"agent": "agt-1"}, "no agent 'agt-1' that you can reach"),
        "diag.pair": ({"agent": "agt-1"}, "no agent 'agt-1' that you can reach"),
        "request.show": ({"request": f"REQ-{number}"}, f"no request REQ-{number} that you can see"),
    }
    for method, (params, line) in asks.items():
        with pytest.raises(NotFoundError) as refused:
            await call(ctx, method, params)
        assert str(refused.value) == line, method
    # The same words as for something that does not exist.
    with pytest.raises(NotFoundError, match="^no recording for that session$"):
        await call(Context(s, root), "session.recording", {"session": "ses-404"})
    (queued,) = (await call(ctx, "request.queue", {}))["items"]
    assert (queued["label"], queued["text"]) == (f"REQ-{number}", None)
    assert await call(ctx, "session.list", {})  # metadata stays readable
    refused_grants = [r.detail["grant"] for r in await store.list_audit() if r.actor == office.id]
    assert sorted(set(refused_grants)) == ["diagnostics", "help", "recordings"]

    for grant in ("recordings", "diagnostics", "help"):
        await call(Context(s, root), "technician.grant", {"name": "olga", "grant": grant})
    granted = await store.get_technician(office.id)
    assert granted is not None
    ctx = Context(s, granted)
    recording = await call(ctx, "session.recording", {"session": sid})
    assert base64.b64decode(recording["data"]) == b"typed secrets"
    assert (await call(ctx, "diag.get", {"agent": "agt-1"}))["snapshot"]["disk"] == "full"
    assert (await call(ctx, "request.show", {"request": f"REQ-{number}"}))["text"] == (
        "my password is hunter2"
    )
    (queued,) = (await call(ctx, "request.queue", {}))["items"]
    assert queued["text"] == "my password is hunter2"


async def test_grants_are_for_billing_logins_only(store: Store, tmp_path: Path) -> None:
    s = services(store, FakeClock(), tmp_path)
    root = await admin(s)
    with pytest.raises(Exception, match="alice has the technician role; grants apply to billing"):
        await call(Context(s, root), "technician.grant", {"name": "alice", "grant": "help"})
