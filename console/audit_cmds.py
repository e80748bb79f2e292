"""``qp audit``: the relay's audit trail (admins), newest first, with filters.

Times show in this machine's local time; ``--since``/``--until`` take a time
(``2026-11-03 14:00``, company time, or with an offset), a day, or an age such as
``2h`` or ``7d`` (that long ago). Refusals of unauthenticated peers come as one row
per source address and reason per window, with a count.
"""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from console import paging
from console.output import show
from console.rpc import RelayClient
from shared.clock import parse_iso
from shared.durations import parse_duration
from shared.errors import UsageError

Handler = Callable[[RelayClient, argparse.Namespace], Awaitable[int]]

MAX_ROWS = 100_000

EXAMPLES = (
    "qp audit",
    "qp audit --since 2h --event out_of_scope",
    "qp audit --actor alice --since '2026-11-03 08:00' --until '2026-11-04' --json",
    "qp audit --actor anonymous --event login_refused --limit 500",
)

COLUMNS = [
    ("time", "Time"),
    ("event", "Event"),
    ("who", "Actor"),
    ("about", "Subject"),
    ("peer", "Peer"),
    ("count", "Count"),
]


def add_parsers(sub: Any) -> None:
    """Register ``audit`` on ``qp``'s subparsers."""
    p = sub.add_parser(
        "audit",
        help="the relay's audit trail (admin)",
        description=textwrap.fill(
            "Show the relay's audit trail, newest first (admins only): refusals and "
            "changes, with who, what about and from where. Times are local; refusals of "
            "unauthenticated peers come as one row per address and reason per window, "
            "with a count.",
            78,
        ),
        epilog="examples:\n" + "\n".join(f"  {e}" for e in EXAMPLES),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--since", help="from: a time, a day, or an age such as 2h or 7d")
    p.add_argument("--until", help="before: a time, a day, or an age")
    p.add_argument("--actor", help="technician or agent name, an id, or anonymous")
    p.add_argument("--event", help="e.g. out_of_scope, role_refused, login_refused")
    p.add_argument("--subject", help="what it was about (an id)")
    p.add_argument("--limit", type=int, default=50, help="at most this many rows (default 50)")
    p.add_argument("--json", action="store_true", help="print JSON")


def when(value: str, now: datetime) -> str:
    """What the relay gets for ``--since``/``--until``: an age becomes the moment
    that long ago (UTC); a time or a day goes as written."""
    if value.strip()[-1:].isalpha() and value.strip()[:-1].strip().isdigit():
        return (now - timedelta(seconds=parse_duration(value))).isoformat()
    return value


def local(at: str | None) -> str:
    """A UTC timestamp in this machine's local time, to the second."""
    moment = parse_iso(at)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    actor, subject = row["actor"], row["subject"]
    who = row["actor_name"] if row["actor_name"] == actor else f"{row['actor_name']} ({actor})"
    about = (
        subject if row["subject_name"] in ("", subject) else f"{row['subject_name']} ({subject})"
    )
    return {**row, "time": local(row["at"]), "who": who, "about": about or "-"}


async def audit(relay: RelayClient, args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= MAX_ROWS:
        raise UsageError(f"--limit must be from 1 to {MAX_ROWS}")
    now = datetime.now(UTC)
    params: dict[str, Any] = {
        key: value
        for key, value in (
            ("since", args.since and when(args.since, now)),
            ("until", args.until and when(args.until, now)),
            ("actor", args.actor),
            ("event", args.event),
            ("subject", args.subject),
        )
        if value
    }
    rows = await paging.collect(relay, "audit.list", args.limit, **params)
    show(rows if args.json else [_shown(r) for r in rows], COLUMNS, args.json, "audit records")
    return 0


HANDLERS: dict[tuple[str, str | None], Handler] = {("audit", None): audit}
