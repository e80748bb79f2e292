"""``qp-agent enroll``: make keys locally, trade a one-time token for an identity."""

from __future__ import annotations

import socket
from dataclasses import dataclass

import asyncssh
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from agent.files import AgentFiles
from shared.errors import ConfigError, RemoteProtocolError, error_from_close, error_from_code
from shared.keys import (
    generate_key,
    public_text,
    save_private_key,
    sign_challenge,
)
from shared.protocol.messages import RELAY_TO_AGENT, Message, decode, encode
from shared.secrets_io import write_private
from shared.tls_trust import relay_ca, store_ca
from shared.transport import dial


@dataclass(frozen=True)
class Enrolled:
    agent_id: str
    name: str


async def enroll(
    files: AgentFiles,
    relay_url: str,
    token: str,
    name: str | None = None,
    ca_file: str | None = None,
    ca_pin: str | None = None,
) -> Enrolled:
    """Enroll this machine. The token is sent once and never stored. The relay's CA
    (from ``ca_file``, or pinned by ``ca_pin``) is kept in the data directory."""
    if files.enrolled():
        raise ConfigError(
            f"{files.root} already holds an enrolled agent; use another --data or remove it"
        )
    relay_url = relay_url.rstrip("/")
    pem = await relay_ca(relay_url, ca_file, ca_pin)
    kept_ca: str | None = None
    if pem is not None:
        files.prepare()
        kept_ca = store_ca(files.root, pem)
    identity, host_key = generate_key(), generate_key()
    ws = await dial(f"{relay_url}/v1/agent", ca_file=kept_ca)
    try:
        async with ws:
            challenge, reply = await _exchange(ws, token, name, identity, host_key)
    except ConnectionClosed as exc:  # refused by a close frame alone (busy, throttled)
        close = exc.rcvd
        raise error_from_close(
            close.code if close else None, close.reason if close else ""
        ) from None
    if reply.type == "error":
        raise error_from_code(reply.body["code"], reply.body["message"])
    if reply.type != "enrolled":
        raise RemoteProtocolError(f"unexpected {reply.type} reply to enroll")
    files.prepare()
    save_private_key(files.identity, identity)
    save_private_key(files.host_key, host_key)
    write_private(files.host_cert, reply.body["host_certificate"] + "\n")
    write_private(files.user_ca, reply.body["user_ca"] + "\n")
    write_private(files.host_ca, reply.body["host_ca"] + "\n")
    # Written last: its presence means the enrollment is complete.
    files.save_config(
        {
            "relay_url": relay_url,
            "agent_id": reply.body["agent_id"],
            "name": reply.body["name"],
            "relay_id": challenge.body["relay_id"],
            "ca_file": kept_ca,
        }
    )
    return Enrolled(reply.body["agent_id"], reply.body["name"])


async def _exchange(
    ws: ClientConnection,
    token: str,
    name: str | None,
    identity: asyncssh.SSHKey,
    host_key: asyncssh.SSHKey,
) -> tuple[Message, Message]:
    """The relay's challenge and its answer to our ``enroll``."""
    challenge = decode(await ws.recv(), RELAY_TO_AGENT)
    if challenge.type != "challenge":
        raise RemoteProtocolError("the relay did not start with a challenge")
    body = {
        "token": token,
        "identity_key": public_text(identity),
        "host_key": public_text(host_key),
        "name": name or socket.gethostname(),
        "signature": sign_challenge(identity, challenge.body["nonce"], challenge.body["relay_id"]),
    }
    await ws.send(encode(Message("enroll", body)))
    return challenge, decode(await ws.recv(), RELAY_TO_AGENT)
