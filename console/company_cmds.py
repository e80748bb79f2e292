"""``qp company show`` and ``qp company set``: the company's own data, the supplier
on every invoice (stored by the relay; relay.toml's ``[company]`` until first set).
They parse arguments and call the relay; the rules live there."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any

from console.output import show_object
from console.rpc import RelayClient

Handler = Callable[[RelayClient, argparse.Namespace], Awaitable[int]]

#: ``company.set`` parameter → option attribute.
_OPTIONS = {
    "legal_name": "legal_name",
    "address": "address",
    "postcode": "postcode",
    "city": "city",
    "country": "country",
    "kvk": "kvk",
    "vat": "vat",
    "iban": "iban",
    "email": "email",
    "payment_means": "payment_means",
}


def add_parsers(sub: Any) -> None:
    """Register ``company`` on ``qp``'s subparsers."""
    company = sub.add_parser("company", help="the company's own data on invoices")
    actions = company.add_subparsers(dest="action", required=True)
    shown = actions.add_parser("show", help="the company data in force")
    shown.add_argument("--json", action="store_true", help="print JSON")
    put = actions.add_parser("set", help="change the company data (billing or admin)")
    put.add_argument("--json", action="store_true", help="print JSON")
    put.add_argument("--legal-name")
    put.add_argument("--address", action="append", help="street and number (twice: 2 lines)")
    put.add_argument("--postcode", help="e.g. 1015 AA")
    put.add_argument("--city")
    put.add_argument("--country", help="two letters: NL")
    put.add_argument("--kvk", help="Chamber of Commerce number (8 digits)")
    put.add_argument("--vat", help="btw-id, e.g. NL123456782B01")
    put.add_argument("--iban")
    put.add_argument("--email", help="where customers write about invoices")
    put.add_argument("--payment-means", choices=("58", "30"), help="58 SEPA, 30 transfer")


async def company_show(relay: RelayClient, args: argparse.Namespace) -> int:
    show_object(await relay.call("company.show"), args.json)
    return 0


async def company_set(relay: RelayClient, args: argparse.Namespace) -> int:
    params = {
        key: getattr(args, attr)
        for key, attr in _OPTIONS.items()
        if getattr(args, attr) is not None
    }
    show_object(await relay.call("company.set", **params), args.json)
    return 0


HANDLERS: dict[tuple[str, str | None], Handler] = {
    ("company", "show"): company_show,
    ("company", "set"): company_set,
}
