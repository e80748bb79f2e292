"""What a billing login may read: session metadata, time and invoices, and content
(recordings, diagnostics, help-request text) only where an admin granted it."""

from __future__ import annotations

from relay.api.context import Context
from relay.core.authorization import may_read
from shared.errors import NotFoundError


async def require_grant(ctx: Context, grant: str, subject: str, unknown: str) -> None:
    """Refuse a caller without ``grant`` exactly as if ``subject`` did not exist
    (``unknown`` is the not-found line the method gives for a missing one); the
    refusal is audited with the grant it lacked."""
    if may_read(ctx.tech, grant):
        return
    await ctx.services.auditor.refused("grant_refused", ctx.tech.id, subject[:64], grant=grant)
    raise NotFoundError(unknown)
