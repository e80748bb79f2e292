"""Customers' billing data, the company's own data, prepaid hours, invoices and
credit notes (tables of ``0004_billing.sql``, ``0007_company.sql`` and
``0008_prepaid_valid_from.sql``).

Every document is written in one ``BEGIN IMMEDIATE`` transaction. That takes
SQLite's write lock up front, so an invoice number read as ``MAX(seq) + 1`` inside
it is still free when the invoice is inserted, whichever process or connection
writes concurrently: the numbers stay unique and gap-free (a failed insert rolls
the number back too).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import aiosqlite

from relay.model import (
    AuditEvent,
    CompanyDetails,
    CreditRequest,
    CustomerBilling,
    EntryEdit,
    InvoiceDraft,
    InvoiceLineRecord,
    InvoiceRecord,
    Keyset,
    PrepaidBalance,
    PrepaidBlock,
    PrepaidTerms,
    format_number,
)
from relay.store.sqlite import paging
from relay.store.sqlite.base import SQLiteBase
from relay.store.sqlite.codec import columns, decode, encode, insert_sql
from relay.store.sqlite.entries import insert_edits
from shared.errors import ConflictError, NotFoundError


class SQLiteInvoices(SQLiteBase):
    """The billing data, prepaid hours and invoices of
    :class:`relay.store.interface.BillingStore`."""

    # -- customers' billing data ---------------------------------------------------------

    async def set_customer_billing(
        self, billing: CustomerBilling, *, audit: Sequence[AuditEvent] = ()
    ) -> None:
        """Insert or replace; ConflictError for an unknown customer."""
        values = columns(billing)
        updates = ", ".join(f"{name} = excluded.{name}" for name in values if name != "customer_id")
        sql = (
            insert_sql("customer_billing", values)
            + f" ON CONFLICT (customer_id) DO UPDATE SET {updates}"
        )
        await self._run("store customer billing data", sql, values, audit=audit)

    async def get_customer_billing(self, customer_id: str) -> CustomerBilling | None:
        """The customer's billing data, if any was stored."""
        sql = "SELECT * FROM customer_billing WHERE customer_id = ?"
        rows = await self._fetch("read customer billing data", sql, (customer_id,))
        return decode(CustomerBilling, rows[0]) if rows else None

    # -- the company's own data (0007_company.sql) ---------------------------------------

    async def set_company(
        self, company: CompanyDetails, *, audit: Sequence[AuditEvent] = ()
    ) -> None:
        """Insert or replace the one row of the company's data."""
        values = columns(company, id=1)
        updates = ", ".join(f"{name} = excluded.{name}" for name in values if name != "id")
        sql = insert_sql("company", values) + f" ON CONFLICT (id) DO UPDATE SET {updates}"
        await self._run("store the company's data", sql, values, audit=audit)

    async def get_company(self) -> CompanyDetails | None:
        """The company's data, or None before it was first set."""
        rows = await self._fetch("read the company's data", "SELECT * FROM company WHERE id = 1")
        return decode(CompanyDetails, rows[0]) if rows else None

    # -- prepaid hours ---------------------------------------------------------------------

    async def add_prepaid_block(
        self, block: PrepaidBlock, *, audit: Sequence[AuditEvent] = ()
    ) -> None:
        """Insert (with its first day as ``valid_from``); ConflictError on a duplicate
        id or an unknown customer."""
        values = columns(replace(block, valid_from=block.first_day))
        sql = insert_sql("prepaid_blocks", values)
        await self._run("add prepaid hours", sql, values, audit=audit)

    async def prepaid_balances(self, customer_id: str) -> list[PrepaidBalance]:
        """The customer's blocks with what was drawn, oldest first."""
        rows = await self._fetch(
            "read prepaid hours",
            "SELECT b.*, COALESCE((SELECT SUM(d.minutes) FROM prepaid_draws d"
            " WHERE d.block_id = b.id), 0) AS used_minutes FROM prepaid_blocks b"
            " WHERE b.customer_id = ? ORDER BY b.created_at, b.id",
            (customer_id,),
        )
        return [PrepaidBalance(decode(PrepaidBlock, row), int(row["used_minutes"])) for row in rows]

    async def set_prepaid_terms(
        self, terms: PrepaidTerms, *, audit: Sequence[AuditEvent] = ()
    ) -> None:
        """Insert or replace a customer's prepaid terms; ConflictError for an unknown
        customer."""
        values = columns(terms)
        updates = ", ".join(f"{name} = excluded.{name}" for name in values if name != "customer_id")
        sql = (
            insert_sql("prepaid_terms", values)
            + f" ON CONFLICT (customer_id) DO UPDATE SET {updates}"
        )
        await self._run("store prepaid terms", sql, values, audit=audit)

    async def get_prepaid_terms(self, customer_id: str) -> PrepaidTerms | None:
        """The customer's own prepaid terms, if any were set."""
        sql = "SELECT * FROM prepaid_terms WHERE customer_id = ?"
        rows = await self._fetch("read prepaid terms", sql, (customer_id,))
        return decode(PrepaidTerms, rows[0]) if rows else None

    # -- invoices ------------------------------------------------------------------------

    async def next_invoice_number(self, year: int) -> int:
        """The sequence number the next document of ``year`` would get (a preview)."""
        sql = "SELECT COALESCE(MAX(seq), 0) + 1 FROM invoices WHERE year = ?"
        rows = await self._fetch("read the invoice numbers", sql, (year,))
        return int(rows[0][0])

    async def create_invoice(
        self, draft: InvoiceDraft, *, audit: Sequence[AuditEvent] = ()
    ) -> InvoiceRecord:
        """Number and write ``draft`` with its lines, entries and draws, or raise
        ConflictError with nothing written."""
        async with self._transaction("create invoice") as db:
            seq, number = await _allocate(db, draft.issue_date.year)
            header = columns(draft, drop=("lines", "entry_ids", "draws"))
            header.update(number=number, year=draft.issue_date.year, seq=seq, kind="invoice")
            await db.execute(insert_sql("invoices", header), header)
            if draft.lines:  # rows made as they are written: big invoices stay lean
                sql = insert_sql("invoice_lines", columns(draft.lines[0], invoice_id=draft.id))
                rows = (columns(line, invoice_id=draft.id) for line in draft.lines)
                await db.executemany(sql, rows)
            await _mark_invoiced(db, draft, number)
            await _draw(db, draft)
            await self._write_audit(db, audit)
        return await self._invoice_by(
            "i.id = ?", (draft.id,), lines=draft.lines, what="read invoice"
        )

    async def credit_invoice(
        self, request: CreditRequest, *, audit: Sequence[AuditEvent] = ()
    ) -> InvoiceRecord:
        """Write the credit note cancelling an invoice and release its entries and
        draws, or raise (NotFoundError, ConflictError) with nothing written."""
        async with self._transaction("credit invoice") as db:
            found = list(
                await db.execute_fetchall(
                    "SELECT i.kind, i.number, c.number AS credit FROM invoices i"
                    " LEFT JOIN invoices c ON c.credits_invoice_id = i.id WHERE i.id = ?",
                    (request.original_id,),
                )
            )
            if not found:
                raise NotFoundError(f"no invoice {request.original_id!r}")
            original = found[0]
            if original["kind"] != "invoice":
                raise ConflictError(f"{original['number']} is a credit note; credit the invoice")
            if original["credit"] is not None:
                raise ConflictError(
                    f"invoice {original['number']} is already credited by {original['credit']}"
                )
            seq, number = await _allocate(db, request.issue_date.year)
            day = encode(request.issue_date)
            await db.execute(
                "INSERT INTO invoices (id, number, year, seq, kind, customer_id, issue_date,"
                " due_date, period_start, period_end, buyer_reference, currency, supplier,"
                " customer, total_excl_vat, vat_total, total_incl_vat, created_at, created_by,"
                " credits_invoice_id) SELECT ?, ?, ?, ?, 'credit_note', customer_id, ?, ?,"
                " period_start, period_end, buyer_reference, currency, supplier, customer,"
                " total_excl_vat, vat_total, total_incl_vat, ?, ?, id FROM invoices WHERE id = ?",
                (
                    request.id,
                    number,
                    request.issue_date.year,
                    seq,
                    day,
                    day,
                    encode(request.created_at),
                    request.created_by,
                    request.original_id,
                ),
            )
            await db.execute(
                "INSERT INTO invoice_lines SELECT ?, position, entry_id, description,"
                " supply_date, technician, request_ref, actual_minutes, billable_minutes,"
                " prepaid_minutes, unit_price, vat_code, vat_percent, surcharges, amount"
                " FROM invoice_lines WHERE invoice_id = ?",
                (request.id, request.original_id),
            )
            await _release(db, request, original["number"], number)
            await self._write_audit(db, audit)
        return await self._invoice_by("i.id = ?", (request.id,), what="read credit note")

    async def get_invoice(self, ref: str) -> InvoiceRecord | None:
        """By id or number, with its lines."""
        try:
            return await self._invoice_by("i.id = ? OR i.number = ?", (ref, ref), "read invoice")
        except NotFoundError:
            return None

    async def list_invoices(
        self, customer_id: str | None = None, page: Keyset | None = None
    ) -> list[InvoiceRecord]:
        """Most recent number first (or one page, sort key: year, sequence); lines
        are not loaded (see ``line_count``)."""
        terms, params = (["i.customer_id = ?"], [customer_id]) if customer_id else ([], [])
        more, more_params = paging.conditions(page, ("i.year", "i.seq"), True, "i.customer_id")
        where = paging.where([*terms, *more])
        sql = _invoice_sql(where) + (" LIMIT ?" if page else "")
        rows = await self._fetch(
            "list invoices", sql, [*params, *more_params, *([page.limit] if page else [])]
        )
        return [decode(InvoiceRecord, row, lines=()) for row in rows]

    async def _invoice_by(
        self,
        where: str,
        params: Sequence[Any],
        what: str,
        lines: tuple[InvoiceLineRecord, ...] | None = None,
    ) -> InvoiceRecord:
        rows = await self._fetch(what, _invoice_sql(f" WHERE {where}"), params)
        if not rows:
            raise NotFoundError(f"no invoice {params[0]!r}")
        if lines is None:
            sql = "SELECT * FROM invoice_lines WHERE invoice_id = ? ORDER BY position"
            found = await self._fetch(what, sql, (rows[0]["id"],))
            lines = tuple(decode(InvoiceLineRecord, row) for row in found)
        return decode(InvoiceRecord, rows[0], lines=lines)


def _invoice_sql(where: str) -> str:
    return (
        "SELECT i.*, c.id AS credited_by_id,"
        " (SELECT COUNT(*) FROM invoice_lines l WHERE l.invoice_id = i.id) AS line_count"
        f" FROM invoices i LEFT JOIN invoices c ON c.credits_invoice_id = i.id{where}"
        " ORDER BY i.year DESC, i.seq DESC"
    )


async def _allocate(db: aiosqlite.Connection, year: int) -> tuple[int, str]:
    """The next sequence number of ``year``, inside the caller's write transaction."""
    rows = list(
        await db.execute_fetchall(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM invoices WHERE year = ?", (year,)
        )
    )
    seq = int(rows[0][0])
    return seq, format_number(year, seq)


async def _mark_invoiced(db: aiosqlite.Connection, draft: InvoiceDraft, number: str) -> None:
    at = encode(draft.created_at)
    cursor = await db.executemany(
        "UPDATE time_entries SET status = 'invoiced', invoice_id = ?, invoiced_at = ?,"
        " revision = revision + 1 WHERE id = ? AND status = 'approved' AND invoice_id IS NULL",
        ((draft.id, at, entry_id) for entry_id in draft.entry_ids),
    )
    if cursor.rowcount != len(draft.entry_ids):
        raise ConflictError(
            "some time entries were changed or invoiced meanwhile; nothing was invoiced, try again"
        )
    edits = (
        EntryEdit(e, draft.created_at, draft.created_by, "status", "approved", "invoiced", number)
        for e in draft.entry_ids
    )
    await insert_edits(db, edits)


async def _draw(db: aiosqlite.Connection, draft: InvoiceDraft) -> None:
    wanted: dict[str, int] = {}
    for draw in draft.draws:
        wanted[draw.block_id] = wanted.get(draw.block_id, 0) + draw.minutes
    for block_id, minutes in wanted.items():
        rows = list(
            await db.execute_fetchall(
                "SELECT b.minutes - COALESCE((SELECT SUM(d.minutes) FROM prepaid_draws d"
                " WHERE d.block_id = b.id), 0) FROM prepaid_blocks b"
                " WHERE b.id = ? AND b.customer_id = ?",
                (block_id, draft.customer_id),
            )
        )
        if not rows or int(rows[0][0]) < minutes:
            raise ConflictError("the prepaid hours changed meanwhile; nothing was invoiced")
    await db.executemany(
        "INSERT INTO prepaid_draws (block_id, invoice_id, entry_id, minutes) VALUES (?, ?, ?, ?)",
        [(d.block_id, draft.id, d.entry_id, d.minutes) for d in draft.draws],
    )


async def _release(
    db: aiosqlite.Connection, request: CreditRequest, original: str, credit: str
) -> None:
    """The credited invoice's entries become approved again; its draws are undone."""
    rows = await db.execute_fetchall(
        "SELECT id FROM time_entries WHERE invoice_id = ?", (request.original_id,)
    )
    ids = [row["id"] for row in rows]
    await db.execute(
        "UPDATE time_entries SET status = 'approved', invoice_id = NULL, invoiced_at = NULL,"
        " revision = revision + 1 WHERE invoice_id = ?",
        (request.original_id,),
    )
    reason = f"invoice {original} credited by {credit}: {request.reason}".rstrip(": ")
    who, at = request.created_by, request.created_at
    await insert_edits(
        db, [EntryEdit(i, at, who, "status", "invoiced", "approved", reason) for i in ids]
    )
    await db.execute(
        "INSERT INTO prepaid_draws (block_id, invoice_id, entry_id, minutes)"
        " SELECT block_id, ?, entry_id, -minutes FROM prepaid_draws WHERE invoice_id = ?",
        (request.id, request.original_id),
    )
