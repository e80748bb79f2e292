"""Issue 10, acceptance 9: malformed console parameters get ``bad_request``, never an
internal error.

Every method in :data:`relay.api.METHODS` is called, as the admin, on a relay opened
in-process on a real SQLite file, with seeded random parameters: wrong types, huge,
negative, NaN and infinite numbers (``1e999999`` as the wire spells it), very long
strings, year 9999 and 0001 dates, nested objects and unknown keys. The values go
through the real control-message decoder first, so only what a console could send
arrives. A call may succeed or fail with one of our errors; it may not raise
anything else, nor a storage error (which the relay logs as a failure).
"""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import pytest

from relay.api import METHODS
from relay.api.context import Context
from relay.api.dispatch import call
from relay.api.reference import REFERENCE
from relay.app import Relay
from relay.core.policy import DEFAULTS as POLICY_DEFAULTS
from relay.init import init_relay
from relay.model import Agent, Technician
from shared.errors import QPError, StorageError, UsageError
from shared.keys import generate_key, public_text
from shared.protocol.messages import CONSOLE_TO_RELAY, decode

SEED = 20261201
CALLS_PER_METHOD = 120
HUGE = "__1e999999__"  # replaced in the JSON text by the number literal

STRINGS = [
    "",
    " ",
    "x" * 5000,
    "Acme",
    "admin",
    "9999-12-31",
    "0001-01-01",
    "9999-12-31 23:59",
    "0001-01-01T00:00:00Z",
    "2026-02-30",
    "2026-11",
    "9999-12",
    "0000-01",
    "2026-Q1",
    "1e999999",
    "NaN",
    "-1",
    "99999999999999999999999",
    "REQ-1",
    "REQ-99999999999999999999999",
    "agt-000000000000",
    "ses-000000000000",
    "1h",
    "\x00\x1b[2J",
    "[red]x[/red]",
    "12:00",
    "+99999-01-01",
    "0001-01-01 00:00",
    "0001-01-01 00:30",
    "9999-12-31 23:30+14:00",
    "0001-01-01T00:00-12:00",
    "0001-01",
    "ssh-ed25519 AAAA",
]
NUMBERS: list[Any] = [
    0,
    1,
    -1,
    3,
    2**31,
    2**63,
    -(2**63) - 1,
    10**40,
    1.5,
    -0.0,
    float("nan"),
    float("inf"),
    float("-inf"),
    HUGE,
    True,
    False,
]


def value(rng: random.Random, depth: int = 0) -> Any:
    """One random JSON value, biased to the shapes handlers trip over."""
    kind = rng.randrange(10 if depth < 3 else 6)
    if kind < 3:
        return rng.choice(STRINGS)
    if kind < 5:
        return rng.choice(NUMBERS)
    if kind == 5:
        return None
    if kind < 8:
        return [value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(STRINGS[:8]): value(rng, depth + 1) for _ in range(rng.randrange(4))}


def base_params(world: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Valid parameters per method, so a mutation reaches past the first check."""
    agent, entry, token, key = world["agent"], world["entry"], world["token"], world["key"]
    acme = {"customer": "Acme"}
    return {
        "company.set": {
            "legal_name": "Quark BV",
            "address": "Kade 1",
            "postcode": "1234 AB",
            "city": "Amsterdam",
            "country": "NL",
            "kvk": "12345678",
            "vat": "NL123456789B01",
            "iban": "NL91ABNA0417164300",
            "email": "office@quark.example",
            "payment_means": "58",
        },
        "customer.billing": {
            **acme,
            "legal_name": "Acme BV",
            "address": ["Straat 2", "Hal 3"],
            "postcode": "1234 AB",
            "city": "Amsterdam",
            "country": "NL",
            "kvk": "87654321",
            "vat": "NL123456789B01",
            "email": "ap@acme.example",
            "terms": 30,
            "reverse_charge": False,
            "endpoint": "0106:87654321",
            "endpoint_scheme": "0106",
            "reference": "PO-1",
        },
        "diag.get": {"agent": agent, "id": 1, "refresh": False},
        "diag.list": {"agent": agent, "limit": 5},
        "diag.pair": {"agent": agent, "a": 1, "b": 2},
        "enroll_token.create": {**acme, "ttl": 3600, "uses": 1},
        "enroll_token.revoke": {"id": token},
        "invoice.create": {**acme, "period": "2026-11", "dry_run": True},
        "invoice.credit": {"id": "INV-1", "reason": "wrong"},
        "invoice.export": {"id": "INV-1", "format": "csv", "offset": 0},
        "invoice.list": {**acme},
        "policy.set": {"agent": agent, "policy": {"consent": "attended"}},
        "policy.show": {"agent": agent},
        "prepaid.add": {**acme, "hours": 1.5, "from": "2026-11-01", "expires": "2027-11-01"},
        "prepaid.list": acme,
        "prepaid.terms": {**acme, "pays": "base", "warn_below": 2},
        "request.close": {"request": "REQ-1", "resolution": "fixed"},
        "request.queue": {"open_only": True},
        "request.show": {"request": "REQ-1"},
        "request.take": {"request": "REQ-1"},
        "session.list": {"limit": 10},
        "session.open": {"agent": agent, "kind": "exec", "public_key": key},
        "session.recording": {"session": "ses-000000000000", "offset": 0},
        "support_code.create": {**acme, "ttl": 900},
        "technician.add": {"name": "zed", "level": 1, "role": "technician", "customers": ["Acme"]},
        "time.add": {**acme, "service": "phone", "start": "2026-11-03 10:00", "minutes": 30},
        "time.approve": {"ids": [entry]},
        "time.edit": {"id": entry, "reason": "typo", "notes": "n"},
        "time.search": {**acme, "from": "2026-11-01", "to": "2026-11-30"},
        "time.show": {"id": entry},
    }


def params_for(
    method: str, base: dict[str, dict[str, Any]], rng: random.Random
) -> dict[str, Any] | None:
    """Parameters for ``method`` as a console could send them: mostly a valid set
    with one or two values replaced, sometimes all random."""
    names = sorted({*REFERENCE[method].params, *base.get(method, {})} - {"..."})
    if method not in base or rng.random() < 0.25:
        params = {name: value(rng) for name in names if rng.random() < 0.8}
    else:
        params = dict(base[method])
        for name in rng.sample(names, min(len(names), rng.choice((1, 1, 2)))):
            params[name] = value(rng)
    if rng.random() < 0.15:
        params[rng.choice(STRINGS[3:10])] = value(rng)
    return coded(method, params)


def sweep(method: str, base: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each parameter of a valid call in turn set to each of the nasty values."""
    names = sorted({*REFERENCE[method].params, *base.get(method, {})} - {"..."})
    nasty: list[Any] = [*STRINGS, *NUMBERS, None, [], {}, ["Acme"], [1, "x"], {"a": {"b": []}}]
    calls = []
    for name in names:
        for bad in nasty:
            calls.append(coded(method, {**base.get(method, {}), name: bad}))
    if method == "policy.set":  # the policy object's own settings, one at a time
        for setting in sorted(POLICY_DEFAULTS):
            for bad in nasty:
                calls.append(coded(method, {**base[method], "policy": {setting: bad}}))
                calls.append(coded(method, {**base[method], "policy": {setting: [bad]}}))
    return [c for c in calls if c is not None]


def shuffled(method: str, base: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """:data:`CALLS_PER_METHOD` seeded random calls of ``method``."""
    rng = random.Random(f"{SEED}:{method}")
    calls = [params_for(method, base, rng) for _ in range(CALLS_PER_METHOD)]
    return [c for c in calls if c is not None]


def coded(method: str, params: dict[str, Any]) -> dict[str, Any] | None:
    """``params`` as the relay decodes them from a console's call (None if the codec
    refuses the message, which then never reaches a handler)."""
    body = {"method": method, "params": params}
    text = json.dumps({"v": 1, "type": "call", "id": 1, "body": body})
    text = text.replace(json.dumps(HUGE), "1e999999")
    try:
        decoded = decode(text, CONSOLE_TO_RELAY)
    except QPError:
        return None
    found: dict[str, Any] = decoded.body["params"]
    return found


async def setup(relay: Relay, admin: Technician) -> dict[str, str]:
    """A customer, an (offline) agent, a help request, a time entry and a token."""
    services = relay.services
    customer = await call(Context(services, admin), "customer.add", {"name": "Acme"})
    now = services.clock.now()
    agent = Agent(
        "agt-fuzz00000001",
        "fuzz-pc",
        customer["id"],
        public_text(generate_key()),
        public_text(generate_key()),
        now,
    )
    await relay.store.add_agent(agent)
    await services.requests.ask(agent, "printer offline", False, None)
    entry = await call(
        Context(services, admin),
        "time.add",
        {"customer": "Acme", "service": "phone", "start": "2026-11-03 10:00", "minutes": 30},
    )
    token = await call(Context(services, admin), "enroll_token.create", {"customer": "Acme"})
    key = public_text(generate_key())
    return {"agent": agent.id, "entry": entry["id"], "token": token["id"], "key": key}


async def fuzz(data_dir: Path) -> list[str]:
    """Every method, :data:`CALLS_PER_METHOD` times; the failures found."""
    relay = await Relay.open(data_dir)
    failures: dict[str, str] = {}

    def found(method: str, params: dict[str, Any], exc: Exception) -> None:
        """One line per method and kind of failure, with the first example."""
        kind = f"{method}: {type(exc).__name__}: {str(exc)[:60]}"
        failures.setdefault(kind, f"{kind} from {params!r:.160}")

    try:
        services = relay.services
        admin = (await relay.store.list_technicians())[0]
        base = base_params(await setup(relay, admin))

        async def emit(body: dict[str, Any]) -> None:
            return None

        for method in sorted(METHODS):
            for params in [*sweep(method, base), *shuffled(method, base)]:
                try:
                    async with asyncio.timeout(10):
                        await call(Context(services, admin, emit), method, params)
                except StorageError as exc:
                    found(method, params, exc)
                except QPError:
                    pass
                except Exception as exc:  # what the relay answers "internal error"
                    found(method, params, exc)
    finally:
        await relay.stop()
    return sorted(failures.values())


def test_no_parameter_gives_an_internal_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    init_relay(tmp_path / "relay")
    failures = asyncio.run(fuzz(tmp_path / "relay"))
    assert failures == [], "\n".join(failures)
    tracebacks = [r.getMessage() for r in caplog.records if r.exc_info]
    assert tracebacks == []


#: The issue's examples and their kin: (method, params replacing the valid ones, the
#: parameter the error must name).
NAMED: list[tuple[str, dict[str, Any], str]] = [
    ("diag.pair", {"a": "x"}, "a"),
    ("diag.pair", {"b": 2**70}, "b"),
    ("diag.get", {"id": [1]}, "id"),
    ("diag.get", {"refresh": "yes"}, "refresh"),
    ("time.add", {"start": "9999-12-31 23:59", "minutes": 30}, "start"),
    ("time.add", {"start": "0001-01-01 00:00", "minutes": 30}, "start"),
    ("time.add", {"minutes": 2**63}, "minutes"),
    ("time.search", {"from": "0001-01-01"}, "from"),
    ("time.search", {"cursor": 12}, "cursor"),
    ("time.search", {"limit": 2**63}, "limit"),
    ("prepaid.add", {"hours": HUGE}, "hours"),
    ("prepaid.add", {"hours": "99999999999999999999999"}, "hours"),
    ("prepaid.terms", {"warn_below": HUGE}, "warn_below"),
    ("invoice.create", {"period": "9999-12"}, "period"),
    ("invoice.create", {"period": "0000-01"}, "period"),
    ("technician.add", {"customers": [1]}, "customers"),
]


def test_a_bad_value_is_a_bad_request_naming_the_parameter(tmp_path: Path) -> None:
    init_relay(tmp_path / "relay")

    async def run() -> list[str]:
        relay = await Relay.open(tmp_path / "relay")
        wrong: list[str] = []
        try:
            admin = (await relay.store.list_technicians())[0]
            base = base_params(await setup(relay, admin))
            for method, changes, key in NAMED:
                params = coded(method, {**base[method], **changes})
                assert params is not None
                try:
                    await call(Context(relay.services, admin), method, params)
                except UsageError as exc:
                    if exc.code != "bad_request" or not str(exc).startswith(f"{key} "):
                        wrong.append(f"{method} {changes}: {exc.code} {exc}")
                except Exception as exc:
                    wrong.append(f"{method} {changes}: {type(exc).__name__} {exc}")
                else:
                    wrong.append(f"{method} {changes}: accepted")
        finally:
            await relay.stop()
        return wrong

    assert asyncio.run(run()) == []
