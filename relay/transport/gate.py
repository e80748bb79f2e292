"""The pre-auth gate: every control link from connect until it is authenticated,
under caps on unauthenticated connections (per client address and in all), a
timeout, and a throttle on failed authentication keyed by the identity tried and
the client's address (see :mod:`relay.core.throttle`).

A refusal always answers the first message (an ``error`` with the reason, then a
close with the same reason), so the peer can tell a refusal from a dropped link.
Every refusal by a cap or the throttle is audited as ``anonymous`` with the
client's address as ``peer``.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request

from relay.core.forwarded import ClientAddresses, source_key
from relay.core.ids import token_hash
from relay.core.throttle import Attempt, AuthThrottle, ThrottleLimits, Verdict
from relay.services.audit import Auditor
from relay.services.live_settings import LiveSettings
from relay.services.metrics import RelayMetrics
from relay.settings import Limits, Settings
from shared.clock import Clock
from shared.errors import QPError, StorageError, UnavailableError
from shared.protocol.close_codes import POLICY_VIOLATION, TRY_AGAIN_LATER
from shared.protocol.messages import Message, decode, encode, error_message

#: Enough of a token's hash to tell tokens apart in the throttle; it proves nothing
#: about the token and never leaves the relay's memory.
IDENTITY_HASH_CHARS = 16


def peer(ws: ServerConnection) -> str:
    """The TCP peer's address (a proxy, when there is one: see :meth:`Gate.client`)."""
    addr = ws.remote_address
    return str(addr[0]) if addr else "?"


def shown(exc: QPError) -> QPError:
    """What a peer is told of ``exc``: our own message; a storage failure's text
    (the database's words) stays in the relay's log."""
    if isinstance(exc, StorageError):
        return UnavailableError("the relay could not store this; try again later")
    return exc


async def refuse(ws: ServerConnection, exc: QPError, code: int = POLICY_VIOLATION) -> None:
    """Tell the peer why (our own message, never a traceback) and close."""
    exc = shown(exc)
    with contextlib.suppress(ConnectionClosed):
        await ws.send(encode(error_message(exc.code, str(exc))))
    await ws.close(code=code, reason=str(exc)[:120])


async def receive(ws: ServerConnection, allowed: frozenset[str], limit: int) -> Message:
    """The next control message, decoded and checked against ``allowed``."""
    return decode(await ws.recv(), allowed, ws.protocol.max_message_size or limit)


def attempt_of(message: Message, address: str) -> Attempt | None:
    """The identity a first message tries, from ``address``; None for a message
    that tries none (it is refused as a protocol error by its link)."""
    body = message.body
    if message.type == "login":
        return Attempt("technician:" + token_hash(body["token"])[:IDENTITY_HASH_CHARS], address)
    if message.type == "auth":
        return Attempt("agent:" + body["agent_id"][:64], address)
    if message.type == "enroll":
        return Attempt("enroll:" + token_hash(body["token"])[:IDENTITY_HASH_CHARS], address)
    if message.type == "support":
        # Support codes are short and all in one space: guessing is bounded per source.
        return Attempt("support-code", address, shared=True)
    return None


@dataclass
class _Pending:
    """A link that holds a pre-auth slot."""

    source: str
    attempt: Attempt | None = None
    verdict: Verdict = Verdict.ALLOW


class Gate:
    """Admits control links until they authenticate, or refuses them with a reason.

    The server calls :meth:`open` when a control link starts, :meth:`failed` when
    its authentication fails and :meth:`release` when it ends; the link calls
    :meth:`first` for its first message and :meth:`passed` once authenticated.
    """

    def __init__(
        self, clock: Clock, settings: LiveSettings, auditor: Auditor, metrics: RelayMetrics
    ) -> None:
        self._settings = settings
        self.auditor = auditor
        self.metrics = metrics
        self.addresses = ClientAddresses(self.limits.trusted_proxies)
        self.throttle = AuthThrottle(clock, _throttle_limits(self.limits))
        self._waiting = 0

        def swapped(old: Settings, new: Settings) -> None:
            # A reload: changed throttle limits start a fresh count (unchanged ones
            # keep their history); changed trusted proxies apply to new links.
            if _throttle_limits(new.limits) != _throttle_limits(old.limits):
                self.throttle = AuthThrottle(clock, _throttle_limits(new.limits))
            if new.limits.trusted_proxies != old.limits.trusted_proxies:
                self.addresses = ClientAddresses(new.limits.trusted_proxies)

        settings.on_swap(swapped)
        # Pre-auth links per source; a source leaves when its count drops to zero,
        # so this holds at most max_preauth keys.
        self._per_source: dict[str, int] = {}
        self._pending: dict[ServerConnection, _Pending] = {}

    @property
    def limits(self) -> Limits:
        """The limits in force now (a reload may change them)."""
        return self._settings.current.limits

    @property
    def waiting(self) -> int:
        """Control links holding a pre-auth slot right now."""
        return self._waiting

    def client(self, ws: ServerConnection, request: Request | None = None) -> str:
        """The client's address: the TCP peer, or the client a trusted proxy
        named (in a PROXY protocol header, or in X-Forwarded-For)."""
        request = request or ws.request
        forwarded = request.headers.get_all("X-Forwarded-For") if request else []
        # Set by relay.transport.proxy_protocol's connections only.
        proxied: str | None = getattr(ws, "proxied", None)
        return self.addresses.resolve(proxied or peer(ws), forwarded)

    async def open(self, ws: ServerConnection) -> bool:
        """Take a pre-auth slot for a new control link; False (closed ``busy`` and
        audited) when the relay or the client's address has none left."""
        address = self.client(ws)
        source = source_key(address)
        held = self._per_source.get(source, 0)
        if self._waiting >= self.limits.max_preauth:
            scope = "relay"
        elif held >= self.limits.max_preauth_per_address:
            scope = "address"
        else:
            self._waiting += 1
            self._per_source[source] = held + 1
            self._pending[ws] = _Pending(source)
            return True
        await ws.close(code=TRY_AGAIN_LATER, reason="busy, retry later")
        await self.auditor.refused("preauth_busy", "anonymous", peer=address, scope=scope)
        return False

    def release(self, ws: ServerConnection) -> None:
        """Give back the link's pre-auth slot, if it still holds one."""
        pending = self._pending.pop(ws, None)
        if pending is None:
            return
        self._waiting -= 1
        left = self._per_source[pending.source] - 1
        if left:
            self._per_source[pending.source] = left
        else:
            del self._per_source[pending.source]

    def passed(self, ws: ServerConnection) -> None:
        """The link authenticated: it no longer counts as pre-auth."""
        self.release(ws)

    async def failed(self, ws: ServerConnection, exc: QPError) -> None:
        """The link's authentication failed: count it against the identity tried
        and the client's address, then refuse (after a delay when the address has
        failed too often: valid credentials from there are still checked)."""
        path = ws.request.path if ws.request else ""
        self.metrics.auth_failed("agent" if path == "/v1/agent" else "console")
        pending = self._pending.get(ws)
        if pending is not None and pending.attempt is not None:
            self.throttle.failed(pending.attempt)
            delay = self.limits.auth_failure_delay_ms / 1000
            if pending.verdict is Verdict.SLOW and delay > 0:
                # Holding the pre-auth slot meanwhile bounds the guesses an address
                # can make per second by its slots, without refusing anyone.
                await asyncio.sleep(delay)
        await refuse(ws, exc)

    async def first(self, ws: ServerConnection, allowed: frozenset[str]) -> Message | None:
        """The link's first message; None when the link was refused because the
        identity it tries failed too often (then the message is answered with the
        reason, and audited)."""
        message = await asyncio.wait_for(
            receive(ws, allowed, self.limits.control_max_size), self.limits.auth_timeout
        )
        address = self.client(ws)
        attempt = attempt_of(message, source_key(address))
        pending = self._pending.get(ws)
        if attempt is None or pending is None:
            return message
        pending.attempt = attempt
        pending.verdict = self.throttle.verdict(attempt)
        if pending.verdict is Verdict.BLOCK:
            self.metrics.auth_failed("throttled")
            kind = attempt.identity.partition(":")[0]
            await self.auditor.refused("auth_throttled", "anonymous", peer=address, kind=kind)
            await refuse(ws, UnavailableError("too many failed attempts; retry in a minute"))
            return None
        return message


def _throttle_limits(limits: Limits) -> ThrottleLimits:
    return ThrottleLimits(
        per_pair=limits.auth_failures_per_minute,
        per_identity=limits.auth_failures_per_identity,
        per_address=limits.auth_failures_per_address,
        window=60.0,
        max_keys=limits.throttle_max_keys,
    )
