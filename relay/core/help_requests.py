"""Help requests' lifecycle (pure): who may move a request where.

``open → assigned → in_progress → resolved``; the client may cancel any request
that is not yet resolved. Every move is audited by the caller.
"""

from __future__ import annotations

from shared.errors import ConflictError, UsageError

STATES = ("open", "assigned", "in_progress", "resolved", "cancelled")
ACTIVE = ("open", "assigned", "in_progress")

#: action -> states it may start from -> the state it leads to
MOVES: dict[str, tuple[tuple[str, ...], str]] = {
    "take": (("open", "assigned"), "assigned"),
    "start": (("open", "assigned"), "in_progress"),
    "resolve": (("open", "assigned", "in_progress"), "resolved"),
    "cancel": (("open", "assigned", "in_progress"), "cancelled"),
}
MAX_TEXT = 2000


def next_state(action: str, current: str) -> str:
    """The state ``action`` leads to from ``current``; ConflictError if it cannot."""
    sources, target = MOVES[action]
    if current not in sources:
        raise ConflictError(f"the request is {current.replace('_', ' ')}; cannot {action} it")
    return target


def parse_number(text: str) -> int:
    """``12``, ``#12`` and ``REQ-12`` all mean request 12."""
    cleaned = text.strip().upper().removeprefix("REQ-").removeprefix("#")
    if not cleaned.isdigit() or not 0 < int(cleaned) < 2**63:
        raise UsageError(f"{text!r} is not a request number (e.g. REQ-12)")
    return int(cleaned)


#: How people write a request's number; ``{number}`` is filled in.
LABEL = "REQ-{number}"


def label(number: int) -> str:
    """``REQ-12`` for request 12."""
    return LABEL.format(number=number)


def clean_text(text: str) -> str:
    """The client's description: printable, bounded."""
    printable = "".join(ch if ch.isprintable() or ch == "\n" else " " for ch in text)
    return printable.strip()[:MAX_TEXT]
