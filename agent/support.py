"""``qp-agent support --relay URL --code CODE``: help now, nothing installed.

A throw-away identity (keys in memory, scratch files in a temporary directory
removed at exit), attended by construction: every session waits for the person
at the keyboard, who sees who is connected and what they do, and can end it
with Ctrl+C.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any, cast

from agent.audit import AgentAudit
from agent.consent import ConsentBroker
from agent.diagnostics.options import DiagnosticsOptions
from agent.files import AgentFiles, Identity
from agent.link import AgentRunner
from shared.errors import RemoteProtocolError
from shared.keys import generate_key, parse_certificate, public_text, sign_challenge
from shared.protocol.messages import Message
from shared.tls_trust import relay_ca, store_ca


class TerminalAudit(AgentAudit):
    """Also tells the person at the keyboard what is happening."""

    SHOWN = {
        "offer": "{technician} asks for a {kind} session",
        "consent": "consent: {outcome}",
        "exec": "{technician} runs: {command}",
        "shell": "{technician} opened a terminal",
        "file_upload": "file received: {path} ({size} bytes)",
        "file_download": "file sent: {path} ({size} bytes)",
        "file_refused": "file access refused: {path} ({reason})",
        "forward": "connection to {host}:{port} through this machine",
        "forward_refused": "connection to {host}:{port} refused by policy",
        "session_closed": "session ended",
    }

    def record(self, event: str, session_id: str = "", **fields: Any) -> None:
        super().record(event, session_id, **fields)
        template = self.SHOWN.get(event)
        if template:
            with contextlib.suppress(KeyError, ValueError):
                text = template.format(**fields)
                safe = "".join(ch if ch.isprintable() else "?" for ch in text)
                print(f"[qp] {safe}", file=sys.stderr, flush=True)


class SupportRunner(AgentRunner):
    def __init__(
        self,
        relay_url: str,
        code: str,
        scratch: Path,
        probe_gateway: bool = True,
        ca_file: str | None = None,
    ) -> None:
        files = AgentFiles(scratch)
        files.prepare()
        identity_key, host_key = generate_key(), generate_key()
        placeholder = Identity(
            relay_url=relay_url.rstrip("/"),
            agent_id="",
            name=socket.gethostname(),
            ca_file=ca_file,
            identity_key=identity_key,
            host_key=host_key,
            host_cert=cast(Any, None),  # issued by the relay in its support_ok reply
            user_ca="",
        )
        super().__init__(files, ConsentBroker(), ident=placeholder)
        self.audit = TerminalAudit(files.audit_log)
        self.code = code
        self.reconnect = False
        self.probe_gateway = probe_gateway

    def diag_options(self, relay_time: str | None = None) -> DiagnosticsOptions:
        """A support agent has no agent.json: its one diagnostics setting is a flag."""
        options = super().diag_options(relay_time)
        return dataclasses.replace(options, probe_gateway=self.probe_gateway)

    def hello(self, challenge: Message) -> Message:
        ident = self.ident
        body = {
            "code": self.code,
            "identity_key": public_text(ident.identity_key),
            "host_key": public_text(ident.host_key),
            "name": ident.name,
            "signature": sign_challenge(
                ident.identity_key, challenge.body["nonce"], challenge.body["relay_id"]
            ),
        }
        return Message("support", body)

    def welcomed(self, welcome: Message) -> None:
        if welcome.type != "support_ok":
            raise RemoteProtocolError("the relay did not accept the support code")
        body = welcome.body
        self.ident = Identity(
            relay_url=self.ident.relay_url,
            agent_id=body["agent_id"],
            name=body["name"],
            ca_file=self.ident.ca_file,
            identity_key=self.ident.identity_key,
            host_key=self.ident.host_key,
            host_cert=parse_certificate(body["host_certificate"]),
            user_ca=body["user_ca"],
        )
        print(
            f"[qp] connected for {body['customer'] or 'support'} as {body['agent_id']}; "
            "waiting for a technician (Ctrl+C ends everything)",
            file=sys.stderr,
            flush=True,
        )

    def always_attended(self) -> bool:
        return True

    def adjust_policy(self, policy: dict[str, Any]) -> dict[str, Any]:
        return {**policy, "consent": "attended", "sftp_root": str(Path.home())}


async def prompt_consent(runner: AgentRunner) -> None:
    """Ask at the terminal for each pending consent request."""
    asked: set[str] = set()
    while True:
        await runner.consent.changed.wait()
        runner.consent.changed.clear()
        for request in runner.consent.pending():
            if request.session_id in asked:
                continue
            asked.add(request.session_id)
            question = "".join(ch if ch.isprintable() else "?" for ch in request.question())
            print(f"\n[qp] {question} [y/N] ", end="", file=sys.stderr, flush=True)
            line = await asyncio.to_thread(sys.stdin.readline)
            runner.consent.answer(request.session_id, line.strip().lower() in ("y", "yes"))


async def run_support(
    relay_url: str,
    code: str,
    probe_gateway: bool = True,
    ca_file: str | None = None,
    ca_pin: str | None = None,
) -> int:
    """Serve one support session with ``code`` until Ctrl+C or the relay ends it;
    raises the relay's reason if it refused the code or closed the link abnormally.
    The relay's CA (``ca_file``, or pinned by ``ca_pin``) lives in the scratch
    directory for the session's length."""
    pem = await relay_ca(relay_url.rstrip("/"), ca_file, ca_pin)
    with tempfile.TemporaryDirectory(prefix="qp-support-") as scratch:
        kept_ca = store_ca(Path(scratch), pem) if pem is not None else None
        runner = SupportRunner(relay_url, code, Path(scratch), probe_gateway, kept_ca)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        prompter = asyncio.create_task(prompt_consent(runner))
        try:
            await runner.run_forever(stop)
        finally:
            prompter.cancel()
        if runner.failure is not None:  # refused, or the relay ended the link abnormally
            raise runner.failure
    print("[qp] support ended; nothing was left on this machine", file=sys.stderr)
    return 0
