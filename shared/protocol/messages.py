"""Control-plane messages: a versioned JSON envelope with a strict schema per type.

Envelope: ``{"v": 1, "type": "...", "id": N | null, "body": {...}}``. Unknown
*fields* are ignored within a major version; an unknown *type*, a wrong field type,
a missing field, bad JSON or an oversize message is a :class:`RemoteProtocolError`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from shared.errors import LocalProtocolError, RemoteProtocolError

PROTOCOL_VERSION = 1
#: The one WebSocket subprotocol every endpoint speaks.
SUBPROTOCOL = "qp.v1"
#: Default cap on one control message, in bytes of UTF-8.
MAX_CONTROL_MESSAGE = 64 * 1024

_STR = (str,)
_INT = (int,)
_DICT = (dict,)
_LIST = (list,)
_BOOL = (bool,)

# type -> {field: (allowed python types, required)}
SCHEMAS: dict[str, dict[str, tuple[tuple[type, ...], bool]]] = {
    # agent link
    "challenge": {"nonce": (_STR, True), "relay_id": (_STR, True)},
    "auth": {"agent_id": (_STR, True), "signature": (_STR, True), "consent_pin": (_STR, False)},
    "consent_pin": {"consent": (_STR, True)},  # the client changed its pin while linked
    "enroll": {
        "token": (_STR, True),
        "identity_key": (_STR, True),
        "host_key": (_STR, True),
        "name": (_STR, True),
        "signature": (_STR, True),
    },
    "enrolled": {
        "agent_id": (_STR, True),
        "name": (_STR, True),
        "host_certificate": (_STR, True),
        "user_ca": (_STR, True),
        "host_ca": (_STR, True),
    },
    "welcome": {"agent_id": (_STR, True), "name": (_STR, True)},
    "session_offer": {
        "session_id": (_STR, True),
        "tunnel_url": (_STR, True),
        "tunnel_token": (_STR, True),
        "technician": (_STR, True),
        "kind": (_STR, True),
        "request": (_STR, False),
        "policy": (_DICT, False),
        # Seconds the session certificate stays valid: the agent closes the
        # connection then (relay.services.session_limits has the policy).
        "expires_in": (_INT, False),
        "relay_time": (_STR, False),
        "cert_valid_after": (_STR, False),
        "cert_valid_before": (_STR, False),
    },
    "session_consent_pending": {"session_id": (_STR, True)},
    "session_ready": {"session_id": (_STR, True)},
    # diagnostics and help requests
    "diag_request": {
        "ref": (_STR, True),
        "session_id": (_STR, False),
        "phase": (_STR, False),
        "relay_time": (_STR, False),
    },
    "diag_snapshot": {
        "ref": (_STR, True),
        "snapshot": (_DICT, True),
        "session_id": (_STR, False),
        "phase": (_STR, False),
    },
    "help_request": {
        "ref": (_STR, True),
        "text": (_STR, True),
        "urgent": (_BOOL, True),
        "snapshot": (_DICT, False),
    },
    "help_status": {"ref": (_STR, True)},
    "unlink": {"ref": (_STR, True)},  # qp-agent uninstall: forget this agent for good
    "recording_chunk": {
        "session_id": (_STR, True),
        "offset": (_INT, True),
        "data": (_STR, True),
        "last": (_BOOL, True),
    },
    "help_reply": {"ref": (_STR, True), "value": ((dict, list), False), "error": (_STR, False)},
    "session_ended": {"session_id": (_STR, True), "reason": (_STR, True)},
    "support": {
        "code": (_STR, True),
        "identity_key": (_STR, True),
        "host_key": (_STR, True),
        "name": (_STR, True),
        "signature": (_STR, True),
    },
    "support_ok": {
        "agent_id": (_STR, True),
        "name": (_STR, True),
        "host_certificate": (_STR, True),
        "user_ca": (_STR, True),
        "host_ca": (_STR, True),
        "customer": (_STR, True),
    },
    "session_accept": {"session_id": (_STR, True)},
    # by: "agent" when the agent itself refused (its clock, its limits), not its user.
    "session_decline": {"session_id": (_STR, True), "reason": (_STR, True), "by": (_STR, False)},
    "session_end": {"session_id": (_STR, True), "reason": (_STR, True)},
    # console link
    "login": {"token": (_STR, True)},
    "login_ok": {"technician": (_STR, True), "role": (_STR, True)},
    "call": {"method": (_STR, True), "params": (_DICT, False)},
    "result": {"value": ((dict, list), True)},
    "event": {"session_id": (_STR, True), "state": (_STR, True)},
    # both
    "error": {"code": (_STR, True), "message": (_STR, True)},
}

AGENT_TO_RELAY = frozenset(
    {
        "auth",
        "enroll",
        "support",
        "session_accept",
        "session_decline",
        "consent_pin",
        "session_consent_pending",
        "session_ready",
        "session_ended",
        "diag_snapshot",
        "help_request",
        "help_status",
        "recording_chunk",
        "unlink",
    }
)
RELAY_TO_AGENT = frozenset(
    {
        "challenge",
        "enrolled",
        "welcome",
        "support_ok",
        "session_offer",
        "session_end",
        "diag_request",
        "help_reply",
        "error",
    }
)
CONSOLE_TO_RELAY = frozenset({"login", "call"})
RELAY_TO_CONSOLE = frozenset({"login_ok", "result", "event", "error"})


@dataclass(frozen=True)
class Message:
    """One control message; validates itself on construction."""

    type: str
    body: dict[str, Any] = field(default_factory=dict)
    id: int | None = None

    def __post_init__(self) -> None:
        schema = SCHEMAS.get(self.type)
        if schema is None:
            raise LocalProtocolError(f"unknown message type {self.type!r}")
        problem = _check_body(schema, self.body)
        if problem:
            raise LocalProtocolError(f"bad {self.type} message: {problem}")


def _check_body(schema: dict[str, tuple[tuple[type, ...], bool]], body: Any) -> str | None:
    if not isinstance(body, dict):
        return "body is not an object"
    for name, (types, required) in schema.items():
        if name not in body:
            if required:
                return f"missing field {name!r}"
            continue
        value = body[name]
        # bool is an int in Python; never accept it where a number is meant.
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            return f"field {name!r} has the wrong type"
    return None


def _is_text(value: object) -> bool:
    """Whether every string (and key) in ``value`` is encodable as UTF-8."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


def encode(message: Message) -> str:
    """Serialise ``message`` to its JSON text."""
    return json.dumps(
        {"v": PROTOCOL_VERSION, "type": message.type, "id": message.id, "body": message.body},
        separators=(",", ":"),
    )


def decode(
    data: str | bytes, allowed: frozenset[str], max_size: int = MAX_CONTROL_MESSAGE
) -> Message:
    """Parse and validate one received control message.

    ``allowed`` is the set of types this receiver accepts from this peer. Raises
    :class:`RemoteProtocolError` with a short reason (safe to send to the peer).
    """
    if isinstance(data, bytes):
        raise RemoteProtocolError("control messages must be text frames")
    if len(data) > max_size:
        raise RemoteProtocolError(f"control message over {max_size} bytes")
    try:
        raw = json.loads(data)
    except (ValueError, RecursionError):
        raise RemoteProtocolError("control message is not valid JSON") from None
    if not isinstance(raw, dict):
        raise RemoteProtocolError("control message is not a JSON object")
    if not _is_text(raw):
        # JSON can spell lone surrogates ("\ud800"), which are not text.
        raise RemoteProtocolError("control message holds invalid Unicode")
    version = raw.get("v")
    if version != PROTOCOL_VERSION or isinstance(version, bool):
        raise RemoteProtocolError(f"unsupported protocol version {version!r}")
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in allowed:
        shown = kind if isinstance(kind, str) else type(kind).__name__
        raise RemoteProtocolError(f"unknown message type {shown[:40]!r}")
    msg_id = raw.get("id")
    if msg_id is not None and (not isinstance(msg_id, int) or isinstance(msg_id, bool)):
        raise RemoteProtocolError("message id must be an integer or null")
    body = raw.get("body", {})
    problem = _check_body(SCHEMAS[kind], body)
    if problem:
        raise RemoteProtocolError(f"bad {kind} message: {problem}")
    return Message(kind, body, msg_id)


def error_message(code: str, text: str, msg_id: int | None = None) -> Message:
    """An ``error`` message; ``text`` must already be safe to show the peer."""
    return Message("error", {"code": code, "message": text}, msg_id)
