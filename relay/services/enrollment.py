"""Agent identities: enrollment with a token, throw-away identities for support
codes, and the proof of an enrolled identity on every link.

Identity comes from keys, never from claims: every answer here starts from a
signature over the relay's challenge. Refusals raise :class:`AuthError` (the
transport counts them for its throttle) after an audit record; a refused attempt
changes nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncssh

from relay.core.ids import new_id, token_hash
from relay.core.support_codes import new_code, normalise_code
from relay.model import Agent, AuditEvent, Customer, SupportCode, Technician
from relay.services.audit import ANONYMOUS, Auditor
from relay.services.authorities import Authorities
from relay.services.live_settings import LiveSettings, as_live
from relay.settings import Settings
from relay.store.interface import Store
from shared.clock import Clock
from shared.errors import AuthError, RemoteProtocolError
from shared.keys import certificate_text, parse_public_key, public_text, verify_challenge

MAX_AGENT_NAME = 64
#: A support agent's host certificate outlives any session it can start.
SUPPORT_CERT_HOURS = 24


@dataclass(frozen=True)
class Proof:
    """What an enrolling agent presents: its keys, and its signature over the nonce."""

    identity_key: str
    host_key: str
    signature: str
    nonce: str
    name: str


def clean_name(name: str) -> str:
    """An agent's self-chosen name: printable and short."""
    return "".join(ch for ch in name if ch.isprintable())[:MAX_AGENT_NAME] or "agent"


class Enrollment:
    """Turns tokens, codes and signatures into agent identities."""

    @property
    def settings(self) -> Settings:
        """The settings in force now: a reload swaps them between two uses."""
        return self._live.current

    def __init__(
        self,
        store: Store,
        clock: Clock,
        settings: Settings | LiveSettings,
        authorities: Authorities,
        relay_id: str,
        auditor: Auditor,
    ) -> None:
        self.auditor = auditor
        self.store = store
        self.clock = clock
        self._live = as_live(settings)
        self.authorities = authorities
        self.relay_id = relay_id

    async def _keys(self, proof: Proof, event: str, peer: str) -> tuple[asyncssh.SSHKey, ...]:
        """The identity and host keys of ``proof``; a malformed key or a signature
        that does not prove the identity key is refused and audited as ``event``."""
        try:
            identity = parse_public_key(proof.identity_key)
            host_key = parse_public_key(proof.host_key)
        except RemoteProtocolError:  # still a protocol error for the link: closed unanswered
            await self.auditor.refused(event, ANONYMOUS, peer=peer)
            raise
        try:
            # Proof that the enrolling party holds the identity key it registers.
            verify_challenge(public_text(identity), proof.signature, proof.nonce, self.relay_id)
        except AuthError:
            raise await self._refuse(event, peer, "proof of key failed") from None
        return identity, host_key

    async def _refuse(self, event: str, peer: str, message: str) -> AuthError:
        await self.auditor.refused(event, ANONYMOUS, peer=peer)
        return AuthError(message)

    async def enroll(self, proof: Proof, token: str, peer: str) -> dict[str, Any]:
        """An enrollment token becomes an agent identity: the ``enrolled`` answer."""
        identity, host_key = await self._keys(proof, "enroll_proof_refused", peer)
        now = self.clock.now()
        used = await self.store.consume_enroll_token(token_hash(token), now)
        if used is None:
            raise await self._refuse(
                "enroll_refused", peer, "enrollment token is invalid, expired or used up"
            )
        agent = _new_agent(proof, identity, host_key, used.customer_id, now)
        detail = {"token": used.id, "name": agent.name}
        await self.store.add_agent(
            agent, audit=(AuditEvent(now, "enroll", agent.id, agent.customer_id, detail),)
        )
        cert = self.authorities.sign_host(
            host_key, agent.id, now, self.settings.limits.host_cert_days
        )
        return self._identity(agent, certificate_text(cert))

    async def support(self, proof: Proof, code: str, peer: str) -> tuple[Agent, dict[str, Any]]:
        """A one-time support code becomes a throw-away, attended agent identity."""
        identity, host_key = await self._keys(proof, "support_proof_refused", peer)
        now = self.clock.now()
        used = await self.store.consume_support_code(token_hash(normalise_code(code)), now)
        if used is None:
            raise await self._refuse(
                "support_code_refused", peer, "support code is invalid, expired or already used"
            )
        customer = await self.store.get_customer(used.customer_id)
        agent = _new_agent(proof, identity, host_key, used.customer_id, now, ephemeral=True)
        detail = {"code": used.id, "request": used.request or ""}
        await self.store.add_agent(
            agent, audit=(AuditEvent(now, "support_start", agent.id, used.customer_id, detail),)
        )
        cert = self.authorities.host_ca.generate_host_certificate(
            host_key,
            key_id=f"support:{agent.id}",
            principals=[agent.id],
            valid_after=int((now - timedelta(minutes=2)).timestamp()),
            valid_before=int((now + timedelta(hours=SUPPORT_CERT_HOURS)).timestamp()),
        )
        reply = self._identity(agent, certificate_text(cert))
        reply["customer"] = customer.name if customer else ""
        return agent, reply

    async def support_ended(self, agent: Agent) -> None:
        """The support identity dies with its process."""
        audit = AuditEvent(self.clock.now(), "support_end", agent.id, agent.id)
        await self.store.revoke_agent(agent.id, audit=(audit,))

    async def authenticate(self, agent_id: str, signature: str, nonce: str, peer: str) -> Agent:
        """The enrolled, unrevoked agent that signed ``nonce``; AuthError otherwise
        (the same for an unknown, revoked or wrongly signing agent)."""
        agent = await self.store.get_agent(agent_id)
        try:
            if agent is None or agent.revoked:
                raise AuthError("authentication failed")
            verify_challenge(agent.identity_key, signature, nonce, self.relay_id)
        except AuthError:
            # The claimed id proves nothing: an anonymous refusal, counted per address.
            await self.auditor.refused("agent_auth_refused", ANONYMOUS, agent_id, peer=peer)
            raise AuthError("authentication failed") from None
        return agent

    async def create_support_code(
        self, actor: Technician, customer: Customer, ttl: int, request: str | None
    ) -> tuple[SupportCode, str]:
        """A short single-use code for a client without an installed agent."""
        now = self.clock.now()
        code = new_code()
        record = SupportCode(
            new_id("sup"), customer.id, request, now + timedelta(seconds=ttl), actor.id, now
        )
        audit = AuditEvent(
            now, "support_code_create", actor.id, record.id, {"customer": customer.id}
        )
        await self.store.add_support_code(record, token_hash(normalise_code(code)), audit=(audit,))
        return record, code

    def _identity(self, agent: Agent, host_certificate: str) -> dict[str, Any]:
        return {
            "agent_id": agent.id,
            "name": agent.name,
            "host_certificate": host_certificate,
            "user_ca": self.authorities.user_ca_public,
            "host_ca": self.authorities.host_ca_public,
        }


def _new_agent(
    proof: Proof,
    identity: asyncssh.SSHKey,
    host_key: asyncssh.SSHKey,
    customer_id: str,
    now: datetime,
    ephemeral: bool = False,
) -> Agent:
    """A new agent identity; a support (ephemeral) one is always attended."""
    return Agent(
        id=new_id("agt"),
        name=clean_name(proof.name),
        customer_id=customer_id,
        identity_key=public_text(identity),
        host_key=public_text(host_key),
        enrolled_at=now,
        policy={"consent": "attended"} if ephemeral else {},
        ephemeral=ephemeral,
    )
