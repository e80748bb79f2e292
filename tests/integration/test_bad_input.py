"""Bad input: broken control messages, odd HTTP requests, and user mistakes.

The relay must close a misbehaving link with a protocol error (1002; 1009 when a
message is too big), answer odd HTTP with 400/404, never print a traceback, and
keep serving everyone else. The command-line programs must turn mistakes into one
clear line on stderr and a non-zero exit.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from agent.files import AgentFiles, Identity
from harness import BIN, World, timeout
from shared.keys import sign_challenge
from tests.integration.conftest import Office

PROTOCOL_ERROR = 1002
TOO_BIG = 1009
OVERSIZE = 100 * 1024  # over the default control_max_size of 64 KiB


# -- helpers ---------------------------------------------------------------------------------
def _ws_url(office: Office, path: str) -> str:
    return f"{office.world.url}{path}"


def _msg(kind: Any, body: Any = None, **envelope: Any) -> str:
    raw: dict[str, Any] = {"v": 1, "type": kind, "id": None, "body": {} if body is None else body}
    raw.update(envelope)
    return json.dumps(raw)


async def _open(office: Office, path: str) -> ClientConnection:
    return await connect(
        _ws_url(office, path),
        subprotocols=["qp.v1"],  # type: ignore[list-item]
        compression=None,
        max_size=None,
        open_timeout=timeout(10),
    )


async def _closed_by_relay(ws: ClientConnection) -> tuple[int, str]:
    """The relay's close code and reason; it must close without answering first."""
    async with asyncio.timeout(timeout(15)):
        try:
            answer = await ws.recv()
        except ConnectionClosed as exc:
            assert exc.rcvd is not None, f"no close frame from the relay: {exc}"
            return exc.rcvd.code, exc.rcvd.reason
    raise AssertionError(f"the relay answered instead of closing: {answer!r:.300}")


async def _agent_link(office: Office, identity: Identity | None = None) -> ClientConnection:
    """An /v1/agent link past the challenge, authenticated if ``identity`` is given."""
    ws = await _open(office, "/v1/agent")
    challenge = json.loads(await ws.recv())
    assert challenge["type"] == "challenge"
    if identity is not None:
        body = challenge["body"]
        signature = sign_challenge(identity.identity_key, body["nonce"], body["relay_id"])
        await ws.send(_msg("auth", {"agent_id": identity.agent_id, "signature": signature}))
        assert json.loads(await ws.recv())["type"] == "welcome"
    return ws


async def _console_link(office: Office, login: bool) -> ClientConnection:
    ws = await _open(office, "/v1/console")
    if login:
        await ws.send(_msg("login", {"token": office.world.admin_token}))
        assert json.loads(await ws.recv())["type"] == "login_ok"
    return ws


def _log_mark(office: Office) -> int:
    """Where the relay's log stands now (tests share the relay, each checks its part)."""
    assert office.world.relay is not None
    return office.world.relay.count("stderr")


def _relay_unharmed(office: Office, since: int) -> None:
    """No traceback in the relay's log since ``since``, the office agent still online,
    and a ``qp exec`` still works."""
    w = office.world
    assert w.relay is not None
    assert w.relay.popen.poll() is None
    log = "\n".join(w.relay.lines["stderr"][since:])
    assert "Traceback" not in log, log
    agents = {a["id"]: a for a in w.qp_json("agents")}
    assert agents[office.acme_agent]["online"] is True
    assert w.qp("exec", "acme-pc", "--", "echo", "still here", home="alice").stdout == (
        b"still here\n"
    )


def _one_line_error(proc: subprocess.CompletedProcess[bytes], prog: str) -> str:
    """The single stderr line of a failed command."""
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode not in (0, None), (proc.returncode, err)
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{prog}: "), lines[0]
    return lines[0]


def _usage_error(proc: subprocess.CompletedProcess[bytes]) -> str:
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 2, (proc.returncode, err)
    assert "Traceback" not in err, err
    assert err.startswith("usage: "), err
    return err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# -- 4. broken control messages ------------------------------------------------------------
#: (case, text) pairs that are malformed for any receiver.
MALFORMED = [
    ("bad json", '{"v": 1, "type": "auth", "body": {'),
    ("not an object", "[1, 2, 3]"),
    ("deep nesting", "[" * 30_000 + "]" * 30_000),  # under the size limit
    ("wrong version", _msg("login", {"token": "qpt_x"}, v=2)),
    ("no version", json.dumps({"type": "login", "body": {"token": "qpt_x"}})),
    ("no type", json.dumps({"v": 1, "body": {}})),
    ("type not a string", _msg(["login"])),
    ("unknown type", _msg("bogus")),
    ("relay-only type", _msg("error", {"code": "x", "message": "y"})),
]
AUTH = {"agent_id": "agt-1", "signature": "c2ln"}

AGENT_FIRST = [
    *MALFORMED,
    ("console type", _msg("login", {"token": "qpt_x"})),
    ("non-integer id", _msg("auth", AUTH, id="7")),
    ("boolean id", _msg("auth", AUTH, id=True)),
    ("auth field of wrong type", _msg("auth", {"agent_id": 5, "signature": "s"})),
    ("auth without signature", _msg("auth", {"agent_id": "agt-1"})),
    ("body not an object", _msg("auth", ["agt-1", "sig"])),
    ("enroll missing fields", _msg("enroll", {"token": "qpe_x"})),
    (
        "enroll with a malformed key",
        _msg(
            "enroll",
            {
                "token": "qpe_x",
                "identity_key": "ssh-ed25519 not-base64!",
                "host_key": "nonsense",
                "name": "x",
                "signature": "AAAA",
            },
        ),
    ),
]

AGENT_LINKED = [
    *MALFORMED,
    ("console type", _msg("call", {"method": "whoami"})),
    ("second auth", _msg("auth", AUTH)),
    ("accept without session id", _msg("session_accept", {})),
    ("decline with reason a number", _msg("session_decline", {"session_id": "s", "reason": 1})),
    ("non-integer id", _msg("session_accept", {"session_id": "s"}, id=1.5)),
]

CONSOLE_FIRST = [
    *MALFORMED,
    ("agent type", _msg("auth", AUTH)),
    ("call before login", _msg("call", {"method": "whoami"})),
    ("non-integer id", _msg("login", {"token": "qpt_x"}, id="7")),
    ("login field of wrong type", _msg("login", {"token": 12345})),
    ("login without token", _msg("login", {})),
    ("body not an object", _msg("login", "qpt_x")),
]

CONSOLE_LOGGED_IN = [
    *MALFORMED,
    ("agent type", _msg("session_accept", {"session_id": "s"})),
    ("second login", _msg("login", {"token": "qpt_x"})),
    ("non-integer id", _msg("call", {"method": "whoami"}, id="7")),
    ("call with params a list", _msg("call", {"method": "whoami", "params": []})),
    ("call with method a number", _msg("call", {"method": 7})),
    ("call without method", _msg("call", {"params": {}})),
]


async def _expect_protocol_error(ws: ClientConnection, text: str | bytes, case: str) -> None:
    async with ws:
        await ws.send(text)
        code, reason = await _closed_by_relay(ws)
    assert code == PROTOCOL_ERROR, (case, code, reason)
    assert reason.startswith("protocol error"), (case, reason)


async def test_agent_link_closes_on_bad_first_message(office: Office) -> None:
    since = _log_mark(office)
    for case, text in AGENT_FIRST:
        await _expect_protocol_error(await _agent_link(office), text, case)
    await _expect_protocol_error(await _agent_link(office), b"\x00binary", "binary frame")
    _relay_unharmed(office, since)


async def test_agent_link_closes_on_bad_message_after_auth(office: Office) -> None:
    since = _log_mark(office)
    _, data = office.world.enroll("Acme", "probe-pc")
    identity = Identity.load(AgentFiles(data))
    for case, text in AGENT_LINKED:
        await _expect_protocol_error(await _agent_link(office, identity), text, case)
    _relay_unharmed(office, since)


async def test_console_link_closes_on_bad_message(office: Office) -> None:
    since = _log_mark(office)
    for case, text in CONSOLE_FIRST:
        await _expect_protocol_error(await _console_link(office, login=False), text, case)
    for case, text in CONSOLE_LOGGED_IN:
        await _expect_protocol_error(await _console_link(office, login=True), text, case)
    _relay_unharmed(office, since)


async def test_console_bad_parameters_get_an_error_reply_not_a_crash(office: Office) -> None:
    since = _log_mark(office)
    calls = [
        ("no.such.method", {}),
        ("customer.add", {"name": 5}),
        ("customer.add", {"name": "   "}),
        ("technician.add", {"name": "x", "level": 9}),
        ("technician.add", {"name": "x", "customers": "Acme"}),
        ("enroll_token.create", {"customer": "Acme", "ttl": "soon"}),
        ("session.open", {"agent": "acme-pc", "kind": "exec", "public_key": "garbage"}),
        ("session.open", {"agent": "acme-pc", "kind": "tunnel", "public_key": "x"}),
        ("session.list", {"limit": True}),
    ]
    async with await _console_link(office, login=True) as ws:
        for n, (method, params) in enumerate(calls, 1):
            await ws.send(_msg("call", {"method": method, "params": params}, id=n))
            reply = json.loads(await ws.recv())
            assert reply["id"] == n
            assert reply["type"] == "error", (method, params, reply)
            assert reply["body"]["code"] != "internal", (method, params, reply)
        # The link is still good.
        await ws.send(_msg("call", {"method": "whoami"}, id=99))
        assert json.loads(await ws.recv())["body"]["value"]["name"] == "admin"
    _relay_unharmed(office, since)


async def _link(office: Office, kind: str) -> ClientConnection:
    """A control link of ``kind``: agent (before auth), console, or console-in (logged in)."""
    if kind == "agent":
        return await _agent_link(office)
    return await _console_link(office, login=kind == "console-in")


@pytest.mark.parametrize("kind", ["agent", "console", "console-in"])
async def test_oversize_control_message_closes_with_1009(office: Office, kind: str) -> None:
    since = _log_mark(office)
    field = "x" * OVERSIZE
    text = (
        _msg("auth", {"agent_id": field, "signature": "s"})
        if kind == "agent"
        else _msg("login", {"token": field})
    )
    async with await _link(office, kind) as ws:
        await ws.send(text)
        code, reason = await _closed_by_relay(ws)
    assert code == TOO_BIG, (code, reason)
    _relay_unharmed(office, since)


SURROGATE = '"\\ud800"'  # JSON may spell a lone surrogate; it is not text


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("agent", f'{{"v":1,"type":"auth","body":{{"agent_id":{SURROGATE},"signature":"s"}}}}'),
        ("console", f'{{"v":1,"type":"login","body":{{"token":{SURROGATE}}}}}'),
        (
            "console-in",
            f'{{"v":1,"type":"call","id":1,"body":{{"method":"customer.add",'
            f'"params":{{"name":{SURROGATE}}}}}}}',
        ),
    ],
    ids=["agent-auth", "console-login", "console-call"],
)
async def test_invalid_unicode_in_control_message_is_a_protocol_error(
    office: Office, kind: str, text: str
) -> None:
    since = _log_mark(office)
    await _expect_protocol_error(await _link(office, kind), text, kind)
    _relay_unharmed(office, since)


# -- 5. HTTP: subprotocol, paths, health -------------------------------------------------------
@pytest.mark.parametrize("path", ["/v1/agent", "/v1/console"])
@pytest.mark.parametrize("offered", [None, ["qp.v2"], ["chat", "superchat"], ["QP.V1"]])
async def test_wrong_or_missing_subprotocol_is_400(
    office: Office, path: str, offered: list[str] | None
) -> None:
    with pytest.raises(InvalidStatus) as caught:
        await connect(
            _ws_url(office, path),
            subprotocols=offered,  # type: ignore[arg-type]
            compression=None,
            open_timeout=timeout(10),
        )
    assert caught.value.response.status_code == 400


def _handshake_status(office: Office, path: str) -> int:
    """Status of a well-formed WebSocket upgrade request for ``path`` (sent as is)."""
    conn = http.client.HTTPConnection("127.0.0.1", office.world.port, timeout=timeout(10))
    try:
        conn.request(
            "GET",
            path,
            headers={
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Protocol": "qp.v1",
            },
        )
        return conn.getresponse().status
    finally:
        conn.close()


def test_unknown_paths_and_path_variants_are_404(office: Office) -> None:
    since = _log_mark(office)
    assert _handshake_status(office, "/v1/agent") == 101  # the control: a real endpoint
    paths = [
        "/",
        "/v1",
        "/v1/",
        "/v1/agent/",
        "/v1/console/",
        "/V1/agent",
        "/v1/Agent",
        "/v1/../v1/agent",
        "/v1/./agent",
        "//v1/agent",
        "/v1//agent",
        "/v1/agent%2F",
        "/v1%2Fagent",
        "/v1/agents",
        "/v2/agent",
        "/v1/tunnel",
        "/setup",
        "/SetupWizard.aspx",
        "/healthz/",
        "/admin",
    ]
    statuses = {path: _handshake_status(office, path) for path in paths}
    assert statuses == dict.fromkeys(paths, 404)
    plain = http.client.HTTPConnection("127.0.0.1", office.world.port, timeout=timeout(10))
    try:
        plain.request("GET", "/setup")
        assert plain.getresponse().status == 404
    finally:
        plain.close()
    _relay_unharmed(office, since)


def test_healthz_is_200_ok(office: Office) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", office.world.port, timeout=timeout(10))
    try:
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        assert response.status == 200
        assert response.read().strip() == b"ok"
    finally:
        conn.close()


# -- 6. user mistakes ------------------------------------------------------------------------
def test_qp_unknown_agent(office: Office) -> None:
    w = office.world
    line = _one_line_error(
        w.qp("exec", "no-such-pc", "--", "true", home="alice", check=False), "qp"
    )
    assert "no-such-pc" in line
    # Another customer's agent looks exactly like an unknown one.
    other = _one_line_error(w.qp("exec", "acme-pc", "--", "true", home="bob", check=False), "qp")
    assert other == line.replace("no-such-pc", "acme-pc")
    _one_line_error(w.qp("agent", "revoke", "no-such-pc", check=False), "qp")


def test_qp_relay_down(office: Office) -> None:
    w = office.world
    port = _free_port()
    home = w.root / "qp" / "stranded"
    home.mkdir(parents=True)
    (home / "profile.json").write_text(
        json.dumps({"url": f"ws://127.0.0.1:{port}", "token": "qpt_x", "ca_file": None})
    )
    for args in (["agents"], ["sessions", "--json"], ["exec", "acme-pc", "--", "true"]):
        line = _one_line_error(w.qp(*args, home="stranded", check=False), "qp")
        assert str(port) in line, line
    fresh = w.qp("login", f"ws://127.0.0.1:{port}", "--token", "qpt_x", home="nobody", check=False)
    _one_line_error(fresh, "qp")
    assert not (w.root / "qp" / "nobody" / "profile.json").exists()


def test_qp_login_with_a_bad_token(office: Office) -> None:
    w = office.world
    bad = w.qp("login", w.url, "--token", "qpt_not-a-real-token", home="mallory", check=False)
    assert "token" in _one_line_error(bad, "qp")
    assert not (w.root / "qp" / "mallory" / "profile.json").exists()
    # Never logged in at all.
    assert "qp login" in _one_line_error(w.qp("agents", home="mallory", check=False), "qp")


MALFORMED_URLS = [
    "relay.example.com",
    "http://127.0.0.1:1",
    "ws://",
    "ws://[::1",
    "ws://127.0.0.1:x",
    "ws://127.0.0.1:99999",
]


@pytest.mark.parametrize("url", MALFORMED_URLS)
def test_qp_login_with_malformed_url(office: Office, url: str) -> None:
    w = office.world
    _one_line_error(w.qp("login", url, "--token", "qpt_x", home="mallory", check=False), "qp")
    assert not (w.root / "qp" / "mallory" / "profile.json").exists()


def test_qp_bad_arguments(office: Office) -> None:
    w = office.world
    line = _one_line_error(w.qp("exec", "acme-pc", home="alice", check=False), "qp")
    assert "qp exec AGENT --" in line
    _one_line_error(w.qp("exec", "acme-pc", "--", home="alice", check=False), "qp")
    ttl = w.qp("enroll-token", "create", "--customer", "Acme", "--ttl", "soon", check=False)
    assert "soon" in _one_line_error(ttl, "qp")
    assert "invalid choice" in _usage_error(
        w.qp("technician", "add", "x", "--level", "9", check=False)
    )
    _usage_error(
        w.qp("enroll-token", "create", "--customer", "Acme", "--uses", "many", check=False)
    )
    _usage_error(w.qp("no-such-command", check=False))
    _usage_error(w.qp(check=False))


@pytest.mark.parametrize("url", MALFORMED_URLS)
def test_agent_enroll_with_malformed_url(office: Office, tmp_path: Path, url: str) -> None:
    data = tmp_path / "agent"
    argv = [str(BIN / "qp-agent"), "enroll", url, "--token", "qpe_x", "--data", str(data)]
    _one_line_error(office.world.run(argv, check=False), "qp-agent")
    assert not data.exists() or not any(data.iterdir())


@pytest.fixture
def fresh(tmp_path: Path) -> World:
    """An initialised, never served relay data directory."""
    w = World(tmp_path)
    w.init_relay()
    return w


@pytest.mark.parametrize("listen", ["0.0.0.0:0", "[::]:0", ":0"])
def test_relay_refuses_plain_ws_off_loopback(fresh: World, listen: str) -> None:
    relay = fresh.spawn(
        [str(BIN / "qp-relay"), "serve", "--data", str(fresh.relay_data), "--listen", listen]
    )
    first = relay.wait_line(r"^(listening on |<eof>)", stream="stdout")
    assert first == "<eof>", f"the relay started: {first}"
    code = relay.wait()
    relay.wait_line(r"^<eof>$")
    err = "".join(f"{line}\n" for line in relay.lines["stderr"] if line != "<eof>")
    done = subprocess.CompletedProcess(relay.argv, code, b"", err.encode())
    assert "tls" in _one_line_error(done, "qp-relay").lower()


# -- 7. init twice -----------------------------------------------------------------------------
def _snapshot(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file and directory under ``root``: mtime, mode and content."""
    found = {".": (root.stat().st_mtime_ns, root.stat().st_mode, b"")}
    for path in sorted(root.rglob("*")):
        st = path.stat()
        found[str(path.relative_to(root))] = (
            st.st_mtime_ns,
            st.st_mode,
            path.read_bytes() if path.is_file() else b"",
        )
    return found


@pytest.mark.parametrize("extra", [[], ["--json"], ["--public-url", "wss://relay.example"]])
def test_init_twice_is_refused_and_changes_nothing(fresh: World, extra: list[str]) -> None:
    data = fresh.relay_data
    before = _snapshot(data)
    assert {"relay.toml", "host_ca", "user_ca", "relay.db"} <= before.keys()
    again = fresh.run([str(BIN / "qp-relay"), "init", "--data", str(data), *extra], check=False)
    line = _one_line_error(again, "qp-relay")
    assert "already initialised" in line
    assert again.stdout == b""
    assert _snapshot(data) == before


def test_a_busy_port_exits_at_once_with_one_line(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.init_relay()
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        port = taken.getsockname()[1]
        argv = [str(BIN / "qp-relay"), "serve", "--data", str(world.relay_data)]
        done = world.run([*argv, "--listen", f"127.0.0.1:{port}"], check=False, within=10)
    finally:
        taken.close()
        world.close()
    assert done.returncode == 1
    assert done.stderr.decode().splitlines() == [
        f"qp-relay: cannot listen on 127.0.0.1:{port}: address already in use"
    ]
