"""``/v1/agent``: enrollment, support-code sessions and the authenticated link.

Every link starts with the relay's challenge. The first answer decides the rest:
``enroll`` trades a token for an identity and closes; ``support`` trades a support
code for a throw-away identity and stays linked; ``auth`` proves an enrolled
identity and stays linked. A linked agent's messages go to the handler its type
names in :data:`HANDLERS`.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.server import ServerConnection

from relay.model import Agent
from relay.services.container import Services
from relay.services.enrollment import Proof
from relay.transport.gate import Gate, receive
from relay.transport.links import AgentLink, AgentLinks
from shared.errors import QPError, RemoteProtocolError
from shared.protocol.close_codes import POLICY_VIOLATION
from shared.protocol.messages import AGENT_TO_RELAY, Message, encode

log = logging.getLogger("qp.relay.agents")


@dataclass
class Linked:
    """One authenticated agent link, as its message handlers see it."""

    services: Services
    agent: Agent
    link: AgentLink


Handler = Callable[[Linked, dict[str, Any]], Awaitable[None]]


async def agent_link(
    services: Services, links: AgentLinks, gate: Gate, ws: ServerConnection
) -> None:
    """Serve one agent link until it closes (AuthError propagates: refused)."""
    nonce = secrets.token_urlsafe(24)
    await ws.send(encode(Message("challenge", {"nonce": nonce, "relay_id": services.relay_id})))
    first = await gate.first(ws, AGENT_TO_RELAY)
    if first is None:
        return
    body = first.body
    enrollment = services.enrollment
    if first.type == "enroll":
        reply = await enrollment.enroll(_proof(body, nonce), body["token"], gate.client(ws))
        gate.passed(ws)
        await ws.send(encode(Message("enrolled", reply)))
        await ws.close()
    elif first.type == "support":
        agent, reply = await enrollment.support(_proof(body, nonce), body["code"], gate.client(ws))
        gate.passed(ws)
        await ws.send(encode(Message("support_ok", reply)))
        try:
            await _linked(services, links, gate, ws, agent)
        finally:
            await enrollment.support_ended(agent)
    elif first.type == "auth":
        agent = await enrollment.authenticate(
            body["agent_id"][:64], body["signature"], nonce, gate.client(ws)
        )
        gate.passed(ws)
        welcome = Message("welcome", {"agent_id": agent.id, "name": agent.name})
        services.directory.client_pinned(agent.id, body.get("consent_pin"))
        await _linked(services, links, gate, ws, agent, welcome)
    else:
        raise RemoteProtocolError(f"expected auth, enroll or support, got {first.type}")


def _proof(body: dict[str, Any], nonce: str) -> Proof:
    return Proof(body["identity_key"], body["host_key"], body["signature"], nonce, body["name"])


async def _linked(
    services: Services,
    links: AgentLinks,
    gate: Gate,
    ws: ServerConnection,
    agent: Agent,
    welcome: Message | None = None,
) -> None:
    """Serve an authenticated agent until its link drops; ``welcome`` is sent once
    the link is attached and noted, so an agent that reads it is online."""
    limits = services.settings.limits
    ws.protocol.max_message_size = limits.agent_max_message
    link = AgentLink(agent.id, ws)
    await links.attach(link)
    await services.directory.seen(agent.id)
    log.info("agent %s (%s) online from %s", agent.id, agent.name, gate.client(ws))
    state = Linked(services, agent, link)
    try:
        if welcome is not None:
            await link.send(welcome)
        while True:
            msg = await receive(ws, AGENT_TO_RELAY, limits.agent_max_message)
            handler = HANDLERS.get(msg.type)
            if handler is None:
                raise RemoteProtocolError(f"unexpected {msg.type} on a linked agent")
            try:
                await handler(state, msg.body)
            except RemoteProtocolError:
                raise
            except QPError as exc:  # e.g. the store refused a write: the link stays up
                log.error("agent %s: %s not handled: %s", agent.id, msg.type, exc)
    finally:
        if links.detach(link):
            await services.sessions.agent_gone(agent.id)
            try:
                await services.directory.seen(agent.id)
            except Exception as exc:  # the link is gone either way; say why it is not noted
                log.warning("agent %s: last-seen time not stored: %s", agent.id, exc)
            log.info("agent %s offline", agent.id)


# -- the linked agent's messages -------------------------------------------------------


async def _accept(linked: Linked, body: dict[str, Any]) -> None:
    linked.services.sessions.resolve_offer(linked.agent.id, body["session_id"], None)


async def _decline(linked: Linked, body: dict[str, Any]) -> None:
    reason = body["reason"][:200] or "declined"
    by_agent = body.get("by") == "agent"
    linked.services.sessions.resolve_offer(linked.agent.id, body["session_id"], reason, by_agent)


async def _consent_pin(linked: Linked, body: dict[str, Any]) -> None:
    """The client changed its consent pin while linked (``qp-agent policy``)."""
    linked.services.directory.client_pinned(linked.agent.id, body["consent"])
    log.info("agent %s: client consent pin %r", linked.agent.id, body["consent"][:20])


async def _ready(linked: Linked, body: dict[str, Any]) -> None:
    await linked.services.sessions.ready(linked.agent.id, body["session_id"])


async def _consent_pending(linked: Linked, body: dict[str, Any]) -> None:
    await linked.services.sessions.consent_pending(linked.agent.id, body["session_id"])


async def _client_ended(linked: Linked, body: dict[str, Any]) -> None:
    await linked.services.sessions.client_ended(linked.agent.id, body["session_id"])


async def _recording_chunk(linked: Linked, body: dict[str, Any]) -> None:
    """Keep a piece of a terminal recording of one of this agent's sessions."""
    services, agent = linked.services, linked.agent
    row = await services.sessions.stored(body["session_id"][:64])
    if row is None or row.agent_id != agent.id:
        raise RemoteProtocolError("recording for a session that is not this agent's")
    try:
        size = services.recordings.append(row.id, body["offset"], body["data"])
    except RemoteProtocolError as exc:  # too big or out of order: keep the link, drop it
        log.warning("recording of %s from %s dropped: %s", row.id, agent.id, exc)
        return
    if body["last"]:
        await services.sessions.recording_stored(agent.id, row.id, size)


async def _snapshot(linked: Linked, body: dict[str, Any]) -> None:
    try:
        await linked.services.diagnostics.received(linked.agent.id, body)
    except RemoteProtocolError as exc:
        log.warning("snapshot from %s refused: %s", linked.agent.id, exc)


async def _help(linked: Linked, body: dict[str, Any]) -> None:
    requests = linked.services.requests
    value = await requests.ask(
        linked.agent, body["text"], bool(body["urgent"]), body.get("snapshot")
    )
    await _help_reply(linked, body, value)


async def _help_status(linked: Linked, body: dict[str, Any]) -> None:
    await _help_reply(linked, body, await linked.services.requests.status(linked.agent))


async def _unlink(linked: Linked, body: dict[str, Any]) -> None:
    """``qp-agent uninstall``: revoke, answer, then drop the link."""
    await linked.services.directory.unlink_agent(linked.agent)
    await _help_reply(linked, body, {"unlinked": linked.agent.id})
    await linked.link.ws.close(code=POLICY_VIOLATION, reason="agent uninstalled")


async def _help_reply(linked: Linked, body: dict[str, Any], value: Any) -> None:
    reply = {"ref": body["ref"]}
    if isinstance(value, dict) and "error" in value:
        reply["error"] = value["error"]
    else:
        reply["value"] = value
    await linked.link.send(Message("help_reply", reply))


HANDLERS: dict[str, Handler] = {
    "session_accept": _accept,
    "session_decline": _decline,
    "consent_pin": _consent_pin,
    "session_ready": _ready,
    "session_consent_pending": _consent_pending,
    "session_ended": _client_ended,
    "recording_chunk": _recording_chunk,
    "diag_snapshot": _snapshot,
    "help_request": _help,
    "help_status": _help_status,
    "unlink": _unlink,
}
