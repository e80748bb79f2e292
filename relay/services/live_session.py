"""What the relay holds in memory for one open session."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

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
    ends: dict[str, TunnelEnd] = field(default_factory=dict)
    paired: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    started_mono: float | None = None
    bytes_to_agent: int = 0
    bytes_to_technician: int = 0
    minutes: set[int] = field(default_factory=set)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    on_state: StateListener | None = None
    #: Set when the agent reports that the technician's SSH login succeeded.
    ready: asyncio.Event = field(default_factory=asyncio.Event)
