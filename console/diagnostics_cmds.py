"""``qp diag``, ``qp queue``, ``qp take``, ``qp request``: what is wrong, and who asked."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from console import paging
from console.output import print_json, safe, say, show_object

if TYPE_CHECKING:
    from console.rpc import RelayClient

QUEUE_COLUMNS = [
    ("label", "Request"),
    ("urgency", "Urgent"),
    ("state", "State"),
    ("customer", "Customer"),
    ("agent_name", "Agent"),
    ("age", "Asked"),
    ("assigned_to", "Assigned to"),
    ("text", "What is wrong"),
    ("top_finding", "Top finding"),
]


def add_parsers(sub: Any) -> None:
    """Register the commands on the ``qp`` parser's subparsers."""
    dg = sub.add_parser("diag", help="diagnostics of an agent (findings first)")
    dg.add_argument("agent")
    dg.add_argument("--refresh", action="store_true", help="take a fresh snapshot now")
    dg.add_argument("--diff", nargs="*", metavar="ID", help="compare snapshots (default: last two)")
    dg.add_argument("--list", action="store_true", help="list the kept snapshots")
    dg.add_argument("--json", action="store_true")
    paging.add_flags(dg, default=50)  # for --list
    qu = sub.add_parser("queue", help="open help requests, urgent and oldest first")
    qu.add_argument("--json", action="store_true")
    paging.add_flags(qu)
    tk = sub.add_parser("take", help="assign a help request to yourself")
    tk.add_argument("request")
    tk.add_argument("--json", action="store_true")
    rq = sub.add_parser("request", help="one help request").add_subparsers(
        dest="action", required=True
    )
    rs = rq.add_parser("show", help="a request with its findings, snapshots and sessions")
    rs.add_argument("request")
    rs.add_argument("--json", action="store_true")
    rc = rq.add_parser("close", help="mark a request resolved")
    rc.add_argument("request")
    rc.add_argument("--resolution", required=True)
    rc.add_argument("--json", action="store_true")


async def diag(relay: RelayClient, args: argparse.Namespace) -> int:
    # Imported here: rendering is heavy and `qp exec` should not pay for it.
    from rich.console import Console
    from rich.text import Text

    from shared.diagnostics import from_json
    from shared.diagnostics_diff import diff
    from shared.diagnostics_view import render_diff, render_snapshot

    console = Console()
    if args.list:
        cols = [
            ("id", "ID"),
            ("taken_at", "Taken"),
            ("kind", "Kind"),
            ("worst", "Worst"),
            ("session_id", "Session"),
            ("request", "Request"),
        ]
        return await paging.show_list(relay, args, "diag.list", cols, "snapshots", agent=args.agent)
    if args.diff is not None:
        ids = [int(x) for x in args.diff[:2] if x.isdigit()]
        params: dict[str, Any] = {"agent": args.agent}
        if ids:
            params["a"] = ids[0]
        if len(ids) > 1:
            params["b"] = ids[1]
        pair = await relay.call("diag.pair", **params)
        older, newer = from_json(pair["a"]["snapshot"]), from_json(pair["b"]["snapshot"])
        changes = diff(older, newer)
        if args.json:
            print_json({"a": pair["a"]["id"], "b": pair["b"]["id"], "changes": _jsonable(changes)})
        else:
            console.print(
                Text(
                    safe(
                        f"snapshot {pair['a']['id']} ({pair['a']['taken_at']}) → "
                        f"{pair['b']['id']} ({pair['b']['taken_at']})"
                    )
                ),
                highlight=False,
            )
            render_diff(console, changes)
        return 0
    value = await relay.call("diag.get", agent=args.agent, refresh=bool(args.refresh))
    if args.json:
        print_json(value)
        return 0
    console.print(
        Text(
            safe(
                f"{value['agent_name']} — snapshot {value['id']} "
                f"taken {value['taken_at']} ({value['kind']})"
            )
        ),
        highlight=False,
    )
    render_snapshot(console, from_json(value["snapshot"]))
    return 0


def _jsonable(value: Any) -> Any:
    import dataclasses
    from datetime import datetime

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _queue_row(r: dict[str, Any]) -> dict[str, Any]:
    top = r["findings"][0] if r["findings"] else None
    return {
        **r,
        "urgency": "URGENT" if r["urgent"] else "",
        "age": r["created_at"],
        "top_finding": f"{top['severity']}: {top['title']}" if top else "",
    }


async def queue(relay: RelayClient, args: argparse.Namespace) -> int:
    return await paging.show_list(
        relay, args, "request.queue", QUEUE_COLUMNS, "help requests", _queue_row
    )


async def take(relay: RelayClient, args: argparse.Namespace) -> int:
    show_object(await relay.call("request.take", request=args.request), args.json)
    return 0


async def request_show(relay: RelayClient, args: argparse.Namespace) -> int:
    value = await relay.call("request.show", request=args.request)
    if args.json:
        print_json(value)
        return 0
    flat = {k: v for k, v in value.items() if k not in ("findings", "snapshots", "sessions")}
    show_object(flat, False)
    for f in value["findings"]:
        say(f"  {safe(f['severity'])}: {safe(f['title'])}")
    say("snapshots: " + (", ".join(f"{s['id']} ({s['kind']})" for s in value["snapshots"]) or "-"))
    say("sessions:  " + (", ".join(value["sessions"]) or "-"))
    return 0


async def request_close(relay: RelayClient, args: argparse.Namespace) -> int:
    value = await relay.call("request.close", request=args.request, resolution=args.resolution)
    show_object(value, args.json)
    return 0


HANDLERS = {
    ("diag", None): diag,
    ("queue", None): queue,
    ("take", None): take,
    ("request", "show"): request_show,
    ("request", "close"): request_close,
}
