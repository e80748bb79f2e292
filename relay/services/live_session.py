"""What the relay holds in memory for one open session."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from relay.core import activity
from relay.core.tunnel_tokens import TunnelToken
from relay.model import Session
from relay.services.ports import StateListener, TunnelEnd
from shared.protocol.session_state import State


@dataclass
class LiveSession:
    """What the relay holds in memory for one open session."""

    row: Session
    state: State
    tokens: dict[str, TunnelToken]
    accepted: asyncio.Future[str | None]
    #: The monotonic clock when the row was created at ``row.created_at``: every
    #: later time of the session is this anchor plus monotonic seconds, so a step
    #: of the wall clock never shortens, lengthens or inverts it.
    created_mono: float
    ends: dict[str, TunnelEnd] = field(default_factory=dict)
    paired: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    started_mono: float | None = None
    bytes_to_agent: int = 0
    bytes_to_technician: int = 0
    #: Payload (both ways) per minute since pairing.
    payload: dict[int, activity.Minute] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    on_state: StateListener | None = None
    #: Set when the agent reports that the technician's SSH login succeeded.
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    #: The monotonic clock when that report came (idle time counts from it).
    login_mono: float | None = None
    #: Why a limit ended the session, for the technician (the tunnel's close reason).
    end_detail: str = ""
    #: The agent itself refused the offer (its clock, its limits), not the person.
    declined_by_agent: bool = False

    def wall(self, mono: float) -> datetime:
        """The wall-clock time of monotonic instant ``mono``, by the session's anchor."""
        return self.row.created_at + timedelta(seconds=mono - self.created_mono)

    def traffic_minutes(self, noise: int) -> tuple[int, ...]:
        """The minutes (from pairing) that carried more than ``noise`` payload bytes."""
        return tuple(activity.working(self.payload, noise))

    def last_work(self, noise: int) -> float | None:
        """The monotonic instant of the last payload in a minute above ``noise``."""
        minutes = activity.working(self.payload, noise)
        if self.started_mono is None or not minutes:
            return None
        return self.started_mono + self.payload[minutes[-1]].last

    def quiet(self, noise: int, now_mono: float) -> tuple[int, ...]:
        """Quiet stretches so far, flat (see :func:`relay.core.activity.quiet`)."""
        if self.started_mono is None:
            return ()
        return activity.quiet(self.payload, noise, now_mono - self.started_mono)
