"""``audit.list``: the relay's audit trail for admins, newest first, in pages.

Refusals of unauthenticated peers are rows with a ``count`` (one per source address
and reason per window, see :mod:`relay.services.audit`); the open window is written
before the first page is read, so the trail is complete up to now.
"""

from __future__ import annotations

from typing import Any

from relay.api.context import ADMIN, Context, Method
from relay.api.params import Params, keyset, moment, page, text
from relay.model import AuditRecord
from relay.services.audit import ANONYMOUS
from relay.services.names import Names
from shared.clock import iso


def _who(names: Names, ref: str) -> str:
    """The name behind an actor or subject id, or the id itself."""
    if ref.startswith("tec-"):
        return names.technician(ref)
    if ref.startswith("agt-"):
        return names.agent(ref)
    if ref.startswith("cus-"):
        return names.customer(ref)
    return ref


def _actor_id(names: Names, given: str) -> str:
    """``--actor`` as people write it: a technician's or agent's name, or an id."""
    for table in (names.technicians, names.agents):
        for ref, shown in table.items():
            if shown == given:
                return ref
    return given


def audit_row(r: AuditRecord, names: Names) -> dict[str, Any]:
    """One record as ``qp audit`` shows it."""
    count = r.detail.get("count", 1)
    return {
        "id": r.id,
        "at": iso(r.at),
        "event": r.event,
        "actor": r.actor,
        "actor_name": ANONYMOUS if r.actor == ANONYMOUS else _who(names, r.actor),
        "subject": r.subject,
        "subject_name": _who(names, r.subject) if r.subject else "",
        "peer": r.detail.get("peer"),
        "count": count if isinstance(count, int) else 1,
        "detail": r.detail,
    }


async def audit_list(ctx: Context, params: Params) -> Any:
    """Audit records, newest first; ``since``/``until`` are company-local times or
    carry an offset, the other filters match exactly."""
    services = ctx.services
    asked = keyset(params, ("int",))
    names = await services.directory.names()
    tz = services.entries.zone
    since, until = text(params, "since"), text(params, "until")
    actor = text(params, "actor", limit=120)
    found = await services.auditor.trail(
        asked.limit,
        None if asked.after is None else int(asked.after[0]),
        since=moment(since, "since", tz) if since else None,
        until=moment(until, "until", tz) if until else None,
        actor=_actor_id(names, actor) if actor else None,
        event=text(params, "event", limit=120),
        subject=text(params, "subject", limit=120),
    )
    return page(found, asked, lambda r: audit_row(r, names), lambda r: (r.id,))


METHODS: dict[str, Method] = {
    "audit.list": Method(audit_list, ADMIN),
}
