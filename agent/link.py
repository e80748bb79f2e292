"""``qp-agent run``: keep the control link to the relay and serve offered sessions.

The client stays in control: attended sessions wait for the local user's consent,
``qp-agent sessions`` lists who is connected, ``qp-agent end`` ends a session at
once (the relay records ``client_ended``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from agent.audit import AgentAudit
from agent.consent import APPROVED, TIMEOUT, ConsentBroker, ConsentRequest
from agent.control import serve_control
from agent.diagnostics.options import DiagnosticsOptions
from agent.files import AgentFiles, Identity
from agent.pin import read_pin
from agent.processes import SessionContext
from agent.snapshots import options_from, snapshot
from agent.sshserver import open_tunnel, serve_session
from shared.backoff import full_jitter
from shared.clock import SystemClock, certificate_clock_problem, iso, parse_iso
from shared.diagnostics import to_json
from shared.errors import (
    AuthError,
    QPError,
    RemoteProtocolError,
    UnavailableError,
    error_from_close,
    error_from_code,
)
from shared.keys import sign_challenge
from shared.protocol.close_codes import NORMAL_CLOSURE
from shared.protocol.messages import RELAY_TO_AGENT, Message, decode, encode
from shared.transport import dial

log = logging.getLogger("qp.agent")

BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
#: A link that stayed up this long resets the backoff.
STABLE_AFTER = 60.0
#: How long ``qp-agent end`` waits for the relay to confirm before ending locally.
END_ACK_TIMEOUT = 5.0
#: Recording bytes per upload message (base64 grows them by a third; well under
#: the relay's control-message limit).
RECORDING_CHUNK = 32 * 1024
#: How long ``qp-agent help`` waits for the relay's answer.
HELP_TIMEOUT = 15.0
#: Default cap on SSH connections of this agent that have not logged in yet.
MAX_PREAUTH_SSH = 8

Send = Callable[[Message], Awaitable[None]]


@dataclass
class LocalSession:
    session_id: str
    technician: str
    kind: str
    request: str
    since: str
    state: str  # waiting_for_consent | connecting | active
    task: asyncio.Task[None] | None = None
    ended: asyncio.Event | None = None

    def view(self) -> dict[str, Any]:
        return {
            "session": self.session_id,
            "technician": self.technician,
            "kind": self.kind,
            "request": self.request,
            "since": self.since,
            "state": self.state,
        }


def _error_in(msg: Message) -> QPError | None:
    """The error a relay's ``error`` message reports, or None for any other message."""
    if msg.type != "error":
        return None
    return error_from_code(msg.body["code"], msg.body["message"])


class AgentRunner:
    """The always-on agent: one control link, any number of sessions."""

    def __init__(
        self,
        files: AgentFiles,
        consent: ConsentBroker | None = None,
        ident: Identity | None = None,
    ) -> None:
        self.files = files
        self.ident = ident or Identity.load(files)
        self.sessions: dict[str, LocalSession] = {}
        self.consent = consent or ConsentBroker()
        self.audit = AgentAudit(files.audit_log)
        self._clock = SystemClock()
        self._send: Send | None = None
        self.online = asyncio.Event()
        #: Support mode links once: its identity dies with the link.
        self.reconnect = True
        #: Why the last link ended, when it did not end normally (None after a
        #: normal close or our own stop).
        self.failure: QPError | None = None
        #: The last link's close code and reason; None if it never opened.
        self.closed: tuple[int | None, str] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._replies: dict[str, asyncio.Future[dict[str, Any]]] = {}
        #: Sessions between dialing the tunnel and a completed SSH login.
        self._preauth = 0

    # -- the link ------------------------------------------------------------------
    async def run_forever(self, stop: asyncio.Event) -> None:
        control = await serve_control(self.files.control_socket, self.control)
        attempt = 0
        try:
            while not stop.is_set():
                started = self._clock.monotonic()
                self.failure, self.closed = None, None
                try:
                    await self._link_once(stop)
                except QPError as exc:
                    self.failure = exc
                except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError) as exc:
                    self.failure = UnavailableError(f"connection failed: {exc}")
                if isinstance(self.failure, AuthError):
                    attempt = max(attempt, 8)
                if self.reconnect:  # support mode reports its one failure itself
                    self._log_disconnect()
                self._send = None
                self.online.clear()
                self._status(online=False)
                if stop.is_set() or not self.reconnect:
                    break
                if self._clock.monotonic() - started > STABLE_AFTER:
                    attempt = 0
                delay = full_jitter(attempt, BACKOFF_BASE, BACKOFF_CAP)
                attempt += 1
                log.info("reconnecting in %.1fs", delay)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
        finally:
            control.close()
            for session in list(self.sessions.values()):
                if session.task is not None:
                    session.task.cancel()
            with contextlib.suppress(OSError):
                self.files.control_socket.unlink()

    def _log_disconnect(self) -> None:
        """One line per ended link: why, and the relay's close code and reason."""
        closed = ""
        if self.closed is not None:
            code, reason = self.closed
            closed = f" [close code {code}, reason {reason!r}]"
        if isinstance(self.failure, AuthError):
            hint = "(revoked? enroll again)"
            log.error("relay refused this agent: %s %s%s", self.failure, hint, closed)
        elif self.failure is not None:
            log.warning("link to relay lost: %s%s", self.failure, closed)
        else:
            log.info("link to relay closed%s", closed)

    async def _link_once(self, stop: asyncio.Event) -> None:
        """One link, from the relay's challenge until ``stop`` or the relay closes it.

        Returns after ``stop`` or a normal close of an accepted link. Raises the
        relay's reason when it refused us (an ``error`` message, then or instead of
        the welcome) or closed the link otherwise (see :func:`error_from_close`).
        """
        ident = self.ident
        ws = await dial(f"{ident.relay_url}/v1/agent", ca_file=ident.ca_file)
        accepted = False
        # An error message right before the close says why better than the close.
        last_error: QPError | None = None
        try:
            async with ws:
                challenge = await self._receive(ws, "challenge")
                # A relay that refuses us may close before reading this; its
                # refusal is then still waiting to be read below.
                with contextlib.suppress(ConnectionClosed):
                    await ws.send(encode(self.hello(challenge)))
                welcome = await self._receive(ws, "welcome", "support_ok")
                self.welcomed(welcome)
                accepted = True
                lock = asyncio.Lock()

                async def send(message: Message) -> None:
                    async with lock:
                        await ws.send(encode(message))

                self._send = send
                log.info("connected to relay as %s", self.ident.agent_id)
                self._status(online=True)
                self.online.set()
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
                        last_error = _error_in(msg)
                        await self._handle(msg, send)
                finally:
                    stopper.cancel()
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else None
            if last_error is not None:
                raise last_error from exc
            if not (accepted and code == NORMAL_CLOSURE):
                raise error_from_close(code, exc.rcvd.reason if exc.rcvd else "") from exc
        finally:
            self.closed = (ws.close_code, ws.close_reason or "")

    @staticmethod
    async def _receive(ws: ClientConnection, *expected: str) -> Message:
        """The next handshake message, which must be of an ``expected`` type; an
        ``error`` message from the relay is raised as the error it names."""
        msg = decode(await ws.recv(), RELAY_TO_AGENT)
        refusal = _error_in(msg)
        if refusal is not None:
            raise refusal
        if msg.type not in expected:
            raise RemoteProtocolError(f"expected {' or '.join(expected)}, got {msg.type}")
        return msg

    def hello(self, challenge: Message) -> Message:
        """The first message after the relay's challenge (overridden for support mode)."""
        signature = sign_challenge(
            self.ident.identity_key, challenge.body["nonce"], challenge.body["relay_id"]
        )
        body = {"agent_id": self.ident.agent_id, "signature": signature}
        if (pin := read_pin(self.files)) is not None:
            body["consent_pin"] = pin  # the relay shows the policy in effect
        return Message("auth", body)

    def welcomed(self, welcome: Message) -> None:
        """Hook for support mode, which learns its identity from the welcome."""

    async def _handle(self, msg: Message, send: Send) -> None:
        if msg.type == "session_offer":
            sid = msg.body["session_id"]
            if sid in self.sessions:
                return
            session = LocalSession(
                sid,
                msg.body["technician"][:120],
                msg.body["kind"][:20],
                str(msg.body.get("request") or "")[:200],
                iso(self._clock.now()) or "",
                "connecting",
                ended=asyncio.Event(),
            )
            self.sessions[sid] = session
            session.task = asyncio.create_task(self._serve(session, msg.body, send))
            session.task.add_done_callback(self._forget(sid))
        elif msg.type == "session_end":
            ending = self.sessions.get(msg.body["session_id"])
            if ending is not None:
                self.consent.cancel(ending.session_id)
                if ending.ended is not None:
                    ending.ended.set()
                if ending.task is not None:
                    ending.task.cancel()
        elif msg.type == "diag_request":
            task = asyncio.create_task(self._send_snapshot(msg.body, send))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        elif msg.type == "help_reply":
            waiter = self._replies.pop(msg.body["ref"], None)
            if waiter is not None and not waiter.done():
                waiter.set_result(msg.body)
        elif msg.type == "error" and self.reconnect:  # support mode reports it on exit
            log.warning("relay: %s", msg.body["message"])

    def _forget(self, sid: str) -> Callable[[asyncio.Task[None]], None]:
        def forget(_task: asyncio.Task[None]) -> None:
            session = self.sessions.pop(sid, None)
            if session is not None and session.ended is not None:
                session.ended.set()  # nobody waits for a session_end that may never come

        return forget

    async def _serve(self, session: LocalSession, offer: dict[str, Any], send: Send) -> None:
        sid = session.session_id
        raw = offer.get("policy")
        policy = self.adjust_policy(dict(raw) if isinstance(raw, dict) else {})
        log.info("session %s offered: %s by %s", sid, session.kind, session.technician)
        self.audit.record("offer", sid, technician=session.technician, kind=session.kind)
        in_login = False  # counted in self._preauth until the SSH login completes
        try:
            if (problem := self._clock_problem(offer)) is not None:
                # Its certificate would be refused: say why, not "permission denied".
                log.warning("session %s refused: %s", sid, problem)
                self.audit.record("clock_skew", sid, problem=problem)
                await send(
                    Message(
                        "session_decline", {"session_id": sid, "reason": problem, "by": "agent"}
                    )
                )
                return
            # The client's own pin outranks the relay's policy (read now: it may have
            # been set since the link opened).
            pinned = read_pin(self.files) == "attended"
            if policy.get("consent") == "attended" or self.always_attended() or pinned:
                if not await self._ask_consent(session, send):
                    return
            if self._preauth >= self.max_preauth_ssh():
                # SSH connections that have not logged in cost a handshake each: cap them.
                log.warning("session %s refused: too many SSH logins in progress", sid)
                self.audit.record("preauth_refused", sid, limit=self.max_preauth_ssh())
                busy = "the agent has too many SSH logins in progress; try again shortly"
                await send(
                    Message("session_decline", {"session_id": sid, "reason": busy, "by": "agent"})
                )
                return
            self._preauth += 1
            in_login = True
            ws = await open_tunnel(self.ident, offer["tunnel_url"], offer["tunnel_token"])
            await send(Message("session_accept", {"session_id": sid}))
            session.state = "active"
            ctx = SessionContext(
                sid,
                session.technician,
                self.audit,
                recordings=self.files.recordings,
                record_input=bool(policy.get("record_input", False)),
                upload=self._uploader(sid, send) if policy.get("upload_recordings") else None,
            )

            async def ready() -> None:
                nonlocal in_login
                if in_login:
                    in_login, self._preauth = False, self._preauth - 1
                try:
                    await send(Message("session_ready", {"session_id": sid}))
                except Exception as exc:  # the relay learns of the login when the link is back
                    log.warning("session %s: login not reported to the relay: %s", sid, exc)

            expires = offer.get("expires_in")
            await serve_session(
                self.ident,
                sid,
                ws,
                ctx,
                policy,
                on_ready=ready,
                kind=session.kind,
                expires_in=float(expires) if isinstance(expires, int) else None,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("session %s failed: %s", sid, exc)
            # The relay (and the technician) get a fixed reason; the detail stays here.
            decline = {
                "session_id": sid,
                "reason": "the agent could not start the session",
                "by": "agent",
            }
            try:
                await send(Message("session_decline", decline))
            except Exception as send_exc:
                log.info("session %s: decline not delivered: %s", sid, send_exc)
        finally:
            if in_login:
                self._preauth -= 1
            self.audit.record("session_closed", sid)

    def max_preauth_ssh(self) -> int:
        """The agent's cap on sessions whose SSH login has not completed yet
        (``max_preauth_ssh_per_agent`` in its config, default
        :data:`MAX_PREAUTH_SSH`)."""
        config = self.files.load_config() if self.files.enrolled() else {}
        value = config.get("max_preauth_ssh_per_agent", MAX_PREAUTH_SSH)
        return value if isinstance(value, int) and value > 0 else MAX_PREAUTH_SSH

    def _uploader(self, sid: str, send: Send) -> Callable[[Path], Awaitable[None]]:
        """Send a finished recording to the relay in control-message-sized chunks."""

        async def upload(path: Path) -> None:
            data = path.read_bytes()
            for offset in range(0, max(len(data), 1), RECORDING_CHUNK):
                piece = data[offset : offset + RECORDING_CHUNK]
                last = offset + RECORDING_CHUNK >= len(data)
                body = {
                    "session_id": sid,
                    "offset": offset,
                    "data": base64.b64encode(piece).decode(),
                    "last": last,
                }
                await send(Message("recording_chunk", body))
            self.audit.record("recording_uploaded", sid, bytes=len(data))

        return upload

    def _clock_problem(self, offer: dict[str, Any]) -> str | None:
        """Why this machine's clock would refuse the session's certificate, if it would
        (None also when an older relay sends no times)."""
        times = [
            parse_iso(offer.get(k)) for k in ("relay_time", "cert_valid_after", "cert_valid_before")
        ]
        relay_time, after, before = times
        if relay_time is None or after is None or before is None:
            return None
        return certificate_clock_problem(self._clock.now(), relay_time, after, before, "the client")

    def always_attended(self) -> bool:
        """Support mode is attended by construction."""
        return False

    def adjust_policy(self, policy: dict[str, Any]) -> dict[str, Any]:
        """Hook: support mode confines files to the user's home."""
        return policy

    async def _ask_consent(self, session: LocalSession, send: Send) -> bool:
        sid = session.session_id
        session.state = "waiting_for_consent"
        await send(Message("session_consent_pending", {"session_id": sid}))
        request = ConsentRequest(sid, session.technician, session.kind, session.request)
        outcome = await self.consent.ask(request)
        self.audit.record("consent", sid, technician=session.technician, outcome=outcome)
        log.info("session %s: consent %s", sid, outcome)
        if outcome == APPROVED:
            session.state = "connecting"
            return True
        reason = "consent_timeout" if outcome == TIMEOUT else "declined by the client"
        await send(Message("session_decline", {"session_id": sid, "reason": reason}))
        return False

    # -- diagnostics and help requests -------------------------------------------------
    def diag_options(self, relay_time: str | None = None) -> DiagnosticsOptions:
        config = self.files.load_config() if self.files.enrolled() else {}
        return options_from(config, self.ident.relay_url, relay_time)

    async def _send_snapshot(self, body: dict[str, Any], send: Send) -> None:
        snap = await snapshot(self.diag_options(body.get("relay_time")))
        reply: dict[str, Any] = {"ref": body["ref"], "snapshot": to_json(snap)}
        for key in ("session_id", "phase"):
            if body.get(key):
                reply[key] = body[key]
        try:
            await send(Message("diag_snapshot", reply))
        except Exception as exc:  # the link dropped; the relay asks again when it needs one
            log.info("snapshot %s not delivered: %s", body["ref"], exc)

    async def ask_relay(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        """Send a help message and wait for the relay's ``help_reply``."""
        if self._send is None:
            return {"ok": False, "error": "the agent is not connected to the relay right now"}
        ref = secrets.token_hex(8)
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[ref] = waiter
        try:
            await self._send(Message(kind, {"ref": ref, **body}))
            reply = await asyncio.wait_for(waiter, HELP_TIMEOUT)
        except (TimeoutError, ConnectionClosed):
            return {"ok": False, "error": "the relay did not answer; try again"}
        finally:
            self._replies.pop(ref, None)
        if "error" in reply:
            return {"ok": False, "error": reply["error"]}
        return {"ok": True, "value": reply.get("value")}

    async def help(self, text: str, urgent: bool) -> dict[str, Any]:
        snap = await snapshot(self.diag_options())
        self.audit.record("help_request", "", urgent=urgent, text=text[:200])
        return await self.ask_relay(
            "help_request", {"text": text, "urgent": urgent, "snapshot": to_json(snap)}
        )

    # -- the client's control -----------------------------------------------------
    async def end_session(self, session_id: str) -> bool:
        """End a session now. The relay is told first so it records ``client_ended``
        and closes the entry at this moment; without a relay we end it locally."""
        session = self.sessions.get(session_id)
        if session is None:
            return False
        self.audit.record("client_end", session_id)
        if self._send is not None and session.ended is not None:
            body = {"session_id": session_id, "reason": "client_ended"}
            try:
                await self._send(Message("session_ended", body))
                await asyncio.wait_for(session.ended.wait(), END_ACK_TIMEOUT)
            except Exception as exc:  # ended here regardless; the relay sees the tunnel close
                log.info("session %s: relay not told of the end in time: %s", session_id, exc)
        self.consent.cancel(session_id)
        if session.task is not None:
            session.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await session.task
        return True

    async def control(self, request: dict[str, Any]) -> dict[str, Any]:
        """Requests from ``qp-agent sessions|end|consent`` on the local socket."""
        cmd = request.get("cmd")
        if cmd == "sessions":
            return {"ok": True, "sessions": [s.view() for s in self.sessions.values()]}
        if cmd == "end":
            target = request.get("session")
            ids = [target] if isinstance(target, str) else list(self.sessions)
            if not ids:
                return {"ok": False, "error": "no session is running"}
            ended = [sid for sid in ids if await self.end_session(sid)]
            if not ended:
                return {"ok": False, "error": f"no running session {target!r}"}
            return {"ok": True, "ended": ended}
        if cmd == "help":
            text, urgent = request.get("text"), request.get("urgent", False)
            if not isinstance(text, str) or not isinstance(urgent, bool):
                return {"ok": False, "error": "help needs a text"}
            return await self.help(text, urgent)
        if cmd == "help_status":
            return await self.ask_relay("help_status", {})
        if cmd == "unlink":
            reply = await self.ask_relay("unlink", {})
            if reply["ok"]:  # the relay forgot us: do not link again; run_forever returns
                self.reconnect = False
                self.audit.record("uninstall", "")
            return reply
        if cmd == "pin_changed":  # qp-agent policy: tell the relay now, not at the next link
            if self._send is not None:
                with contextlib.suppress(Exception):
                    body = {"consent": read_pin(self.files) or ""}
                    await self._send(Message("consent_pin", body))
            return {"ok": True}
        if cmd == "pending":
            pending = [
                {
                    "session": r.session_id,
                    "technician": r.technician,
                    "kind": r.kind,
                    "request": r.reason,
                    "question": r.question(),
                }
                for r in self.consent.pending()
            ]
            return {"ok": True, "pending": pending}
        if cmd == "answer":
            sid, approve = request.get("session"), request.get("approve")
            if not isinstance(sid, str) or not isinstance(approve, bool):
                return {"ok": False, "error": "answer needs a session and approve true/false"}
            if not self.consent.answer(sid, approve):
                return {"ok": False, "error": f"no consent question pending for {sid!r}"}
            return {"ok": True}
        return {"ok": False, "error": f"unknown command {str(cmd)[:40]!r}"}

    def _status(self, online: bool) -> None:
        with contextlib.suppress(OSError):
            self.files.write_status(
                {"online": online, "since": iso(self._clock.now()), "pid": os.getpid()}
            )
