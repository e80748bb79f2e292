"""Console methods of diagnostics snapshots and the help-request queue."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from relay.api.context import ALL, STAFF, Context, Method
from relay.api.grants import require_grant
from relay.api.params import Params, flag, keyset, name, page, row_id
from relay.core import help_requests as hr
from relay.model import HelpRequest
from relay.services.directory import in_scope
from relay.services.help_requests import snapshot_meta
from shared.errors import UnavailableError


async def diag_get(ctx: Context, params: Params) -> Any:
    """The latest (or a fresh, with ``refresh``) snapshot of an agent."""
    services = ctx.services
    agent = await services.directory.agent(ctx.tech, await _diagnostics_of(ctx, params))
    diagnostics = services.diagnostics
    if flag(params, "refresh"):
        if not services.directory.online(agent.id):
            raise UnavailableError(
                f"agent {agent.name!r} is offline; drop --refresh to see the last"
            )
        snap = await diagnostics.of_agent(agent.id, await diagnostics.refresh(agent.id))
    elif (ref := row_id(params, "id")) is not None:
        snap = await diagnostics.of_agent(agent.id, ref)
    else:
        snap = await diagnostics.latest(agent.id, services.directory.online(agent.id))
    return {**snapshot_meta(snap), "agent_name": agent.name, "snapshot": snap.data}


async def diag_list(ctx: Context, params: Params) -> Any:
    """One page of an agent's snapshots (metadata), newest first."""
    agent = await ctx.services.directory.agent(ctx.tech, await _diagnostics_of(ctx, params))
    asked = keyset(params, ("int",))
    found = await ctx.services.diagnostics.history(agent.id, asked)
    return page(found, asked, snapshot_meta, lambda s: (s.id,))


async def diag_pair(ctx: Context, params: Params) -> Any:
    """Two snapshots to compare: ``a`` and ``b`` (ids), default the last two."""
    agent = await ctx.services.directory.agent(ctx.tech, await _diagnostics_of(ctx, params))
    a, b = row_id(params, "a"), row_id(params, "b")
    older, newer = await ctx.services.diagnostics.pair(agent.id, a, b)
    return {
        "a": {**snapshot_meta(older), "snapshot": older.data},
        "b": {**snapshot_meta(newer), "snapshot": newer.data},
    }


async def request_queue(ctx: Context, params: Params) -> Any:
    """One page of the requests not yet resolved: urgent first, then oldest first."""
    asked = in_scope(ctx.tech, keyset(params, ("int", "time", "int")))
    found = await ctx.services.requests.queue(ctx.tech, flag(params, "open_only"), asked)
    return page(found, asked, lambda f: f[1], lambda f: _queue_key(f[0]))


def _queue_key(r: HelpRequest) -> tuple[int, datetime, int]:
    """The queue's sort key: urgent (0) before the rest (1), then oldest first."""
    return (0 if r.urgent else 1, r.created_at, r.id)


async def request_show(ctx: Context, params: Params) -> Any:
    ref = name(params, "request")
    unknown = f"no request {hr.label(hr.parse_number(ref))} that you can see"
    await require_grant(ctx, "help", ref, unknown)
    return await ctx.services.requests.show(ctx.tech, ref)


async def request_take(ctx: Context, params: Params) -> Any:
    return await ctx.services.requests.take(ctx.tech, name(params, "request"))


async def request_close(ctx: Context, params: Params) -> Any:
    requests = ctx.services.requests
    return await requests.close(ctx.tech, name(params, "request"), name(params, "resolution"))


async def _diagnostics_of(ctx: Context, params: Params) -> str:
    """The ``agent`` parameter, once the caller may read diagnostics at all."""
    ref = name(params, "agent")
    await require_grant(ctx, "diagnostics", ref, f"no agent {ref!r} that you can reach")
    return ref


METHODS: dict[str, Method] = {
    "diag.get": Method(diag_get, ALL),
    "diag.list": Method(diag_list, ALL),
    "diag.pair": Method(diag_pair, ALL),
    "request.queue": Method(request_queue, ALL),
    "request.show": Method(request_show, ALL),
    "request.take": Method(request_take, STAFF),
    "request.close": Method(request_close, STAFF),
}
