"""``/v1/agent``: enrollment, support-code sessions and the authenticated link.

Every link starts with the relay's challenge. The first answer decides the rest:
``enroll`` trades a token for an identity and closes; ``support`` trades a
support code for a throw-away identity and stays linked; ``auth`` proves an
enrolled identity and stays linked.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import ServerConnection

from relay.ids import new_id, token_hash
from relay.links import AgentLink
from relay.model import Agent
from relay.support_codes import normalise_code
from shared.errors import AuthError, RemoteProtocolError
from shared.keys import certificate_text, parse_public_key, public_text, verify_challenge
from shared.protocol.messages import AGENT_TO_RELAY, Message, encode

if TYPE_CHECKING:
    from relay.app import Relay

log = logging.getLogger("qp.relay.agents")

MAX_AGENT_NAME = 64
#: A support agent's host certificate outlives any session it can start.
SUPPORT_CERT_HOURS = 24


def _peer(ws: ServerConnection) -> str:
    addr = ws.remote_address
    return str(addr[0]) if addr else "?"


def _clean_name(name: str) -> str:
    return "".join(ch for ch in name if ch.isprintable())[:MAX_AGENT_NAME] or "agent"


async def agent_link(relay: Relay, ws: ServerConnection) -> None:
    nonce = secrets.token_urlsafe(24)
    await ws.send(encode(Message("challenge", {"nonce": nonce, "relay_id": relay.relay_id})))
    first = await relay.preauth_recv(ws, AGENT_TO_RELAY)
    if first is None:
        return
    if first.type == "enroll":
        await _enroll(relay, ws, first, nonce)
    elif first.type == "support":
        agent = await _support(relay, ws, first, nonce)
        if agent is not None:
            try:
                await _linked(relay, ws, agent, greeted=True)
            finally:
                # The support identity dies with its process.
                await relay.store.revoke_agent(agent.id)
                await relay.store.audit(relay.clock.now(), "support_end", agent.id, agent.id)
    elif first.type == "auth":
        agent = await relay.store.get_agent(first.body["agent_id"][:64])
        try:
            if agent is None or agent.revoked:
                raise AuthError("authentication failed")
            verify_challenge(agent.identity_key, first.body["signature"], nonce, relay.relay_id)
        except AuthError:
            relay.throttle.failed(_peer(ws))
            await relay.store.audit(
                relay.clock.now(),
                "agent_auth_refused",
                first.body["agent_id"][:64],
                "",
                peer=_peer(ws),
            )
            await relay.refuse(ws, AuthError("authentication failed"))
            return
        await _linked(relay, ws, agent, greeted=False)
    else:
        raise RemoteProtocolError(f"expected auth, enroll or support, got {first.type}")


async def _linked(relay: Relay, ws: ServerConnection, agent: Agent, greeted: bool) -> None:
    """Serve an authenticated agent until its link drops."""
    ws.protocol.max_message_size = relay.settings.limits.agent_max_message
    link = AgentLink(agent.id, ws)
    await relay.links.attach(link)
    await relay.store.touch_agent(agent.id, relay.clock.now())
    log.info("agent %s (%s) online from %s", agent.id, agent.name, _peer(ws))
    sessions = relay.sessions
    try:
        if not greeted:
            await link.send(Message("welcome", {"agent_id": agent.id, "name": agent.name}))
        while True:
            msg = await relay.recv(ws, AGENT_TO_RELAY)
            sid = msg.body.get("session_id", "")
            if msg.type == "session_accept":
                sessions.resolve_offer(agent.id, sid, None)
            elif msg.type == "session_decline":
                sessions.resolve_offer(agent.id, sid, msg.body["reason"][:200] or "declined")
            elif msg.type == "session_ready":
                await sessions.ready(agent.id, sid)
            elif msg.type == "session_consent_pending":
                await sessions.consent_pending(agent.id, sid)
            elif msg.type == "session_ended":
                await sessions.client_ended(agent.id, sid)
            elif msg.type == "recording_chunk":
                await _recording_chunk(relay, agent, msg.body)
            elif msg.type == "diag_snapshot":
                try:
                    await relay.diag.received(agent.id, msg.body)
                except RemoteProtocolError as exc:
                    log.warning("snapshot from %s refused: %s", agent.id, exc)
            elif msg.type in ("help_request", "help_status"):
                if msg.type == "help_request":
                    value: Any = await relay.diag.help_request(agent, msg.body)
                else:
                    value = await relay.diag.help_status(agent)
                reply = {"ref": msg.body["ref"]}
                if isinstance(value, dict) and "error" in value:
                    reply["error"] = value["error"]
                else:
                    reply["value"] = value
                await link.send(Message("help_reply", reply))
            else:
                raise RemoteProtocolError(f"unexpected {msg.type} on a linked agent")
    finally:
        if relay.links.detach(link):
            await sessions.agent_gone(agent.id)
            with contextlib.suppress(Exception):
                await relay.store.touch_agent(agent.id, relay.clock.now())
            log.info("agent %s offline", agent.id)


async def _enroll(relay: Relay, ws: ServerConnection, msg: Message, nonce: str) -> None:
    body = msg.body
    now = relay.clock.now()
    identity = parse_public_key(body["identity_key"])
    host_key = parse_public_key(body["host_key"])
    # Proof that the enrolling party holds the identity key it registers.
    verify_challenge(public_text(identity), body["signature"], nonce, relay.relay_id)
    token = await relay.store.consume_enroll_token(token_hash(body["token"]), now)
    if token is None:
        relay.throttle.failed(_peer(ws))
        await relay.store.audit(now, "enroll_refused", "anonymous", "", peer=_peer(ws))
        await relay.refuse(ws, AuthError("enrollment token is invalid, expired or used up"))
        return
    name = _clean_name(body["name"])
    agent = Agent(
        id=new_id("agt"),
        name=name,
        customer_id=token.customer_id,
        identity_key=public_text(identity),
        host_key=public_text(host_key),
        enrolled_at=now,
    )
    await relay.store.add_agent(agent)
    cert = relay.authorities.sign_host(
        host_key, agent.id, now, relay.settings.limits.host_cert_days
    )
    await relay.store.audit(now, "enroll", agent.id, agent.customer_id, token=token.id, name=name)
    reply = {
        "agent_id": agent.id,
        "name": name,
        "host_certificate": certificate_text(cert),
        "user_ca": relay.authorities.user_ca_public,
        "host_ca": relay.authorities.host_ca_public,
    }
    await ws.send(encode(Message("enrolled", reply)))
    await ws.close()


async def _support(relay: Relay, ws: ServerConnection, msg: Message, nonce: str) -> Agent | None:
    """A one-time support code becomes a throw-away, attended agent identity."""
    body = msg.body
    now = relay.clock.now()
    identity = parse_public_key(body["identity_key"])
    host_key = parse_public_key(body["host_key"])
    verify_challenge(public_text(identity), body["signature"], nonce, relay.relay_id)
    code = await relay.store.consume_support_code(token_hash(normalise_code(body["code"])), now)
    if code is None:
        relay.throttle.failed(_peer(ws))
        await relay.store.audit(now, "support_code_refused", "anonymous", "", peer=_peer(ws))
        await relay.refuse(ws, AuthError("support code is invalid, expired or already used"))
        return None
    customer = await relay.store.get_customer(code.customer_id)
    agent = Agent(
        id=new_id("agt"),
        name=_clean_name(body["name"]),
        customer_id=code.customer_id,
        identity_key=public_text(identity),
        host_key=public_text(host_key),
        enrolled_at=now,
        policy={"consent": "attended"},
        ephemeral=True,
    )
    await relay.store.add_agent(agent)
    cert = relay.authorities.host_ca.generate_host_certificate(
        host_key,
        key_id=f"support:{agent.id}",
        principals=[agent.id],
        valid_after=int((now - timedelta(minutes=2)).timestamp()),
        valid_before=int((now + timedelta(hours=SUPPORT_CERT_HOURS)).timestamp()),
    )
    await relay.store.audit(
        now, "support_start", agent.id, code.customer_id, code=code.id, request=code.request or ""
    )
    reply = {
        "agent_id": agent.id,
        "name": agent.name,
        "host_certificate": certificate_text(cert),
        "user_ca": relay.authorities.user_ca_public,
        "host_ca": relay.authorities.host_ca_public,
        "customer": customer.name if customer else "",
    }
    await ws.send(encode(Message("support_ok", reply)))
    return agent


async def _recording_chunk(relay: Relay, agent: Agent, body: dict[str, Any]) -> None:
    """Keep a piece of a terminal recording of one of this agent's sessions."""
    row = await relay.store.get_session(body["session_id"][:64])
    if row is None or row.agent_id != agent.id:
        raise RemoteProtocolError("recording for a session that is not this agent's")
    try:
        size = relay.recordings.append(row.id, body["offset"], body["data"])
    except RemoteProtocolError as exc:  # too big or out of order: keep the link, drop it
        log.warning("recording of %s from %s dropped: %s", row.id, agent.id, exc)
        return
    if body["last"]:
        await relay.store.audit(relay.clock.now(), "recording_stored", agent.id, row.id, bytes=size)
