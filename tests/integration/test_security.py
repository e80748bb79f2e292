"""Acceptance: security properties, each shown as a refusal AND as nothing opened.

Every test here checks two things: that the relay, agent or console said no, and
that saying no left nothing behind: no marker file created by a remote command,
no session row, no new agent, no SSH login on the agent.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import shlex
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from websockets.asyncio.client import ClientConnection

from console.profile import Profile
from console.rpc import RelayClient
from harness import BIN, Proc, World, timeout
from relay.core.ids import new_id, new_token, token_hash
from relay.model import EnrollToken
from relay.store.sqlite import SQLiteStore
from shared.clock import SystemClock
from shared.errors import AuthError
from shared.keys import certificate_text, generate_key, parse_certificate, public_text
from shared.ssh_options import client_options, connect
from shared.transport import dial
from shared.wstunnel import WebSocketTunnel
from tests.integration.conftest import Office
from tests.integration.inprocess import arun, node_with_agent

UNKNOWN_NAME = "no-such-pc"
UNKNOWN_ID = "agt-000000000000"
ENROLL_REFUSED = "enrollment token is invalid, expired or used up"


# -- helpers ------------------------------------------------------------------------------


def profile_of(world: World, home: str) -> Profile:
    """The profile ``qp login`` saved for ``home`` (relay URL and token)."""
    data = json.loads((world.root / "qp" / home / "profile.json").read_text())
    return Profile(str(data["url"]), str(data["token"]))


def one_line(stderr: bytes) -> str:
    lines = [line for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def exec_refused(world: World, home: str, ref: str, marker: Path) -> str:
    """``qp exec REF -- touch MARKER`` must fail; its one stderr line with REF masked."""
    proc = world.qp("exec", ref, "--", "touch", str(marker), home=home, check=False)
    assert proc.returncode != 0, proc
    assert proc.stdout == b""
    return one_line(proc.stderr).replace(ref, "<agent>")


async def open_sessions(profile: Profile, key: asyncssh.SSHKey, count: int) -> list[dict[str, Any]]:
    """``session.open`` on acme-pc ``count`` times, all certifying ``key``."""
    infos: list[dict[str, Any]] = []
    async with RelayClient(profile) as client:
        for _ in range(count):
            infos.append(
                await client.call(
                    "session.open", agent="acme-pc", kind="exec", public_key=public_text(key)
                )
            )
    return infos


async def dial_tunnel(info: dict[str, Any], token: str | None) -> ClientConnection:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return await dial(info["tunnel_url"], tunnel=True, headers=headers)


async def ssh_over(
    ws: ClientConnection, info: dict[str, Any], key: asyncssh.SSHKey, cert: asyncssh.SSHCertificate
) -> asyncssh.SSHClientConnection:
    """SSH through the tunnel exactly as console/ssh_session.py does."""
    options = client_options(info["agent_id"], info["host_ca"], key, cert)
    return await connect(info["agent_id"], options, tunnel=WebSocketTunnel(ws))


async def refused_by_agent(
    ws: ClientConnection, info: dict[str, Any], key: asyncssh.SSHKey, cert: asyncssh.SSHCertificate
) -> None:
    with pytest.raises(asyncssh.PermissionDenied):
        await ssh_over(ws, info, key, cert)
    await ws.close()


async def touch_through(
    ws: ClientConnection,
    info: dict[str, Any],
    key: asyncssh.SSHKey,
    cert: asyncssh.SSHCertificate,
    marker: Path,
) -> None:
    """The positive control: log in and create ``marker`` on the agent."""
    async with await ssh_over(ws, info, key, cert) as conn:
        done = await conn.run(shlex.join(["touch", str(marker)]), check=True)
        assert done.exit_status == 0
    assert marker.exists()


async def wait_session_ended(profile: Profile, session_id: str) -> dict[str, Any]:
    """Bounded polling of the relay until ``session_id`` is ended."""
    deadline = time.monotonic() + timeout(15)
    async with RelayClient(profile) as client:
        while True:
            rows = {s["id"]: s for s in (await client.call("session.list"))["items"]}
            row: dict[str, Any] = rows[session_id]
            if row["state"] == "ended":
                return row
            assert time.monotonic() < deadline, row
            await asyncio.sleep(0.05)


def assert_agent_never_logged_in(agent: Proc, session_id: str) -> None:
    """The agent was offered the session but no SSH login ever completed on it.

    Called once the client has been refused and the relay has ended the session,
    so a login the agent had accepted would already have been logged."""
    agent.wait_line(rf"session {session_id} offered")
    assert f"session {session_id}: technician connected" not in agent.text()


def now_ts() -> int:
    return int(time.time())


# -- 1. scope: forbidden looks exactly like unknown -----------------------------------------


def test_out_of_scope_agent_looks_unknown(office: Office, tmp_path: Path) -> None:
    w = office.world
    marker = tmp_path / "bob-was-here"

    def bobs_sessions() -> list[dict[str, Any]]:
        return [s for s in w.qp_json("sessions") if s["technician"] == "bob"]

    before = bobs_sessions()
    by_name = exec_refused(w, "bob", "acme-pc", marker)
    unknown_name = exec_refused(w, "bob", UNKNOWN_NAME, marker)
    by_id = exec_refused(w, "bob", office.acme_agent, marker)
    unknown_id = exec_refused(w, "bob", UNKNOWN_ID, marker)

    assert by_name == unknown_name
    assert by_id == unknown_id
    assert by_name == by_id  # one answer, whichever way the agent is named
    assert "acme" not in by_name.lower() and office.acme_agent not in by_name
    assert not marker.exists()
    after = bobs_sessions()
    assert after == before
    assert not [s for s in after if s["agent"] == office.acme_agent]
    # Control: the same command as a technician in scope does run.
    w.qp("exec", "acme-pc", "--", "touch", str(marker), home="alice")
    assert marker.exists()


# -- 2. a certificate is for one session only ------------------------------------------------


async def test_certificate_for_session_a_is_refused_for_session_b(
    office: Office, tmp_path: Path
) -> None:
    profile = profile_of(office.world, "alice")
    key = generate_key()
    info_a, info_b = await open_sessions(profile, key, 2)
    assert info_a["session_id"] != info_b["session_id"]
    cert_a = parse_certificate(info_a["certificate"])

    ws_b = await dial_tunnel(info_b, info_b["tunnel_token"])
    await refused_by_agent(ws_b, info_b, key, cert_a)
    await wait_session_ended(profile, info_b["session_id"])
    assert_agent_never_logged_in(office.acme_proc, info_b["session_id"])

    # Control: A's certificate is good, for A.
    ws_a = await dial_tunnel(info_a, info_a["tunnel_token"])
    await touch_through(ws_a, info_a, key, cert_a, tmp_path / "session-a")


# -- 3. expired, foreign-CA and principal-less certificates ----------------------------------


@dataclass(frozen=True)
class CertCase:
    signer: str  # "user_ca" (the relay's) or "foreign"
    principals: str  # "session" (session:<id>) or "none"
    valid: str  # "now" or "expired"
    accepted: bool


CERT_CASES = {
    "expired": CertCase("user_ca", "session", "expired", False),
    "foreign-ca": CertCase("foreign", "session", "now", False),
    "no-principals": CertCase("user_ca", "none", "now", False),
    "valid-control": CertCase("user_ca", "session", "now", True),
}


@pytest.mark.parametrize("case", list(CERT_CASES))
async def test_crafted_certificates(office: Office, tmp_path: Path, case: str) -> None:
    spec = CERT_CASES[case]
    w = office.world
    profile = profile_of(w, "alice")
    key = generate_key()
    (info,) = await open_sessions(profile, key, 1)
    sid = info["session_id"]
    signer = (
        asyncssh.read_private_key(w.relay_data / "user_ca")
        if spec.signer == "user_ca"
        else asyncssh.generate_private_key("ssh-ed25519")
    )
    now = now_ts()
    after, before = (now - 7200, now - 3600) if spec.valid == "expired" else (now - 60, now + 600)
    cert = signer.generate_user_certificate(
        key,
        key_id=f"crafted/{case}",
        principals=[f"session:{sid}"] if spec.principals == "session" else [],
        valid_after=after,
        valid_before=before,
    )
    marker = tmp_path / f"crafted-{case}"
    ws = await dial_tunnel(info, info["tunnel_token"])
    if spec.accepted:
        await touch_through(ws, info, key, cert, marker)
        office.acme_proc.wait_line(rf"session {sid}: technician connected")
        return
    await refused_by_agent(ws, info, key, cert)
    await wait_session_ended(profile, sid)
    assert_agent_never_logged_in(office.acme_proc, sid)
    assert not marker.exists()


# -- 4. tunnel tokens are single-use; a third end is refused -----------------------------


async def test_reused_tunnel_token_and_third_end_are_refused(
    office: Office, tmp_path: Path
) -> None:
    profile = profile_of(office.world, "alice")
    key = generate_key()
    (info,) = await open_sessions(profile, key, 1)
    sid = info["session_id"]
    ws = await dial_tunnel(info, info["tunnel_token"])  # pairs with the agent's end

    with pytest.raises(AuthError, match="forbidden"):
        await dial_tunnel(info, info["tunnel_token"])
    with pytest.raises(AuthError, match="forbidden"):
        await dial_tunnel(info, None)
    with pytest.raises(AuthError, match="forbidden"):
        await dial_tunnel(info, "qpx_" + secrets.token_urlsafe(32))
    # An unknown session gets the very same answer.
    bogus = dict(info, tunnel_url=info["tunnel_url"].replace(sid, new_id("ses")))
    with pytest.raises(AuthError, match="forbidden"):
        await dial_tunnel(bogus, info["tunnel_token"])

    # Nothing was opened beside the legitimate pair, which still works end to end.
    async with RelayClient(profile) as client:
        rows = {s["id"]: s for s in (await client.call("session.list"))["items"]}
    assert rows[sid]["state"] == "active"
    cert = parse_certificate(info["certificate"])
    await touch_through(ws, info, key, cert, tmp_path / "legit-pair")


# -- 5. a revoked agent cannot link ---------------------------------------------------------


def test_revoked_agent_cannot_link(office: Office, tmp_path: Path) -> None:
    w = office.world
    agent_id, data = w.enroll("Acme", "revoked-pc")
    first = w.start_agent(data)
    revoked = w.qp_json("agent", "revoke", agent_id)
    assert revoked["revoked"] is True
    first.wait_line(r"relay refused this agent")  # cut off and not let back in
    first.stop()

    again = w.spawn([str(BIN / "qp-agent"), "run", "--data", str(data)])
    try:
        again.wait_line(r"relay refused this agent")
        assert "connected to relay as" not in again.text()
        (row,) = [a for a in w.qp_json("agents") if a["id"] == agent_id]
        assert row["online"] is False
        assert row["revoked"] is True
        marker = tmp_path / "revoked-ran"
        unknown = exec_refused(w, "admin", UNKNOWN_ID, marker)
        assert exec_refused(w, "admin", agent_id, marker) == unknown
        assert exec_refused(w, "alice", "revoked-pc", marker) == exec_refused(
            w, "alice", UNKNOWN_NAME, marker
        )
        assert not marker.exists()
    finally:
        again.stop()


# -- 6. expired, used-up and revoked enrollment tokens --------------------------------------


def enroll_refused(w: World, token: str, data: Path) -> str:
    proc = w.run(
        [str(BIN / "qp-agent"), "enroll", w.url, "--token", token, "--name", data.name]
        + ["--data", str(data)],
        check=False,
    )
    assert proc.returncode != 0, proc
    assert not (data / "agent.json").exists()
    return one_line(proc.stderr)


async def test_bad_enrollment_tokens_are_refused(office: Office, tmp_path: Path) -> None:
    w = office.world
    agents_before = {a["id"] for a in w.qp_json("agents")}

    # Used up: one use, spent by a first enrollment.
    once = w.qp_json("enroll-token", "create", "--customer", "Acme", "--uses", "1")
    w.run(
        [str(BIN / "qp-agent"), "enroll", w.url, "--token", once["token"], "--name", "first"]
        + ["--data", str(tmp_path / "first")]
    )
    used_up = enroll_refused(w, once["token"], tmp_path / "second")

    # Expired: written straight into the store (a second connection; WAL).
    store = SQLiteStore(str(w.relay_data / "relay.db"))
    await store.open()
    try:
        acme = await store.find_customer("Acme")
        assert acme is not None
        admin = next(t for t in await store.list_technicians() if t.role == "admin")
        now = SystemClock().now()
        expired_token = new_token("qpe")
        record = EnrollToken(
            new_id("enr"),
            acme.id,
            expires_at=now - timedelta(minutes=5),
            uses_left=5,
            created_by=admin.id,
            created_at=now - timedelta(hours=1),
        )
        await store.add_enroll_token(record, token_hash(expired_token))
    finally:
        await store.close()
    expired = enroll_refused(w, expired_token, tmp_path / "expired")

    # Revoked, with uses and time left.
    fresh = w.qp_json("enroll-token", "create", "--customer", "Acme", "--uses", "5")
    w.qp("enroll-token", "revoke", fresh["id"])
    revoked = enroll_refused(w, fresh["token"], tmp_path / "revoked")

    assert used_up == expired == revoked == f"qp-agent: {ENROLL_REFUSED}"
    for name in ("second", "expired", "revoked"):
        assert not (tmp_path / name).exists()
    agents_after = w.qp_json("agents")
    new = [a for a in agents_after if a["id"] not in agents_before]
    assert [a["name"] for a in new] == ["first"]  # only the one good enrollment
    tokens = {t["id"]: t for t in w.qp_json("enroll-token", "list")}
    assert tokens[once["id"]]["uses_left"] == 0
    assert tokens[record.id]["uses_left"] == 5  # a refused use is not counted
    assert tokens[fresh["id"]]["uses_left"] == 5


# -- 7. the console checks the agent's host certificate ------------------------------------


@pytest.mark.parametrize("forgery", ["foreign-ca", "other-agent-id"])
def test_host_key_not_certified_by_host_ca_is_refused(
    office: Office, tmp_path: Path, forgery: str
) -> None:
    w = office.world
    name = f"rogue-{forgery}"
    agent_id, data = w.enroll("Acme", name)
    host_key = asyncssh.read_private_key(data / "host_key")
    genuine = parse_certificate((data / "host_key-cert.pub").read_bytes())
    # Another signer for the right agent id, or the relay's own host CA for another id.
    if forgery == "foreign-ca":
        signer, principal = asyncssh.generate_private_key("ssh-ed25519"), agent_id
    else:
        signer, principal = asyncssh.read_private_key(w.relay_data / "host_ca"), UNKNOWN_ID
    forged = signer.generate_host_certificate(
        host_key,
        key_id=f"agent:{agent_id}",
        principals=[principal],
        valid_after=now_ts() - 120,
        valid_before=now_ts() + 86400,
    )
    assert forged.key.public_data == genuine.key.public_data  # same key, other certificate
    (data / "host_key-cert.pub").write_text(certificate_text(forged) + "\n")
    agent = w.start_agent(data)
    try:
        marker = tmp_path / "rogue-ran"
        proc = w.qp("exec", name, "--", "touch", str(marker), home="alice", check=False)
        assert proc.returncode != 0
        line = one_line(proc.stderr)
        assert "host CA" in line and agent_id in line, line
        assert not marker.exists()
    finally:
        agent.stop()


# -- 8. the relay only ever pumps ciphertext ------------------------------------------------


@dataclass
class Tapped:
    session_id: str
    direction: str
    data: bytes


async def test_relay_pumps_only_ciphertext(world: World) -> None:
    frames: list[Tapped] = []
    tap = lambda sid, way, data: frames.append(Tapped(sid, way, bytes(data)))  # noqa: E731
    async with node_with_agent(world, "initech-pc", tap=tap, heartbeat_interval=1):
        marker = secrets.token_hex(16)
        _, out, _ = await arun(world, [str(BIN / "qp"), "exec", "initech-pc", "--", "echo", marker])
        assert out == f"{marker}\n".encode()

    assert frames, "the tap saw nothing: the test would prove nothing"
    assert sum(len(f.data) for f in frames) > 0
    assert {f.direction for f in frames} == {"to_agent", "to_technician"}
    forms = [
        marker.encode(),
        marker.upper().encode(),
        marker.encode().hex().encode(),
        base64.b64encode(marker.encode()),
        base64.b64encode(bytes.fromhex(marker)),
        bytes.fromhex(marker),
    ]
    streams = {
        way: b"".join(f.data for f in frames if f.direction == way)
        for way in ("to_agent", "to_technician")
    }
    streams["all"] = b"".join(f.data for f in frames)
    for way, stream in streams.items():
        for form in forms:
            assert form not in stream, (way, form)
