"""``qp rates``, ``qp time``, ``qp prepaid``, ``qp customer billing``, ``qp invoice``:
the office's billing commands. They parse arguments and call the relay; the rules
live there."""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from console import paging
from console.output import print_json, say, show, show_object
from console.rpc import RelayClient
from shared.errors import UsageError

Handler = Callable[[RelayClient, argparse.Namespace], Awaitable[int]]

SERVICES = ("remote_support", "project", "on_call", "phone", "on_site")
COMPLEXITIES = ("standard", "complex", "specialist")
STATUSES = ("draft", "approved", "invoiced")
MAX_CARD_BYTES = 48 * 1024
TIME_COLUMNS = [
    ("id", "ID"),
    ("customer", "Customer"),
    ("technician", "Technician"),
    ("service_type", "Service"),
    ("request", "Request"),
    ("started_at", "Started"),
    ("actual", "Actual"),
    ("billable_minutes", "Billable min"),
    ("hourly_rate", "Rate"),
    ("amount", "Amount"),
    ("status", "Status"),
]
INVOICE_COLUMNS = [
    ("number", "Number"),
    ("kind", "Kind"),
    ("customer", "Customer"),
    ("issue_date", "Issued"),
    ("period", "Period"),
    ("lines", "Lines"),
    ("total_excl_vat", "Excl. VAT"),
    ("vat", "VAT"),
    ("total_incl_vat", "Incl. VAT"),
    ("credits", "Credits"),
    ("credited_by", "Credited by"),
]
LINE_COLUMNS = [
    ("date", "Date"),
    ("technician", "Technician"),
    ("request", "Request"),
    ("actual_minutes", "Actual min"),
    ("billable_minutes", "Billable min"),
    ("prepaid_minutes", "Prepaid min"),
    ("rate", "Rate/h"),
    ("surcharges", "Surcharges"),
    ("amount", "Amount"),
]


def _json(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--json", action="store_true", help="print JSON")
    return parser


def add_parsers(sub: Any) -> None:
    """Register ``rates``, ``time``, ``prepaid`` and ``invoice`` on ``qp``'s subparsers."""
    rates = sub.add_parser("rates", help="rate cards").add_subparsers(dest="action", required=True)
    r_imp = _json(rates.add_parser("import", help="import a rate card (TOML)"))
    r_imp.add_argument("file", type=Path)
    r_exp = rates.add_parser("export", help="print the rate card in force as TOML")
    r_exp.add_argument("--digest", help="a specific card (see qp rates show)")
    r_exp.add_argument("-o", "--output", type=Path, help="write to this file")
    _json(rates.add_parser("show", help="imported cards and the rates in force"))
    r_tpl = rates.add_parser(
        "template", help="print a sample rate card to start from (no relay needed)"
    )
    r_tpl.add_argument("-o", "--output", type=Path, help="write to this file")

    time = _json(sub.add_parser("time", help="time entries (list; show, edit, add, approve)"))
    time.add_argument("--customer", dest="f_customer", metavar="NAME", help="only this customer")
    time.add_argument("--technician", dest="f_technician", metavar="NAME", help="only this one")
    time.add_argument("--status", dest="f_status", choices=STATUSES, help="only this status")
    time.add_argument("--from", dest="f_from", metavar="DATE", help="started on or after")
    time.add_argument("--to", dest="f_to", metavar="DATE", help="started on or before")
    paging.add_flags(time)
    tsub = time.add_subparsers(dest="action", required=False, metavar="[ACTION]")
    t_show = _json(tsub.add_parser("show", help="an entry, every figure explained"))
    t_show.add_argument("id")
    t_edit = _json(tsub.add_parser("edit", help="change an entry; recomputed, history kept"))
    t_edit.add_argument("id")
    t_edit.add_argument("--complexity", choices=COMPLEXITIES)
    t_edit.add_argument("--service", choices=SERVICES)
    t_edit.add_argument("--notes")
    t_edit.add_argument("--request", help="help request or ticket ('' to clear)")
    t_edit.add_argument("--urgent", choices=("yes", "no"))
    t_edit.add_argument("--reason", required=True, help="why (kept in the history)")
    t_add = _json(tsub.add_parser("add", help="record manual work (phone, on site, project…)"))
    t_add.add_argument("--customer", required=True)
    t_add.add_argument("--service", choices=SERVICES, help="required unless --attach")
    t_add.add_argument(
        "--start", help="e.g. '2026-11-03 14:00' (company time) or '2026-10-25 02:30+01:00'"
    )
    t_add.add_argument("--end", help="e.g. '2026-11-03 14:45'")
    t_add.add_argument("--minutes", type=int, help="length (ending now without --start)")
    t_add.add_argument("--complexity", choices=COMPLEXITIES)
    t_add.add_argument("--urgent", action="store_true")
    t_add.add_argument("--request", help="help request or ticket")
    t_add.add_argument("--notes")
    t_add.add_argument("--technician", help="whose work (billing and admin only)")
    t_add.add_argument(
        "--attach", metavar="ENTRY", help="add the work to this session entry it overlaps"
    )
    t_app = _json(tsub.add_parser("approve", help="approve draft entries"))
    t_app.add_argument("ids", nargs="+", metavar="ID")

    pre = sub.add_parser("prepaid", help="prepaid hours").add_subparsers(
        dest="action", required=True
    )
    p_add = _json(pre.add_parser("add", help="add a block of prepaid hours"))
    p_add.add_argument("customer")
    p_add.add_argument("--hours", required=True, help="e.g. 10 or 2.5")
    p_add.add_argument(
        "--from", dest="valid_from", metavar="DATE", help="first day of work it pays for (today)"
    )
    p_add.add_argument("--expires", metavar="DATE", help="last day of work it pays for")
    p_add.add_argument("--note")
    _json(pre.add_parser("list", help="a customer's blocks and balances")).add_argument("customer")
    p_terms = _json(
        pre.add_parser("terms", help="what a customer's prepaid hours pay, when to warn")
    )
    p_terms.add_argument("customer")
    p_terms.add_argument(
        "--pays",
        choices=("base", "all", "default"),
        help="base: surcharges invoiced; all: surcharges drawn too; default: relay.toml's",
    )
    p_terms.add_argument(
        "--warn-below", metavar="HOURS", help="warn below this balance (0: never; or default)"
    )

    inv = sub.add_parser("invoice", help="invoices").add_subparsers(dest="action", required=True)
    i_new = _json(inv.add_parser("create", help="invoice a month of approved work"))
    i_new.add_argument("--customer", required=True)
    i_new.add_argument("--period", required=True, metavar="YYYY-MM")
    i_new.add_argument("--dry-run", action="store_true", help="show it, write nothing")
    i_new.add_argument("--reference", help="the customer's reference (PO number)")
    i_list = _json(inv.add_parser("list", help="invoices and credit notes"))
    i_list.add_argument("--customer")
    paging.add_flags(i_list)
    i_cred = _json(inv.add_parser("credit", help="credit note cancelling an invoice"))
    i_cred.add_argument("id", help="invoice number or id")
    i_cred.add_argument("--reason", default="")
    i_exp = inv.add_parser("export", help="an invoice as CSV, JSON, UBL, HTML or PDF")
    i_exp.add_argument("id", help="invoice number or id")
    i_exp.add_argument("--format", required=True, choices=("csv", "json", "ubl", "html", "pdf"))
    i_exp.add_argument("--profile", choices=("nlcius", "peppol"), default="nlcius")
    i_exp.add_argument(
        "--dialect",
        choices=("rfc4180", "nl"),
        help="CSV only: nl = semicolons, decimal commas and a BOM, for a Dutch Excel",
    )
    i_exp.add_argument("-o", "--output", type=Path, help="write to this file")


def add_customer_parser(customer: Any) -> None:
    """``qp customer billing``, on the ``customer`` command's subparsers."""
    bil = _json(customer.add_parser("billing", help="show or set a customer's billing data"))
    bil.add_argument("customer")
    bil.add_argument("--legal-name")
    bil.add_argument("--address", action="append", help="street and number (twice: 2 lines)")
    bil.add_argument("--postcode")
    bil.add_argument("--city")
    bil.add_argument("--country", help="two letters, e.g. NL")
    bil.add_argument("--kvk", help="Chamber of Commerce number")
    bil.add_argument("--vat", help="EU VAT id, e.g. BE0431701765 (none outside the EU)")
    bil.add_argument("--email")
    bil.add_argument("--terms", type=int, help="payment terms in days")
    bil.add_argument(
        "--reverse-charge",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="EU business customer: 0 %% VAT, 'btw verlegd' (required with an EU VAT id)",
    )
    bil.add_argument(
        "--no-reverse-charge-reason",
        metavar="TEXT",
        help="why an EU business with a VAT id pays Dutch VAT instead (audited)",
    )
    bil.add_argument("--endpoint", help="e-invoicing id when there is no KvK number")
    bil.add_argument("--endpoint-scheme", help="its scheme, e.g. 0208")
    bil.add_argument("--reference", help="buyer reference on invoices")


# -- helpers ---------------------------------------------------------------------------


def _given(args: argparse.Namespace, **names: str) -> dict[str, Any]:
    """The parameters whose options were given (``name=attribute``)."""
    return {
        key: getattr(args, attr) for key, attr in names.items() if getattr(args, attr) is not None
    }


def _duration(seconds: int) -> str:
    return f"{seconds // 60}:{seconds % 60:02d}"


def _print_lines(text: str) -> None:
    for line in text.splitlines():
        say(line)


def _write(data: bytes, output: Path | None) -> None:
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        output.write_bytes(data)
        say(f"wrote {output} ({len(data)} bytes)", err=True)


# -- rates -------------------------------------------------------------------------------


async def rates_import(relay: RelayClient, args: argparse.Namespace) -> int:
    path: Path = args.file
    data = path.read_bytes()
    if len(data) > MAX_CARD_BYTES:
        raise UsageError(f"{path} is {len(data)} bytes; a rate card may hold up to 48 KB")
    try:
        body = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text") from None
    if len(json.dumps(body)) > MAX_CARD_BYTES + 8 * 1024:  # as it travels, escaped
        raise UsageError(f"{path} is too large to send; a rate card may hold up to 48 KB")
    value = await relay.call("rates.import", text=body, source=str(path))
    if args.json:
        print_json(value)
    elif not value["added"]:
        say(f"rate card {value['digest']} ({value['name']}) was imported before; unchanged")
    else:
        state = "in force now" if value["in_force_now"] else "not in force today"
        say(
            f"imported rate card {value['digest']} ({value['name']}), effective "
            f"{value['effective_from']}: {state}"
        )
    return 0


def rates_template(args: argparse.Namespace) -> int:
    """Print (or write) the sample rate card shipped with the relay: the office
    edits it and imports it with ``qp rates import``."""
    from importlib import resources

    sample = resources.files("relay.billing") / "sample_ratecard.toml"
    _write(sample.read_bytes(), args.output)
    return 0


async def rates_export(relay: RelayClient, args: argparse.Namespace) -> int:
    value = await relay.call("rates.export", **_given(args, digest="digest"))
    _write(value["toml"].encode(), args.output)
    return 0


async def rates_show(relay: RelayClient, args: argparse.Namespace) -> int:
    value = await relay.call("rates.show")
    if args.json:
        print_json(value)
        return 0
    cols = [
        ("digest", "Digest"),
        ("name", "Name"),
        ("effective_from", "Effective"),
        ("state", "State"),
        ("imported_at", "Imported"),
        ("imported_by", "By"),
        ("source", "File"),
    ]
    show(value["cards"], cols, False, "rate cards")
    card = value["in_force"]
    if card is None:
        say("no rate card in force: the relay bills at its [billing] default rate")
        return 0
    say()
    say(f"in force: {card['name']} ({card['digest']}), from {card['effective_from']}")
    rows = [{"service": s, **levels} for s, levels in card["rates"].items()]
    show(
        rows, [("service", "Service"), ("1", "Level 1"), ("2", "Level 2"), ("3", "Level 3")], False
    )
    show_object(
        {
            "complexity": ", ".join(f"{k} x{v}" for k, v in card["complexity"].items()),
            "rounding": ", ".join(f"{k}={v}" for k, v in card["rounding"]["default"].items()),
            "sessions": ", ".join(f"{k}={v}" for k, v in card["sessions"].items()),
            "surcharges": ", ".join(card["surcharges"]),
            "agreements": ", ".join(f"{k} ({v})" for k, v in card["customers"].items()) or "-",
        },
        False,
    )
    return 0


# -- time entries --------------------------------------------------------------------------


async def time_list(relay: RelayClient, args: argparse.Namespace) -> int:
    filters = _given(
        args,
        customer="f_customer",
        technician="f_technician",
        status="f_status",
        **{"from": "f_from", "to": "f_to"},
    )
    return await paging.show_list(
        relay,
        args,
        "time.search",
        TIME_COLUMNS,
        "time entries",
        lambda row: {**row, "actual": _duration(row["actual_seconds"])},
        **filters,
    )


async def time_show(relay: RelayClient, args: argparse.Namespace) -> int:
    value = await relay.call("time.show", id=args.id)
    if args.json:
        print_json(value)
        return 0
    explanation, history = value.pop("explanation"), value.pop("history")
    show_object(value, False)
    say()
    say("how it was computed:")
    _print_lines(explanation)
    if history:
        say()
        cols = [
            ("at", "When"),
            ("by", "Who"),
            ("field", "Field"),
            ("old", "Old"),
            ("new", "New"),
            ("reason", "Reason"),
        ]
        show(history, cols, False, "history")
    return 0


async def time_edit(relay: RelayClient, args: argparse.Namespace) -> int:
    params = _given(
        args, complexity="complexity", service="service", notes="notes", request="request"
    )
    if args.urgent is not None:
        params["urgent"] = args.urgent == "yes"
    value = await relay.call("time.edit", id=args.id, reason=args.reason, **params)
    show_object(value, args.json)
    return 0


async def time_add(relay: RelayClient, args: argparse.Namespace) -> int:
    params = _given(
        args,
        start="start",
        end="end",
        minutes="minutes",
        complexity="complexity",
        request="request",
        notes="notes",
        technician="technician",
        service="service",
        attach="attach",
    )
    value = await relay.call("time.add", customer=args.customer, urgent=args.urgent, **params)
    show_object(value, args.json)
    return 0


async def time_approve(relay: RelayClient, args: argparse.Namespace) -> int:
    value = await relay.call("time.approve", ids=args.ids)
    if args.json:
        print_json(value)
    else:
        for entry_id in value["approved"]:
            say(f"approved {entry_id}")
        for entry_id in value["unchanged"]:
            say(f"{entry_id} was approved already")
    return 0


# -- prepaid hours and customers' billing data --------------------------------------------


def _show_balances(value: dict[str, Any], as_json: bool) -> int:
    if as_json:
        print_json(value)
        return 0
    cols = [
        ("id", "ID"),
        ("hours", "Hours"),
        ("used_hours", "Used"),
        ("left_hours", "Left"),
        ("from", "From"),
        ("expires", "Expires"),
        ("expired", "Expired"),
    ]
    show(value["blocks"], cols, False, f"prepaid hours of {value['customer']}")
    if value["left_hours"] is not None:
        say(
            f"left: {value['left_hours']} hours (surcharges: {value['pays']}; "
            f"warns below {value['warn_below_hours']})"
        )
    if value["warning"]:
        say(f"warning: {value['warning']}")
    return 0


async def prepaid_add(relay: RelayClient, args: argparse.Namespace) -> int:
    params = _given(args, expires="expires", note="note", **{"from": "valid_from"})
    value = await relay.call("prepaid.add", customer=args.customer, hours=args.hours, **params)
    return _show_balances(value, args.json)


async def prepaid_list(relay: RelayClient, args: argparse.Namespace) -> int:
    return _show_balances(await relay.call("prepaid.list", customer=args.customer), args.json)


async def prepaid_terms(relay: RelayClient, args: argparse.Namespace) -> int:
    params = _given(args, pays="pays", warn_below="warn_below")
    value = await relay.call("prepaid.terms", customer=args.customer, **params)
    show_object(value, args.json)
    return 0


async def customer_billing(relay: RelayClient, args: argparse.Namespace) -> int:
    params = _given(
        args,
        legal_name="legal_name",
        address="address",
        postcode="postcode",
        city="city",
        country="country",
        kvk="kvk",
        vat="vat",
        email="email",
        terms="terms",
        reverse_charge="reverse_charge",
        no_reverse_charge_reason="no_reverse_charge_reason",
        endpoint="endpoint",
        endpoint_scheme="endpoint_scheme",
        reference="reference",
    )
    show_object(await relay.call("customer.billing", customer=args.customer, **params), args.json)
    return 0


# -- invoices -------------------------------------------------------------------------------


async def invoice_create(relay: RelayClient, args: argparse.Namespace) -> int:
    params = _given(args, reference="reference")
    value = await relay.call(
        "invoice.create",
        customer=args.customer,
        period=args.period,
        dry_run=args.dry_run,
        **params,
    )
    if args.json:
        print_json(value)
        return 0
    lines, notes = value.pop("shown_lines"), value.pop("notes", [])
    show_object(value, False)
    say()
    show(lines, LINE_COLUMNS, False, "lines")
    if value["lines"] > len(lines):
        say(f"… and {value['lines'] - len(lines)} more lines (see qp invoice export)")
    for note in notes:
        say(f"note: {note}")
    return 0


async def invoice_list(relay: RelayClient, args: argparse.Namespace) -> int:
    filters = _given(args, customer="customer")
    return await paging.show_list(
        relay, args, "invoice.list", INVOICE_COLUMNS, "invoices", **filters
    )


async def invoice_credit(relay: RelayClient, args: argparse.Namespace) -> int:
    value = await relay.call("invoice.credit", id=args.id, reason=args.reason)
    show_object(value, args.json)
    return 0


async def invoice_export(relay: RelayClient, args: argparse.Namespace) -> int:
    if args.dialect and args.format != "csv":
        raise UsageError("--dialect is for --format csv only")
    if args.format == "pdf" and args.output is None and sys.stdout.isatty():
        raise UsageError("a PDF is not for the terminal: add -o FILE.pdf")
    chunks: list[bytes] = []
    offset: int | None = 0
    while offset is not None:
        value = await relay.call(
            "invoice.export",
            id=args.id,
            format=args.format,
            profile=args.profile,
            offset=offset,
            **_given(args, dialect="dialect"),
        )
        chunks.append(base64.b64decode(value["data"]))
        offset = value["next"]
    _write(b"".join(chunks), args.output)
    return 0


HANDLERS: dict[tuple[str, str | None], Handler] = {
    ("rates", "import"): rates_import,
    ("rates", "export"): rates_export,
    ("rates", "show"): rates_show,
    ("time", None): time_list,
    ("time", "show"): time_show,
    ("time", "edit"): time_edit,
    ("time", "add"): time_add,
    ("time", "approve"): time_approve,
    ("prepaid", "add"): prepaid_add,
    ("prepaid", "list"): prepaid_list,
    ("prepaid", "terms"): prepaid_terms,
    ("customer", "billing"): customer_billing,
    ("invoice", "create"): invoice_create,
    ("invoice", "list"): invoice_list,
    ("invoice", "credit"): invoice_credit,
    ("invoice", "export"): invoice_export,
}
