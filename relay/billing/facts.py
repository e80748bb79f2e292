"""The raw facts billing starts from, kept as recorded and never rewritten.

A session is what the relay timed: who, where, for which request, its UTC start
and end, and which minutes (counted from its start) carried traffic. An entry's
context is what the request and technician say about the work. Both round-trip
through JSON so a stored entry can be recomputed from its own record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from relay.billing.spans import Span, epoch, utc
from shared.clock import iso, parse_iso

#: Manual work is billed as a session with this id prefix; it was no relay session.
MANUAL_PREFIX = "manual-"


@dataclass(frozen=True)
class SessionFacts:
    """One relay session. Times are aware; billing uses whole UTC seconds.

    Minute ``i`` of a session runs from ``started_at + i min`` to one minute later
    or the session's end; ``traffic_minutes`` holds the indices that carried bytes.
    Indices past the session's last minute are ignored.

    ``quiet`` holds, to the second, the stretches of at least a minute without
    payload (``(from, to)`` seconds from the start). Sessions recorded before the
    relay kept them have ``None`` and are judged by their traffic minutes.
    """

    session_id: str
    customer_id: str
    technician_id: str
    agent_id: str
    request: str | None
    started_at: datetime
    ended_at: datetime
    traffic_minutes: frozenset[int] = frozenset()
    quiet: tuple[tuple[int, int], ...] | None = None

    def __post_init__(self) -> None:
        if self.started_at.tzinfo is None or self.ended_at.tzinfo is None:
            raise ValueError(f"session {self.session_id}: times must be timezone-aware")
        if self.ended_at < self.started_at:
            raise ValueError(f"session {self.session_id} ends before it starts")
        if any(i < 0 for i in self.traffic_minutes):
            raise ValueError(f"session {self.session_id}: negative minute index")

    @property
    def span(self) -> Span:
        return Span(epoch(self.started_at), epoch(self.ended_at))

    @property
    def minute_count(self) -> int:
        """Minutes the session touches, the last one possibly partial."""
        return -(-self.span.seconds // 60)

    @property
    def merge_key(self) -> tuple[str, str, str, str]:
        """Sessions sharing this key may be reconnects of one piece of work."""
        return (self.customer_id, self.technician_id, self.agent_id, self.request or "")


def manual_session(
    key: str,
    customer_id: str,
    technician_id: str,
    agent_id: str,
    request: str | None,
    started_at: datetime,
    ended_at: datetime,
) -> SessionFacts:
    """Manual work as session facts (id ``manual-<key>``): never idle, so every
    minute carries traffic."""
    seconds = int((ended_at - started_at).total_seconds())
    return SessionFacts(
        session_id=f"{MANUAL_PREFIX}{key}",
        customer_id=customer_id,
        technician_id=technician_id,
        agent_id=agent_id,
        request=request,
        started_at=started_at,
        ended_at=ended_at,
        traffic_minutes=frozenset(range(-(-seconds // 60))),
    )


@dataclass(frozen=True)
class EntryContext:
    """What the work was: from the request and the technician, not from the relay."""

    technician_level: int
    service_type: str = "remote_support"
    complexity: str = "standard"
    urgent: bool = False


def quiet_pairs(flat: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """``(from, to)`` pairs of a flat ``[from, to, from, to, …]`` record."""
    return tuple((flat[i], flat[i + 1]) for i in range(0, len(flat) - 1, 2))


def _ranges(indices: frozenset[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for i in sorted(indices):
        if out and out[-1][1] == i - 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return out


def facts_to_json(sessions: Sequence[SessionFacts], context: EntryContext) -> dict[str, Any]:
    """JSON-able raw facts; traffic minutes as inclusive ``[first, last]`` ranges."""
    return {
        "context": {
            "technician_level": context.technician_level,
            "service_type": context.service_type,
            "complexity": context.complexity,
            "urgent": context.urgent,
        },
        "sessions": [
            {
                "session_id": s.session_id,
                "customer_id": s.customer_id,
                "technician_id": s.technician_id,
                "agent_id": s.agent_id,
                "request": s.request,
                "started_at": iso(utc(s.span.start)),
                "ended_at": iso(utc(s.span.end)),
                "traffic_minutes": _ranges(s.traffic_minutes),
                **({} if s.quiet is None else {"quiet": [list(q) for q in s.quiet]}),
            }
            for s in sessions
        ],
    }


def _when(text: str) -> datetime:
    when = parse_iso(text)
    if when is None:
        raise ValueError("a session time is missing")
    return when


def facts_from_json(data: dict[str, Any]) -> tuple[tuple[SessionFacts, ...], EntryContext]:
    """Inverse of :func:`facts_to_json`."""
    ctx = data["context"]
    context = EntryContext(
        technician_level=int(ctx["technician_level"]),
        service_type=str(ctx["service_type"]),
        complexity=str(ctx["complexity"]),
        urgent=bool(ctx["urgent"]),
    )
    sessions = []
    for s in data["sessions"]:
        started, ended = _when(s["started_at"]), _when(s["ended_at"])
        minutes = frozenset(i for lo, hi in s["traffic_minutes"] for i in range(lo, hi + 1))
        sessions.append(
            SessionFacts(
                session_id=s["session_id"],
                customer_id=s["customer_id"],
                technician_id=s["technician_id"],
                agent_id=s["agent_id"],
                request=s["request"],
                started_at=started,
                ended_at=ended,
                traffic_minutes=minutes,
                quiet=None if "quiet" not in s else tuple((a, b) for a, b in s["quiet"]),
            )
        )
    return tuple(sessions), context
