"""SQLite side of :class:`relay.store.interface.BillingStore`, mixed into
:class:`relay.store.sqlite.SQLiteStore` (tables from ``0004_billing.sql``).

Every multi-row change is one ``BEGIN IMMEDIATE`` transaction of the store's
connection. ``BEGIN IMMEDIATE`` takes SQLite's write lock up front, so an invoice
number read as ``MAX(seq) + 1`` inside that transaction is still free when the
invoice is inserted, whichever process or connection writes concurrently: the
numbers stay unique and gap-free (a failed insert rolls the number back too).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import fields
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar, get_type_hints

import aiosqlite

from relay.billing.invoice import format_number
from relay.model import (
    BillableEntry,
    CreditRequest,
    CustomerBilling,
    EntryEdit,
    EntryQuery,
    EntryUpdate,
    InvoiceDraft,
    InvoiceLineRecord,
    InvoiceRecord,
    PrepaidBalance,
    PrepaidBlock,
    RateCardRecord,
    SessionClose,
)
from relay.store.interface import BillingStore
from shared.errors import ConflictError, NotFoundError

_R = TypeVar("_R")

_ENTRY_COLUMNS = tuple(f.name for f in fields(BillableEntry))
_LIGHT_COLUMNS = ", ".join(c for c in _ENTRY_COLUMNS if c != "details")


# -- encoding: the store's helpers, plus calendar dates ----------------------------------


def _enc(value: Any) -> Any:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    return _sq._encode(value)


def _row(record: Any, drop: Sequence[str] = (), **extra: Any) -> dict[str, Any]:
    """The record's fields as encoded columns, minus ``drop``, plus ``extra``."""
    values = {f.name: _enc(getattr(record, f.name)) for f in fields(record) if f.name not in drop}
    values.update(extra)
    return values


def _date_decoder(hint: Any) -> Callable[[Any], Any] | None:
    if hint is date:
        return date.fromisoformat
    if hint == date | None:
        return lambda text: None if text is None else date.fromisoformat(text)
    if hint == Decimal | None:
        return lambda text: None if text is None else Decimal(text)
    return None


_DECODERS: dict[type, dict[str, Callable[[Any], Any]]] = {}


def _decoders(cls: type) -> dict[str, Callable[[Any], Any]]:
    """Column decoders by field, from the type hints (built once per class)."""
    if cls not in _DECODERS:
        hints = get_type_hints(cls)
        _DECODERS[cls] = {n: _date_decoder(h) or _sq._decoder(h) for n, h in hints.items()}
    return _DECODERS[cls]


def _load(cls: type[_R], row: sqlite3.Row, **given: Any) -> _R:
    """A ``cls`` record from ``row``; ``given`` fields are not read from it."""
    values = {name: dec(row[name]) for name, dec in _decoders(cls).items() if name not in given}
    return cls(**values, **given)


def _entry(row: sqlite3.Row, with_details: bool = True) -> BillableEntry:
    return _load(BillableEntry, row) if with_details else _load(BillableEntry, row, details={})


def _edits_params(edits: Iterable[EntryEdit]) -> Iterator[dict[str, Any]]:
    return (_row(edit) for edit in edits)


_INSERT_EDIT = (
    "INSERT INTO time_entry_edits (entry_id, at, actor, field, old, new, reason)"
    " VALUES (:entry_id, :at, :actor, :field, :old, :new, :reason)"
)


class SQLiteBillingMixin(BillingStore):
    """Uses the connection, lock and helpers of the SQLiteStore it is mixed into."""

    if TYPE_CHECKING:

        def _transaction(
            self, what: str, begin: str = "BEGIN IMMEDIATE"
        ) -> AbstractAsyncContextManager[aiosqlite.Connection]: ...

        async def _run(
            self, what: str, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()
        ) -> int: ...

        async def _fetch(
            self, what: str, sql: str, params: Sequence[Any] = ()
        ) -> list[sqlite3.Row]: ...

    # -- rate cards ------------------------------------------------------------------

    async def add_rate_card(self, card: RateCardRecord) -> bool:
        values = _row(card)
        sql = _sq._insert_sql("rate_cards", values).replace("INSERT", "INSERT OR IGNORE", 1)
        return await self._run("store rate card", sql, values) > 0

    async def list_rate_cards(self) -> list[RateCardRecord]:
        sql = "SELECT * FROM rate_cards ORDER BY effective_from, imported_at, digest"
        return [_load(RateCardRecord, row) for row in await self._fetch("list rate cards", sql)]

    async def get_rate_card(self, digest: str) -> RateCardRecord | None:
        sql = "SELECT * FROM rate_cards WHERE digest = ?"
        rows = await self._fetch("read rate card", sql, (digest,))
        return _load(RateCardRecord, rows[0]) if rows else None

    # -- time entries ------------------------------------------------------------------

    async def get_entry(self, entry_id: str) -> BillableEntry | None:
        sql = "SELECT * FROM time_entries WHERE id = ?"
        rows = await self._fetch("read time entry", sql, (entry_id,))
        return _entry(rows[0]) if rows else None

    async def query_entries(self, query: EntryQuery) -> list[BillableEntry]:
        where: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("customer_id = ?", query.customer_id),
            ("technician_id = ?", query.technician_id),
            ("status = ?", query.status),
            ("invoice_id = ?", query.invoice_id),
            ("started_at >= ?", query.started_from),
            ("started_at < ?", query.started_before),
        ):
            if value is not None:
                where.append(column)
                params.append(_enc(value))
        columns = "*" if query.with_details else _LIGHT_COLUMNS
        sql = f"SELECT {columns} FROM time_entries"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_at, id"
        if query.limit is not None or query.offset:
            sql += " LIMIT ? OFFSET ?"
            params += [-1 if query.limit is None else query.limit, query.offset]
        rows = await self._fetch("list time entries", sql, params)
        return [_entry(row, query.with_details) for row in rows]

    async def find_merge_target(
        self,
        customer_id: str,
        technician_id: str,
        agent_id: str,
        request: str | None,
        ended_since: datetime,
    ) -> BillableEntry | None:
        rows = await self._fetch(
            "find the entry to merge into",
            "SELECT * FROM time_entries WHERE customer_id = ? AND technician_id = ?"
            " AND agent_id = ? AND COALESCE(ticket, '') = ? AND status = 'draft'"
            " AND source = 'session' AND card_digest <> '' AND ended_at >= ?"
            " ORDER BY ended_at DESC, id DESC LIMIT 1",
            (customer_id, technician_id, agent_id, request or "", _sq._ts(ended_since)),
        )
        return _entry(rows[0]) if rows else None

    async def close_session_billed(self, close: SessionClose, merge: EntryUpdate | None) -> bool:
        async with self._transaction(f"close session {close.session_id}") as db:
            cursor = await db.execute(
                "UPDATE sessions SET state = ?, end_reason = ?, ended_at = ?,"
                " last_seen_at = COALESCE(?, last_seen_at), bytes_to_agent = ?,"
                " bytes_to_technician = ?, active_minutes = ?, traffic_minutes = ?"
                " WHERE id = ? AND ended_at IS NULL",
                (
                    close.state,
                    close.end_reason,
                    _sq._ts(close.ended_at),
                    None if close.last_seen_at is None else _sq._ts(close.last_seen_at),
                    close.bytes_to_agent,
                    close.bytes_to_technician,
                    close.active_minutes,
                    _enc(tuple(close.traffic_minutes)),
                    close.session_id,
                ),
            )
            if cursor.rowcount == 0:
                return False
            if merge is not None and await _replace_entry(db, merge, draft_only=True):
                await db.executemany(_INSERT_EDIT, _edits_params(merge.history))
            elif close.entry is not None:
                values = _row(close.entry)
                await db.execute(_sq._insert_sql("time_entries", values), values)
        return True

    async def add_entry(
        self, entry: BillableEntry, history: Sequence[EntryEdit] = (), refuse_overlap: bool = False
    ) -> None:
        values = _row(entry)
        async with self._transaction(f"add time entry {entry.id}") as db:
            if refuse_overlap:
                clash = list(
                    await db.execute_fetchall(
                        "SELECT id, started_at, ended_at FROM time_entries"
                        " WHERE technician_id = ? AND started_at < ? AND ended_at > ?"
                        " ORDER BY started_at LIMIT 1",
                        (entry.technician_id, values["ended_at"], values["started_at"]),
                    )
                )
                if clash:
                    other, start, end = clash[0]
                    raise ConflictError(
                        f"it overlaps time entry {other} of the same technician "
                        f"({_sq._dt(start):%Y-%m-%d %H:%M} to {_sq._dt(end):%H:%M} UTC)"
                    )
            await db.execute(_sq._insert_sql("time_entries", values), values)
            await db.executemany(_INSERT_EDIT, _edits_params(history))

    async def add_entries(self, entries: Sequence[BillableEntry]) -> None:
        if not entries:
            return
        rows = [_row(entry) for entry in entries]
        async with self._transaction(f"add {len(rows)} time entries") as db:
            await db.executemany(_sq._insert_sql("time_entries", rows[0]), rows)

    async def update_entry(self, update: EntryUpdate) -> BillableEntry:
        entry_id = update.entry.id
        async with self._transaction(f"update time entry {entry_id}") as db:
            if not await _replace_entry(db, update, draft_only=False):
                found = list(
                    await db.execute_fetchall(
                        "SELECT status, invoice_id FROM time_entries WHERE id = ?", (entry_id,)
                    )
                )
                if not found:
                    raise NotFoundError(f"no time entry {entry_id!r}")
                if found[0]["status"] == "invoiced":
                    raise ConflictError(f"time entry {entry_id} is invoiced and locked")
                raise ConflictError(f"time entry {entry_id} changed meanwhile; try again")
            await db.executemany(_INSERT_EDIT, _edits_params(update.history))
            rows = list(
                await db.execute_fetchall("SELECT * FROM time_entries WHERE id = ?", (entry_id,))
            )
        return _entry(rows[0])

    async def approve_entries(
        self, entry_ids: Sequence[str], actor: str, at: datetime
    ) -> list[str]:
        approved: list[str] = []
        async with self._transaction("approve time entries") as db:
            for entry_id in dict.fromkeys(entry_ids):
                found = list(
                    await db.execute_fetchall(
                        "SELECT status FROM time_entries WHERE id = ?", (entry_id,)
                    )
                )
                if not found:
                    raise NotFoundError(f"no time entry {entry_id!r}")
                status = found[0]["status"]
                if status == "invoiced":
                    raise ConflictError(f"time entry {entry_id} is invoiced and locked")
                if status == "approved":
                    continue
                await db.execute(
                    "UPDATE time_entries SET status = 'approved', approved_at = ?,"
                    " approved_by = ?, revision = revision + 1 WHERE id = ?",
                    (_sq._ts(at), actor, entry_id),
                )
                edit = EntryEdit(entry_id, at, actor, "status", "draft", "approved", "approved")
                await db.execute(_INSERT_EDIT, _row(edit))
                approved.append(entry_id)
        return approved

    async def list_entry_edits(self, entry_id: str) -> list[EntryEdit]:
        sql = "SELECT * FROM time_entry_edits WHERE entry_id = ? ORDER BY id"
        rows = await self._fetch("read the edit history", sql, (entry_id,))
        return [_load(EntryEdit, row) for row in rows]

    # -- customers' billing data ---------------------------------------------------------

    async def set_customer_billing(self, billing: CustomerBilling) -> None:
        values = _row(billing)
        updates = ", ".join(f"{name} = excluded.{name}" for name in values if name != "customer_id")
        sql = (
            _sq._insert_sql("customer_billing", values)
            + f" ON CONFLICT (customer_id) DO UPDATE SET {updates}"
        )
        await self._run("store customer billing data", sql, values)

    async def get_customer_billing(self, customer_id: str) -> CustomerBilling | None:
        sql = "SELECT * FROM customer_billing WHERE customer_id = ?"
        rows = await self._fetch("read customer billing data", sql, (customer_id,))
        return _load(CustomerBilling, rows[0]) if rows else None

    # -- prepaid hours ---------------------------------------------------------------------

    async def add_prepaid_block(self, block: PrepaidBlock) -> None:
        values = _row(block)
        await self._run("add prepaid hours", _sq._insert_sql("prepaid_blocks", values), values)

    async def prepaid_balances(self, customer_id: str) -> list[PrepaidBalance]:
        rows = await self._fetch(
            "read prepaid hours",
            "SELECT b.*, COALESCE((SELECT SUM(d.minutes) FROM prepaid_draws d"
            " WHERE d.block_id = b.id), 0) AS used_minutes FROM prepaid_blocks b"
            " WHERE b.customer_id = ? ORDER BY b.created_at, b.id",
            (customer_id,),
        )
        return [PrepaidBalance(_load(PrepaidBlock, row), int(row["used_minutes"])) for row in rows]

    # -- invoices ------------------------------------------------------------------------

    async def next_invoice_number(self, year: int) -> int:
        sql = "SELECT COALESCE(MAX(seq), 0) + 1 FROM invoices WHERE year = ?"
        rows = await self._fetch("read the invoice numbers", sql, (year,))
        return int(rows[0][0])

    async def create_invoice(self, draft: InvoiceDraft) -> InvoiceRecord:
        async with self._transaction("create invoice") as db:
            seq, number = await _allocate(db, draft.issue_date.year)
            header = _row(draft, drop=("lines", "entry_ids", "draws"))
            header.update(number=number, year=draft.issue_date.year, seq=seq, kind="invoice")
            await db.execute(_sq._insert_sql("invoices", header), header)
            if draft.lines:  # rows made as they are written: big invoices stay lean
                sql = _sq._insert_sql("invoice_lines", _row(draft.lines[0], invoice_id=draft.id))
                rows = (_row(line, invoice_id=draft.id) for line in draft.lines)
                await db.executemany(sql, rows)
            await _mark_invoiced(db, draft, number)
            await _draw(db, draft)
        return await self._invoice_by(
            "i.id = ?", (draft.id,), lines=draft.lines, what="read invoice"
        )

    async def credit_invoice(self, request: CreditRequest) -> InvoiceRecord:
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
            day = request.issue_date.isoformat()
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
                    _sq._ts(request.created_at),
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
        return await self._invoice_by("i.id = ?", (request.id,), what="read credit note")

    async def get_invoice(self, ref: str) -> InvoiceRecord | None:
        try:
            return await self._invoice_by("i.id = ? OR i.number = ?", (ref, ref), "read invoice")
        except NotFoundError:
            return None

    async def list_invoices(self, customer_id: str | None = None) -> list[InvoiceRecord]:
        where, params = ("WHERE i.customer_id = ?", (customer_id,)) if customer_id else ("", ())
        rows = await self._fetch("list invoices", _invoice_sql(where), params)
        return [_load(InvoiceRecord, row, lines=()) for row in rows]

    async def _invoice_by(
        self,
        where: str,
        params: Sequence[Any],
        what: str,
        lines: tuple[InvoiceLineRecord, ...] | None = None,
    ) -> InvoiceRecord:
        rows = await self._fetch(what, _invoice_sql(f"WHERE {where}"), params)
        if not rows:
            raise NotFoundError(f"no invoice {params[0]!r}")
        if lines is None:
            sql = "SELECT * FROM invoice_lines WHERE invoice_id = ? ORDER BY position"
            found = await self._fetch(what, sql, (rows[0]["id"],))
            lines = tuple(_load(InvoiceLineRecord, row) for row in found)
        return _load(InvoiceRecord, rows[0], lines=lines)


def _invoice_sql(where: str) -> str:
    return (
        "SELECT i.*, c.id AS credited_by_id,"
        " (SELECT COUNT(*) FROM invoice_lines l WHERE l.invoice_id = i.id) AS line_count"
        f" FROM invoices i LEFT JOIN invoices c ON c.credits_invoice_id = i.id {where}"
        " ORDER BY i.year DESC, i.seq DESC"
    )


async def _replace_entry(db: aiosqlite.Connection, update: EntryUpdate, draft_only: bool) -> bool:
    """Overwrite the entry if it is at the expected revision (and a draft, or at
    least not invoiced); whether it was."""
    values = _row(update.entry, drop=("id", "created_at"))
    values["revision"] = update.expected_revision + 1
    assignments = ", ".join(f"{name} = :{name}" for name in values)
    guard = "status = 'draft'" if draft_only else "status <> 'invoiced'"
    cursor = await db.execute(
        f"UPDATE time_entries SET {assignments} WHERE id = :_id AND revision = :_expected"
        f" AND {guard}",
        {**values, "_id": update.entry.id, "_expected": update.expected_revision},
    )
    return cursor.rowcount == 1


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
    at = _sq._ts(draft.created_at)
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
    await db.executemany(_INSERT_EDIT, _edits_params(edits))


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
    edits = [EntryEdit(i, at, who, "status", "invoiced", "approved", reason) for i in ids]
    await db.executemany(_INSERT_EDIT, _edits_params(edits))
    await db.execute(
        "INSERT INTO prepaid_draws (block_id, invoice_id, entry_id, minutes)"
        " SELECT block_id, ?, entry_id, -minutes FROM prepaid_draws WHERE invoice_id = ?",
        (request.id, request.original_id),
    )


# sqlite.py subclasses the mixin above, so its helpers are imported last (a cycle).
from relay.store import sqlite as _sq  # noqa: E402
