"""``qp-agent run``: keep the control link to the relay and serve offered sessions."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable

from websockets.exceptions import ConnectionClosed, InvalidHandshake

from agent.files import AgentFiles, Identity
from agent.sshserver import open_tunnel, serve_session
from shared.backoff import full_jitter
from shared.clock import SystemClock, iso
from shared.errors import AuthError, QPError, RemoteProtocolError, error_from_code
from shared.keys import sign_challenge
from shared.protocol.messages import RELAY_TO_AGENT, Message, decode, encode
from shared.transport import dial

log = logging.getLogger("qp.agent")

BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
#: A link that stayed up this long resets the backoff.
STABLE_AFTER = 60.0


class AgentRunner:
    """The always-on agent: one control link, any number of sessions."""

    def __init__(
        self,
        files: AgentFiles,
        on_online: Callable[[str], None] | None = None,
    ) -> None:
        self.files = files
        self.ident = Identity.load(files)
        self.sessions: dict[str, asyncio.Task[None]] = {}
        self.on_online = on_online
        self._clock = SystemClock()

    async def run_forever(self, stop: asyncio.Event) -> None:
        attempt = 0
        while not stop.is_set():
            started = self._clock.monotonic()
            try:
                await self._link_once(stop)
            except AuthError as exc:
                log.error("relay refused this agent: %s (revoked? enroll again)", exc)
                attempt = max(attempt, 8)
            except (QPError, OSError, ConnectionClosed, InvalidHandshake, TimeoutError) as exc:
                log.warning("link to relay lost: %s", exc)
            self._status(online=False)
            if self._clock.monotonic() - started > STABLE_AFTER:
                attempt = 0
            delay = full_jitter(attempt, BACKOFF_BASE, BACKOFF_CAP)
            attempt += 1
            log.info("reconnecting in %.1fs", delay)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
        for task in self.sessions.values():
            task.cancel()

    async def _link_once(self, stop: asyncio.Event) -> None:
        ident = self.ident
        ws = await dial(f"{ident.relay_url}/v1/agent", ca_file=ident.ca_file)
        async with ws:
            challenge = decode(await ws.recv(), RELAY_TO_AGENT)
            if challenge.type != "challenge":
                raise RemoteProtocolError("the relay did not start with a challenge")
            signature = sign_challenge(
                ident.identity_key, challenge.body["nonce"], challenge.body["relay_id"]
            )
            auth = Message("auth", {"agent_id": ident.agent_id, "signature": signature})
            await ws.send(encode(auth))
            welcome = decode(await ws.recv(), RELAY_TO_AGENT)
            if welcome.type == "error":
                raise error_from_code(welcome.body["code"], welcome.body["message"])
            if welcome.type != "welcome":
                raise RemoteProtocolError(f"expected welcome, got {welcome.type}")
            log.info("connected to relay as %s", ident.agent_id)
            self._status(online=True)
            if self.on_online:
                self.on_online(ident.agent_id)
            stopper = asyncio.create_task(stop.wait())
            try:
                while True:
                    receiver = asyncio.create_task(ws.recv())
                    done, _ = await asyncio.wait(
                        {receiver, stopper}, return_when=asyncio.FIRST_COMPLETED
                    )
                    if stopper in done:
                        receiver.cancel()
                        return
                    msg = decode(receiver.result(), RELAY_TO_AGENT)
                    await self._handle(ws_send=ws.send, msg=msg)
            finally:
                stopper.cancel()

    async def _handle(self, ws_send: Callable[[str], object], msg: Message) -> None:
        send = ws_send
        if msg.type == "session_offer":
            sid = msg.body["session_id"]
            if sid in self.sessions:
                return
            task = asyncio.create_task(self._serve(msg, send))
            self.sessions[sid] = task
            task.add_done_callback(self._forget(sid))
        elif msg.type == "session_end":
            running = self.sessions.get(msg.body["session_id"])
            if running is not None:
                running.cancel()
        elif msg.type == "error":
            log.warning("relay: %s", msg.body["message"])

    def _forget(self, sid: str) -> Callable[[asyncio.Task[None]], None]:
        def forget(_task: asyncio.Task[None]) -> None:
            self.sessions.pop(sid, None)

        return forget

    async def _serve(self, offer: Message, send: Callable[[str], object]) -> None:
        body = offer.body
        sid = body["session_id"]
        log.info("session %s offered: %s by %s", sid, body["kind"], body["technician"][:80])
        try:
            ws = await open_tunnel(self.ident, body["tunnel_url"], body["tunnel_token"])
            await send(encode(Message("session_accept", {"session_id": sid})))  # type: ignore[misc]
            await serve_session(self.ident, sid, ws)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("session %s failed: %s", sid, exc)
            with contextlib.suppress(Exception):
                await send(  # type: ignore[misc]
                    encode(
                        Message("session_decline", {"session_id": sid, "reason": str(exc)[:200]})
                    )
                )

    def _status(self, online: bool) -> None:
        with contextlib.suppress(OSError):
            self.files.write_status(
                {"online": online, "since": iso(self._clock.now()), "pid": os.getpid()}
            )
