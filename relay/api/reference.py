"""The reference of every console method: who may call it, what it takes, what it
returns. ``tests/unit/test_api_reference.py`` keeps it in step with the method
tables, so this is the page to read (and to give a web console's author).

Every list method is paged the same way (``PAGED``): ``limit`` rows per page
(default 100, at most 500; fewer when the rows would not fit one control message)
and ``cursor``, the ``next`` of the page before (absent for the first page). The
result is ``{items: [...], next}``, ``next`` null on the last page. A cursor is
opaque: pass it back as it came.
"""

from __future__ import annotations

from dataclasses import dataclass

from relay.api.context import ADMIN, ALL, OFFICE, STAFF

PAGED = {"limit": "?rows per page (1..500, default 100)", "cursor": "?next of the page before"}


@dataclass(frozen=True)
class Entry:
    roles: tuple[str, ...]
    params: dict[str, str]  # name -> what it is ("?" marks optional)
    result: str


REFERENCE: dict[str, Entry] = {
    # -- directory
    "whoami": Entry(
        ALL,
        {},
        "id, name, role, level, relay_id, host_ca, token_expires_at, "
        "token_warning (a line in the week before expiry, else null)",
    ),
    "relay.status": Entry(ADMIN, {}, "relay_id, live_sessions, store_write_transactions"),
    "audit.list": Entry(
        ADMIN,
        {
            "since": "?time (company-local, or with offset)",
            "until": "?time",
            "actor": "?name or id (or anonymous)",
            "event": "?event",
            "subject": "?id",
            **PAGED,
        },
        "page {items: [id, at, event, actor, actor_name, subject, subject_name, peer,"
        " count, detail], next}, newest first",
    ),  # fmt: skip
    "customer.add": Entry(ADMIN, {"name": "customer name"}, "id, name, created_at"),
    "customer.list": Entry(
        ALL, PAGED, "page {items: [id, name, created_at], next} of customers the caller serves"
    ),
    "technician.add": Entry(
        ADMIN,
        {
            "name": "name",
            "level": "?1..3",
            "role": "?technician|billing|admin",
            "customers": "?[customer names]",
        },
        "id, name, role, level, token (shown once)",
    ),  # fmt: skip
    "technician.list": Entry(
        ADMIN,
        PAGED,
        "page {items: [id, name, role, level, customers, disabled, token_expires_at, grants], "
        "next}, by name",
    ),
    "technician.disable": Entry(
        ADMIN, {"name": "name or id"}, "name, disabled, sessions_ended (ended technician_disabled)"
    ),
    "technician.enable": Entry(ADMIN, {"name": "name or id"}, "name, disabled"),
    "technician.rotate_token": Entry(
        ADMIN,
        {"name": "name or id"},
        "id, name, token (shown once; the old one stops at once), token_expires_at, yours",
    ),
    "technician.set_level": Entry(ADMIN, {"name": "name or id", "level": "1..3"}, "name, level"),
    "technician.set_customers": Entry(
        ADMIN, {"name": "name or id", "customers": "[customer names]"}, "name, customers"
    ),
    "technician.grant": Entry(
        ADMIN, {"name": "billing login", "grant": "recordings|diagnostics|help"}, "name, grants"
    ),
    "technician.revoke_grant": Entry(
        ADMIN, {"name": "billing login", "grant": "recordings|diagnostics|help"}, "name, grants"
    ),
    "enroll_token.create": Entry(
        STAFF,
        {"customer": "customer name", "ttl": "?seconds", "uses": "?count"},
        "id, token, customer, expires_at, uses, command",
    ),
    "enroll_token.revoke": Entry(STAFF, {"id": "token id"}, "id, revoked"),
    "enroll_token.list": Entry(
        ALL,
        PAGED,
        "page {items: [id, customer, expires_at, uses_left, usable, revoked], next}, newest first",
    ),
    "agent.list": Entry(
        ALL,
        PAGED,
        "page {items: [id, name, customer, online, revoked, enrolled_at, last_seen_at,"
        " worst_finding, support], next}, by name",
    ),
    "agent.revoke": Entry(ADMIN, {"agent": "id or name"}, "id, name, revoked"),
    # -- sessions and policy
    "session.open": Entry(
        STAFF,
        {
            "agent": "id or name",
            "kind": "exec|shell|files|forward|proxy",
            "public_key": "OpenSSH public key",
            "request": "?REQ-n",
        },
        "session_id, agent_id, agent_name, tunnel_url, tunnel_token, certificate, host_ca, "
        "relay_time; "
        "events {session_id, state} while the client is asked",
    ),  # fmt: skip
    "session.list": Entry(ALL, PAGED, "page {items: [sessions], next}, newest first"),
    "session.end": Entry(STAFF, {"session": "session id"}, "id, ended"),
    "session.recording": Entry(
        ALL, {"session": "session id", "offset": "?bytes"}, "data (base64), offset, total"
    ),
    "policy.set": Entry(
        ADMIN,
        {"policy": "{setting: value|null}", "agent": "?id or name", "customer": "?name"},
        "subject, policy (effective), pinned (what the client pinned on its machine)",
    ),
    "policy.show": Entry(
        ALL,
        {"agent": "?id or name", "customer": "?name"},
        "subject, policy (effective), pinned (what the client pinned on its machine)",
    ),
    "support_code.create": Entry(
        STAFF,
        {"customer": "name", "ttl": "?seconds", "request": "?REQ-n"},
        "id, code, customer, request, expires_at, command",
    ),
    # -- diagnostics and help requests
    "diag.get": Entry(
        ALL, {"agent": "id or name", "refresh": "?bool", "id": "?snapshot id"}, "snapshot"
    ),
    "diag.list": Entry(
        ALL,
        {"agent": "id or name", **PAGED},
        "page {items: [snapshot metadata], next}, newest first",
    ),
    "diag.pair": Entry(ALL, {"agent": "id or name", "a": "?id", "b": "?id"}, "a, b snapshots"),
    "request.queue": Entry(
        ALL,
        {"open_only": "?bool", **PAGED},
        "page {items: [requests], next}, urgent first, then oldest; text null for billing "
        "without the help grant",
    ),
    "request.show": Entry(ALL, {"request": "REQ-n"}, "request, snapshots, sessions"),
    "request.take": Entry(STAFF, {"request": "REQ-n"}, "label, state, assigned_to"),
    "request.close": Entry(
        STAFF, {"request": "REQ-n", "resolution": "text"}, "label, state, resolution"
    ),
    # -- time entries
    "time.search": Entry(
        ALL,
        {
            "customer": "?name",
            "technician": "?name",
            "status": "?draft|approved|invoiced",
            "from": "?YYYY-MM-DD",
            "to": "?YYYY-MM-DD",
            **PAGED,
        },
        "page {items: [entries], next}, by start",
    ),  # fmt: skip
    "time.show": Entry(ALL, {"id": "entry id"}, "entry, explanation, history"),
    "time.edit": Entry(
        ALL,
        {
            "id": "entry id",
            "reason": "text",
            "service": "?",
            "complexity": "?",
            "urgent": "?bool",
            "request": "?",
            "notes": "?",
        },
        "entry",
    ),  # fmt: skip
    "time.add": Entry(
        ALL,
        {
            "customer": "name",
            "service": "?service type (required unless attach)",
            "start": "?time (company time, or with its offset)",
            "end": "?time",
            "minutes": "?n",
            "technician": "?name",
            "complexity": "?",
            "urgent": "?bool",
            "request": "?",
            "notes": "?",
            "attach": "?entry id: add the work to this overlapping session entry",
        },
        "entry, not_billed (why it bills nothing, or null), attached",
    ),  # fmt: skip
    "time.approve": Entry(OFFICE, {"ids": "[entry ids]"}, "approved, unchanged"),
    # -- the office
    "rates.import": Entry(
        OFFICE,
        {"text": "TOML", "source": "?file name"},
        "digest, name, effective_from, added, in_force_now",
    ),
    "rates.show": Entry(OFFICE, {}, "cards, in_force"),
    "rates.export": Entry(OFFICE, {"digest": "?digest"}, "digest, source, toml"),
    "customer.billing": Entry(
        OFFICE,
        {
            "customer": "name",
            "no_reverse_charge_reason": "?why an EU business is charged Dutch VAT (audited)",
            "...": "?fields to change",
        },
        "customer billing data",
    ),
    "company.show": Entry(
        OFFICE,
        {},
        "the company's data in force, source (database|relay.toml), invoiceable, problem",
    ),
    "company.set": Entry(
        OFFICE,
        {
            "legal_name": "?",
            "address": "?one or two lines",
            "postcode": "?",
            "city": "?",
            "country": "?NL",
            "kvk": "?8 digits",
            "vat": "?Dutch VAT id",
            "iban": "?",
            "email": "?",
            "payment_means": "?58|30",
        },
        "the company's data as company.show shows it",
    ),
    "prepaid.add": Entry(
        OFFICE,
        {
            "customer": "name",
            "hours": "number",
            "from": "?YYYY-MM-DD (first day of work it pays for; default today)",
            "expires": "?YYYY-MM-DD",
            "note": "?",
        },
        "as prepaid.list",
    ),
    "prepaid.list": Entry(
        OFFICE,
        {"customer": "name"},
        "customer, blocks, left_hours, pays, warn_below_hours, low, warning",
    ),
    "prepaid.terms": Entry(
        OFFICE,
        {"customer": "name", "pays": "?base|all|default", "warn_below": "?hours|default"},
        "customer, pays, pays_from, warn_below_hours, warn_below_from (customer|relay.toml)",
    ),
    "invoice.create": Entry(
        OFFICE,
        {"customer": "name", "period": "YYYY-MM", "reference": "?", "dry_run": "?bool"},
        "invoice summary, prepaid_minutes, notes, shown_lines",
    ),
    "invoice.list": Entry(
        OFFICE,
        {"customer": "?name", **PAGED},
        "page {items: [invoices], next}, most recent number first",
    ),
    "invoice.credit": Entry(OFFICE, {"id": "invoice id or number", "reason": "?"}, "credit note"),
    "invoice.export": Entry(
        OFFICE,
        {
            "id": "invoice id or number",
            "format": "?ubl|csv|json|html|pdf",
            "profile": "?nlcius|peppol",
            "dialect": "?rfc4180|nl",
            "offset": "?bytes",
        },
        "number, format, size, data (base64), next",
    ),  # fmt: skip
}
