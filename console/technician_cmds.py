"""``qp technician …`` (admin): add, list, disable, enable, rotate-token, set-level,
set-customers, grant, revoke-grant; and ``qp logout``. They parse arguments and
call the relay; the rules live there."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any

from console import paging
from console.output import safe, say, show_object
from console.profile import Profile
from console.rpc import RelayClient

Handler = Callable[[RelayClient, argparse.Namespace], Awaitable[int]]

GRANTS = ("recordings", "diagnostics", "help")
COLUMNS = [
    ("id", "ID"),
    ("name", "Name"),
    ("role", "Role"),
    ("level", "Level"),
    ("customers", "Customers"),
    ("disabled", "Disabled"),
    ("token_expires_at", "Token expires"),
    ("grants", "Grants"),
]


def add_parsers(sub: Any) -> None:
    """Register ``technician`` and ``logout`` on ``qp``'s subparsers."""
    sub.add_parser("logout", help="forget the relay token stored in your profile")
    tech = sub.add_parser("technician", help="technicians (admin)")
    actions = tech.add_subparsers(dest="action", required=True)

    def action(name: str, help_text: str, who: str = "name") -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = actions.add_parser(name, help=help_text)
        if who == "name":
            parser.add_argument("name", help="technician name or id")
        parser.add_argument("--json", action="store_true", help="print JSON")
        return parser

    add = action("add", "add a technician and print their token")
    add.add_argument("--level", type=int, choices=(1, 2, 3), default=1)
    add.add_argument("--role", choices=("technician", "billing", "admin"), default="technician")
    add.add_argument("--customer", action="append", default=[], help="may serve (repeat)")
    paging.add_flags(action("list", "list technicians", who=""))
    action("disable", "refuse their logins and end their sessions")
    action("enable", "let a disabled technician log in again")
    rotate = action("rotate-token", "a new token for them (yours without NAME)", who="")
    rotate.add_argument("name", nargs="?", help="technician name or id (default: you)")
    level = action("set-level", "change their expertise level")
    level.add_argument("level", type=int, choices=(1, 2, 3))
    scope = action("set-customers", "replace the customers they may serve")
    scope.add_argument("customers", nargs="*", metavar="CUSTOMER")
    for name, text in (
        ("grant", "let a billing login read recordings, diagnostics or help texts"),
        ("revoke-grant", "take a grant back"),
    ):
        action(name, text).add_argument("grant", choices=GRANTS)


def logout() -> int:
    """Remove the stored token; the profile held nothing else worth keeping."""
    path = Profile.path()
    if not Profile.remove():
        say(f"not logged in (no {path}); nothing to do")
        return 0
    say(f"logged out: removed {path}; run qp login URL --token TOKEN to log in again")
    return 0


async def technician_add(relay: RelayClient, args: argparse.Namespace) -> int:
    value: dict[str, Any] = await relay.call(
        "technician.add", name=args.name, level=args.level, role=args.role, customers=args.customer
    )
    show_object(value, args.json)
    if not args.json:
        say("give the token to the technician; it is not shown again", err=True)
    return 0


async def technician_list(relay: RelayClient, args: argparse.Namespace) -> int:
    return await paging.show_list(relay, args, "technician.list", COLUMNS, "technicians")


async def technician_disable(relay: RelayClient, args: argparse.Namespace) -> int:
    value = await relay.call("technician.disable", name=args.name)
    if args.json:
        show_object(value, True)
    else:
        say(
            f"{safe(value['name'])} is disabled: their logins are refused; "
            f"{value['sessions_ended']} running session(s) ended"
        )
    return 0


async def technician_enable(relay: RelayClient, args: argparse.Namespace) -> int:
    value = await relay.call("technician.enable", name=args.name)
    if args.json:
        show_object(value, True)
    else:
        say(f"{safe(value['name'])} is enabled and may log in again")
    return 0


async def technician_rotate(relay: RelayClient, args: argparse.Namespace) -> int:
    value: dict[str, Any] = await relay.call(
        "technician.rotate_token", name=args.name or relay.technician
    )
    if value.get("yours"):
        # The old token stopped working: keep this console logged in with the new one.
        old = relay.profile
        Profile(old.url, value["token"], old.ca_file).save()
    if args.json:
        show_object(value, True)
        return 0
    say(f"new token for {safe(value['name'])}: {value['token']}")
    say(f"it expires {value['token_expires_at']}; the old token no longer works")
    if value.get("yours"):
        say(f"your profile ({Profile.path()}) now holds the new token", err=True)
    else:
        say("give the token to the technician; it is not shown again", err=True)
    return 0


async def technician_set_level(relay: RelayClient, args: argparse.Namespace) -> int:
    value = await relay.call("technician.set_level", name=args.name, level=args.level)
    show_object(value, args.json)
    return 0


async def technician_set_customers(relay: RelayClient, args: argparse.Namespace) -> int:
    value = await relay.call("technician.set_customers", name=args.name, customers=args.customers)
    show_object(value, args.json)
    return 0


async def technician_grant(relay: RelayClient, args: argparse.Namespace) -> int:
    method = "technician.grant" if args.action == "grant" else "technician.revoke_grant"
    show_object(await relay.call(method, name=args.name, grant=args.grant), args.json)
    return 0


HANDLERS: dict[tuple[str, str | None], Handler] = {
    ("technician", "add"): technician_add,
    ("technician", "list"): technician_list,
    ("technician", "disable"): technician_disable,
    ("technician", "enable"): technician_enable,
    ("technician", "rotate-token"): technician_rotate,
    ("technician", "set-level"): technician_set_level,
    ("technician", "set-customers"): technician_set_customers,
    ("technician", "grant"): technician_grant,
    ("technician", "revoke-grant"): technician_grant,
}
