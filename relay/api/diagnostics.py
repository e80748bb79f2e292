"""Console methods of diagnostics snapshots and the help-request queue."""

from __future__ import annotations

from typing import Any

from relay.api.context import ALL, STAFF, Context, Method
from relay.api.params import Params, flag, name, row_id, whole
from relay.services.help_requests import snapshot_meta
from shared.errors import UnavailableError


async def diag_get(ctx: Context, params: Params) -> Any:
    """The latest (or a fresh, with ``refresh``) snapshot of an agent."""
    services = ctx.services
    agent = await services.directory.agent(ctx.tech, name(params, "agent"))
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
    agent = await ctx.services.directory.agent(ctx.tech, name(params, "agent"))
    limit = whole(params, "limit", 50, 1, 1000)
    return [snapshot_meta(s) for s in await ctx.services.diagnostics.history(agent.id, limit)]


async def diag_pair(ctx: Context, params: Params) -> Any:
    """Two snapshots to compare: ``a`` and ``b`` (ids), default the last two."""
    agent = await ctx.services.directory.agent(ctx.tech, name(params, "agent"))
    a, b = row_id(params, "a"), row_id(params, "b")
    older, newer = await ctx.services.diagnostics.pair(agent.id, a, b)
    return {
        "a": {**snapshot_meta(older), "snapshot": older.data},
        "b": {**snapshot_meta(newer), "snapshot": newer.data},
    }


async def request_queue(ctx: Context, params: Params) -> Any:
    """Requests not yet resolved: urgent first, then oldest first."""
    return await ctx.services.requests.queue(ctx.tech, flag(params, "open_only"))


async def request_show(ctx: Context, params: Params) -> Any:
    return await ctx.services.requests.show(ctx.tech, name(params, "request"))


async def request_take(ctx: Context, params: Params) -> Any:
    return await ctx.services.requests.take(ctx.tech, name(params, "request"))


async def request_close(ctx: Context, params: Params) -> Any:
    requests = ctx.services.requests
    return await requests.close(ctx.tech, name(params, "request"), name(params, "resolution"))


METHODS: dict[str, Method] = {
    "diag.get": Method(diag_get, ALL),
    "diag.list": Method(diag_list, ALL),
    "diag.pair": Method(diag_pair, ALL),
    "request.queue": Method(request_queue, ALL),
    "request.show": Method(request_show, ALL),
    "request.take": Method(request_take, STAFF),
    "request.close": Method(request_close, STAFF),
}
