"""The one line a technician sees when the relay ends a session.

The relay closes both tunnel ends with a WebSocket close reason of the form
``"<end reason>"`` or ``"<end reason>: <detail>"`` (e.g. ``"idle_timeout: idle for
30 minutes"``); the console turns it into ``session ses-… ended: idle for 30
minutes (idle_timeout)``. A close reason is at most 123 bytes, so details stay short.
"""

from __future__ import annotations

#: Close reasons longer than this are cut (the WebSocket limit is 123 bytes).
MAX_CLOSE_REASON = 120

#: What an end reason means, when the relay sends no detail.
MEANINGS: dict[str, str] = {
    "completed": "the connection closed",
    "client_ended": "the client ended it",
    "technician_ended": "a technician ended it",
    "agent_offline": "the agent went offline",
    "relay_shutdown": "the relay is shutting down",
    "idle_timeout": "idle too long",
    "max_duration": "it reached the maximum session length",
    "login_timeout": "no SSH login in time",
}


def close_reason(reason: str, detail: str = "") -> str:
    """The WebSocket close reason for a session that ended with ``reason``."""
    text = f"{reason}: {detail}" if detail else reason
    return text.encode()[:MAX_CLOSE_REASON].decode(errors="ignore")


def _printable(text: str) -> str:
    # Relay-supplied text reaches the terminal: no escape or control characters.
    return "".join(ch for ch in text if ch.isprintable())[:MAX_CLOSE_REASON]


def describe(close: str, session_id: str = "") -> str | None:
    """``session [<id>] ended: <what> (<reason>)`` for a tunnel close reason from
    the relay, or None when it carries no end reason."""
    close = _printable(close).strip()
    if not close:
        return None
    reason, _, detail = close.partition(":")
    reason, detail = reason.strip(), detail.strip()
    if not reason.replace("_", "").isalnum():
        return None
    what = detail or MEANINGS.get(reason, "")
    session = f"session {_printable(session_id)}" if session_id else "session"
    return f"{session} ended: {what} ({reason})" if what else f"{session} ended ({reason})"
