"""One console call: look the method up, check the role, run the handler.

Every refusal of an identified technician is audited here, in one place: a role
that may not call the method, and a reference (agent, session, customer, request,
entry, token, technician) that exists outside the caller's scope. The latter goes
back to the console as the very not-found an unknown reference gets.
"""

from __future__ import annotations

from typing import Any

from relay.api import METHODS
from relay.api.context import Context
from relay.api.params import Params
from relay.core.authorization import require_role
from shared.errors import AuthError, NotFoundError, OutOfScopeError, RemoteProtocolError


async def call(ctx: Context, method: str, params: Params) -> Any:
    """Run ``method`` for ``ctx.tech``: its result, or a :class:`QPError` to show."""
    found = METHODS.get(method)
    if found is None:
        raise RemoteProtocolError(f"unknown method {method[:60]!r}")
    auditor = ctx.services.auditor
    try:
        require_role(ctx.tech, *found.roles)
    except AuthError:
        await auditor.refused("role_refused", ctx.tech.id, method, role=ctx.tech.role)
        raise
    try:
        return await found.handler(ctx, params)
    except OutOfScopeError as exc:
        await auditor.refused(
            "out_of_scope", ctx.tech.id, exc.subject[:64], method=method, what=exc.what
        )
        # A plain not-found from here on: nothing downstream can tell it apart.
        raise NotFoundError(str(exc)) from None
