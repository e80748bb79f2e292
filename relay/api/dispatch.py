"""One console call: look the method up, check the role, run the handler."""

from __future__ import annotations

from typing import Any

from relay.api import METHODS
from relay.api.context import Context
from relay.api.params import Params
from relay.core.authorization import require_role
from shared.errors import RemoteProtocolError


async def call(ctx: Context, method: str, params: Params) -> Any:
    """Run ``method`` for ``ctx.tech``: its result, or a :class:`QPError` to show."""
    found = METHODS.get(method)
    if found is None:
        raise RemoteProtocolError(f"unknown method {method[:60]!r}")
    require_role(ctx.tech, *found.roles)
    return await found.handler(ctx, params)
