"""What a console method handler gets: the services, the calling technician, and a
way to send events to that console while the call runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from relay.api.params import Params
from relay.model import Technician
from relay.services.container import Services

#: Sends an ``event`` message to the calling console (e.g. "awaiting consent").
Emit = Callable[[dict[str, Any]], Awaitable[None]]

ALL = ("admin", "billing", "technician")
STAFF = ("admin", "technician")
OFFICE = ("admin", "billing")
ADMIN = ("admin",)


@dataclass(frozen=True)
class Context:
    services: Services
    tech: Technician
    emit: Emit | None = None


Handler = Callable[[Context, Params], Awaitable[Any]]


@dataclass(frozen=True)
class Method:
    """One console method: its handler and the roles that may call it."""

    handler: Handler
    roles: tuple[str, ...]
