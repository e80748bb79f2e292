"""Acceptance (hardened relay, audit): every refusal is audited and readable.

A real relay on 127.0.0.1 with customers Acme and Globex: alice serves Acme, bob
serves Globex. alice probes every console method that takes an agent, session,
customer, request, entry, token or technician with Globex's (or bob's) references:
each answer must be exactly what a reference that does not exist gets, and each
probe an ``out_of_scope`` record naming alice, the method and the reference. Role
refusals, a bad proof of key at enrolment and bad logins are audited too, and
``qp audit`` (a real subprocess) shows them. A flood of bad tunnel requests adds
one counted row per window, not a row per request.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from console.profile import Profile
from console.rpc import RelayClient
from harness import World
from relay.model import HelpRequest
from relay.store.sqlite import SQLiteStore
from shared.errors import NotFoundError, QPError
from shared.keys import generate_key, public_text, sign_challenge
from shared.protocol.messages import RELAY_TO_AGENT, Message, decode, encode
from shared.transport import dial
from tests.store.records import session as session_record

FLOOD = 2000


@dataclass
class Site:
    world: World
    acme_agent: str
    globex_agent: str
    alice: str  # technician ids
    bob: str
    globex_request: str  # REQ-n
    globex_session: str
    bob_entry: str
    bob_token: str  # an enrollment token id of Globex


def profile_of(world: World, home: str) -> Profile:
    data = json.loads((world.root / "qp" / home / "profile.json").read_text())
    return Profile(str(data["url"]), str(data["token"]))


async def _seed_store(world: World, site: dict[str, str]) -> tuple[str, str]:
    """A help request from Globex's agent and a session of bob's on it, written
    straight into the relay's database (a second connection; WAL)."""
    store = SQLiteStore(str(world.relay_data / "relay.db"))
    await store.open()
    try:
        globex = await store.find_customer("Globex")
        assert globex is not None
        now = datetime.now(UTC)
        number = await store.add_help_request(
            HelpRequest(0, site["globex_agent"], globex.id, "printer", False, "open", now, now)
        )
        row = dataclasses.replace(
            session_record("ses-globex0000001", created_at=now),
            agent_id=site["globex_agent"],
            technician_id=site["bob"],
            customer_id=globex.id,
            state="ended",
            ended_at=now,
            request=None,
        )
        await store.add_session(row)
        return f"REQ-{number}", row.id
    finally:
        await store.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    world = World(Path(tmp_path_factory.mktemp("audit")))
    try:
        token = world.init_relay()
        world.start_relay(0)
        world.login(token)
        world.qp("customer", "add", "Acme")
        world.qp("customer", "add", "Globex")
        world.technician("alice", "Acme")
        world.technician("bob", "Globex")
        techs = {t["name"]: t["id"] for t in world.qp_json("technician", "list")}
        acme_agent, acme_data = world.enroll("Acme", "acme-pc")
        world.start_agent(acme_data)  # online: session.open reaches its request check
        globex_agent, _ = world.enroll("Globex", "globex-pc")
        ids = {"globex_agent": globex_agent, "bob": techs["bob"]}
        request, session_id = asyncio.run(_seed_store(world, ids))
        entry = world.qp_json(
            "time", "add", "--customer", "Globex", "--service", "phone", "--minutes", "20",
            home="bob",
        )  # fmt: skip
        bob_token = world.qp_json("enroll-token", "create", "--customer", "Globex", home="bob")
        yield Site(
            world,
            acme_agent,
            globex_agent,
            techs["alice"],
            techs["bob"],
            request,
            session_id,
            entry["id"],
            bob_token["id"],
        )
    finally:
        world.close()


# -- every cross-customer probe answers like an unknown reference, and is audited ---------

UNKNOWN_AGENT = "agt-000000000000"


def probes(s: Site) -> list[tuple[str, dict[str, Any], dict[str, Any], str, str]]:
    """(method, params naming Globex's thing, params naming nothing, the two refs)."""
    key = public_text(generate_key())
    opening = {"kind": "exec", "public_key": key}
    on_acme = {**opening, "agent": "acme-pc"}
    work = {"service": "phone", "minutes": 5}
    table: list[tuple[str, str, str, str, dict[str, Any]]] = [
        # method, parameter, Globex's, unknown, other parameters
        ("session.open", "agent", s.globex_agent, UNKNOWN_AGENT, opening),
        ("session.open", "agent", "globex-pc", "no-such-pc", opening),
        ("session.open", "request", s.globex_request, "REQ-999999", on_acme),
        ("session.end", "session", s.globex_session, "ses-000000000000", {}),
        ("session.recording", "session", s.globex_session, "ses-000000000000", {}),
        ("policy.show", "agent", s.globex_agent, UNKNOWN_AGENT, {}),
        ("policy.show", "customer", "Globex", "No Such Co", {}),
        ("support_code.create", "customer", "Globex", "No Such Co", {}),
        ("support_code.create", "request", s.globex_request, "REQ-999999", {"customer": "Acme"}),
        ("enroll_token.create", "customer", "Globex", "No Such Co", {}),
        ("enroll_token.revoke", "id", s.bob_token, "enr-000000000000", {}),
        ("diag.get", "agent", s.globex_agent, UNKNOWN_AGENT, {}),
        ("diag.list", "agent", "globex-pc", "no-such-pc", {}),
        ("diag.pair", "agent", s.globex_agent, UNKNOWN_AGENT, {}),
        ("request.show", "request", s.globex_request, "REQ-999999", {}),
        ("request.take", "request", s.globex_request, "REQ-999999", {}),
        ("request.close", "request", s.globex_request, "REQ-999999", {"resolution": "x"}),
        ("time.search", "customer", "Globex", "No Such Co", {}),
        ("time.search", "technician", "bob", "nobody", {}),
        ("time.search", "technician", s.bob, "tec-000000000000", {}),
        ("time.show", "id", s.bob_entry, "ent-000000000000", {}),
        ("time.edit", "id", s.bob_entry, "ent-000000000000", {"reason": "probe"}),
        ("time.add", "customer", "Globex", "No Such Co", work),
        ("time.add", "technician", "bob", "nobody", {**work, "customer": "Acme"}),
        ("time.add", "attach", s.bob_entry, "ent-000000000000", {**work, "customer": "Acme"}),
    ]  # fmt: skip
    return [
        (method, {**rest, param: theirs}, {**rest, param: unknown}, theirs, unknown)
        for method, param, theirs, unknown, rest in table
    ]


async def _answer(client: RelayClient, method: str, params: dict[str, Any]) -> tuple[str, str]:
    """The error a call gets, as (code, message); a success fails the test."""
    try:
        value = await client.call(method, **params)
    except QPError as exc:
        return exc.code, str(exc)
    raise AssertionError(f"{method} {params} answered {value!r}")


async def _walk(s: Site) -> list[tuple[str, str, str, str]]:
    answers = []
    async with RelayClient(profile_of(s.world, "alice")) as client:
        for method, theirs, unknown, ref, nothing in probes(s):
            code_t, text_t = await _answer(client, method, theirs)
            code_u, text_u = await _answer(client, method, unknown)
            answers.append(
                (
                    f"{method}({ref})",
                    f"{code_t}: {text_t.replace(ref, '<ref>')}",
                    f"{code_u}: {text_u.replace(nothing, '<ref>')}",
                    code_t,
                )
            )
    return answers


async def _trail(world: World, **filters: Any) -> list[dict[str, Any]]:
    """Every audit record matching ``filters``, through ``audit.list`` as the admin."""
    rows: list[dict[str, Any]] = []
    async with RelayClient(profile_of(world, "admin")) as client:
        offset: int | None = 0
        while offset is not None:
            got = await client.call("audit.list", offset=offset, **filters)
            rows += got["items"]
            offset = got["next"]
    return rows


def test_every_cross_customer_probe_answers_as_unknown_and_is_audited(site: Site) -> None:
    answers = asyncio.run(_walk(site))
    assert len(answers) >= 20
    differ = [
        (probe, theirs, unknown) for probe, theirs, unknown, _ in answers if theirs != unknown
    ]
    assert differ == []
    assert {code for *_, code in answers} == {NotFoundError.code}

    audited = asyncio.run(_trail(site.world, event="out_of_scope", actor="alice"))
    seen = {(r["detail"]["method"], r["subject"]) for r in audited}
    expected = {(method, ref) for method, _, _, ref, _ in probes(site)}
    assert expected - seen == set()
    assert all(r["actor"] == site.alice and r["actor_name"] == "alice" for r in audited)
    # An unknown reference is a mistake, not a probe: never recorded as one.
    unknown = {nothing for *_, nothing in probes(site)}
    assert [r for r in audited if r["subject"] in unknown] == []


def test_a_technician_cannot_learn_other_technicians_names(site: Site) -> None:
    def search(who: str) -> tuple[int, bytes]:
        proc = site.world.qp("time", "--technician", who, "--json", home="alice", check=False)
        return proc.returncode, proc.stderr.replace(who.encode(), b"<who>")

    assert search("bob") == search("nobody")
    assert search("bob")[0] != 0
    mine = site.world.qp_json("time", "--technician", "alice", home="alice")
    assert isinstance(mine, list)


# -- qp audit shows a probe, a role refusal and a bad proof of key ---------------------------


async def _bad_enrolment_proof(world: World) -> str:
    """An ``enroll`` whose signature is not made by the identity key it registers."""
    identity, impostor, host = generate_key(), generate_key(), generate_key()
    ws = await dial(world.url + "/v1/agent")
    try:
        challenge = decode(await ws.recv(), RELAY_TO_AGENT)
        body = {
            "token": "qpe_" + "x" * 40,
            "identity_key": public_text(identity),
            "host_key": public_text(host),
            "name": "impostor",
            "signature": sign_challenge(
                impostor, challenge.body["nonce"], challenge.body["relay_id"]
            ),
        }
        await ws.send(encode(Message("enroll", body)))
        reply = decode(await ws.recv(), RELAY_TO_AGENT)
        return str(reply.body.get("message"))
    finally:
        await ws.close()


def test_qp_audit_lists_a_probe_a_role_refusal_and_a_bad_enrolment_proof(site: Site) -> None:
    w = site.world
    probe = w.qp("exec", site.globex_agent, "--", "true", home="alice", check=False)
    assert probe.returncode != 0
    role = w.qp("technician", "list", home="alice", check=False)
    assert role.returncode != 0
    assert asyncio.run(_bad_enrolment_proof(w)) == "proof of key failed"
    stranger = w.qp("login", w.url, "--token", "qpt_" + "0" * 40, home="stranger", check=False)
    assert stranger.returncode != 0

    rows = w.qp_json("audit", "--limit", "500")
    events = {(r["event"], r["actor_name"], r["subject"]) for r in rows}
    assert ("out_of_scope", "alice", site.globex_agent) in events
    assert ("role_refused", "alice", "technician.list") in events
    (proof,) = [r for r in rows if r["event"] == "enroll_proof_refused"]
    assert (proof["actor"], proof["peer"], proof["count"]) == ("anonymous", "127.0.0.1", 1)
    assert [r["peer"] for r in rows if r["event"] == "login_refused"] == ["127.0.0.1"]

    # Filters, and a table people read: names with ids, local times, counts.
    only = w.qp_json("audit", "--event", "role_refused", "--actor", "alice", "--since", "1h")
    assert {(r["event"], r["actor_name"]) for r in only} == {("role_refused", "alice")}
    assert w.qp_json("audit", "--until", "2000-01-01") == []
    table = w.qp("audit", "--event", "role_refused").stdout.decode()
    assert f"alice ({site.alice})" in table and "technician.list" in table
    local = datetime.fromisoformat(only[0]["at"]).astimezone().strftime("%Y-%m-%d %H:%M")
    assert local in table

    # Admins only; asking is itself a refusal on record.
    denied = w.qp("audit", home="alice", check=False)
    assert denied.returncode != 0 and b"admin" in denied.stderr
    assert w.qp_json("audit", "--event", "role_refused", "--subject", "audit.list") != []


# -- a flood of bad tunnel requests: counted, not written row by row ---------------------------


async def _bad_tunnel_requests(port: int, count: int) -> list[bytes]:
    """``count`` WebSocket upgrades to a tunnel with a wrong token; the status lines."""
    gate = asyncio.Semaphore(16)

    async def one(i: int) -> bytes:
        async with gate:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(
                    f"GET /v1/tunnel/ses-{i:012d} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                    "Authorization: Bearer wrong-token\r\n\r\n".encode()
                )
                await writer.drain()
                return await reader.readline()
            finally:
                writer.close()

    return await asyncio.gather(*(one(i) for i in range(count)))


def _rows_in_db(world: World) -> int:
    db = sqlite3.connect(f"file:{world.relay_data / 'relay.db'}?mode=ro", uri=True)
    try:
        (n,) = db.execute("SELECT COUNT(*) FROM audit").fetchone()
        return int(n)
    finally:
        db.close()


def test_a_flood_of_bad_tunnel_requests_adds_only_a_handful_of_rows(site: Site) -> None:
    w = site.world
    before = _rows_in_db(w)
    statuses = asyncio.run(_bad_tunnel_requests(w.port, FLOOD))
    assert {line.split(b" ", 2)[1] for line in statuses} == {b"403"}
    assert _rows_in_db(w) - before <= 5  # not a row per request

    rows = w.qp_json("audit", "--event", "tunnel_refused", "--limit", "1000")
    assert sum(r["count"] for r in rows) == FLOOD
    assert {(r["actor"], r["peer"]) for r in rows} == {("anonymous", "127.0.0.1")}
    # Reading wrote the open windows: this flood's row, and a few of earlier tests'.
    added = _rows_in_db(w) - before
    assert 1 <= added <= 5, added
    table = w.qp("audit", "--event", "tunnel_refused").stdout.decode()
    assert all(f" {r['count']} " in table for r in rows), table


def test_refusals_are_structured_lines_in_the_relay_log(site: Site) -> None:
    w, relay = site.world, site.world.relay
    assert relay is not None
    mark = relay.count("stderr")
    w.qp("technician", "list", home="alice", check=False)
    w.qp("diag", "globex-pc", home="alice", check=False)
    asyncio.run(_bad_tunnel_requests(w.port, 1))
    for pattern in (
        rf"event=role_refused actor={site.alice} subject=technician.list peer=- count=1",
        rf"event=out_of_scope actor={site.alice} subject=globex-pc .*method=diag.get",
        r"event=tunnel_refused actor=anonymous subject=ses-\d+ peer=127.0.0.1 count=1",
    ):
        relay.wait_line(pattern, start=mark)
