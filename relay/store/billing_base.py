"""The billing half of the store interface: rate cards, billable time entries and
their edit history, customers' billing data, prepaid hours, invoices.

:class:`BillingStore` is mixed into :class:`relay.store.base.Store`; every backend
implements it beside its other methods and passes ``tests/store/test_billing_store.py``.
As everywhere in the store, business rules stay in Python: these methods persist
and query, and make the few multi-row changes billing needs atomic (closing a
session into a merged entry, numbering and writing an invoice, crediting one).

Dates (``date``) are calendar days in the company's time zone; datetimes are
timezone-aware UTC; money and rates are ``Decimal``; minutes are whole numbers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from relay.store.base import SessionClose, TimeEntry

ENTRY_STATUSES = ("draft", "approved", "invoiced")
ENTRY_SOURCES = ("session", "manual")
INVOICE_KINDS = ("invoice", "credit_note")


@dataclass(frozen=True)
class RateCardRecord:
    """A rate card as the office imported it: its TOML text, kept verbatim."""

    digest: str  # relay.billing.ratecard_export.card_digest of the parsed card
    effective_from: date
    name: str
    toml: str
    source_name: str  # the file it was imported from
    imported_at: datetime
    imported_by: str  # technician id


@dataclass(frozen=True)
class BillableEntry(TimeEntry):
    """A time entry with everything billing keeps besides the spine's fields.

    ``card_digest`` names the rate card the figures were computed with ("" for
    entries made at the relay's default rate); ``details`` then holds the full
    explanation, raw facts included, so the entry can be recomputed.
    ``revision`` grows with every change, so concurrent writers cannot lose
    each other's updates.
    """

    complexity: str = "standard"
    urgent: bool = False
    idle_seconds: int = 0
    card_digest: str = ""
    surcharges: tuple[str, ...] = ()  # what was added, for invoice lines ("evening +50 %")
    source: str = "session"  # session | manual
    approved_at: datetime | None = None
    approved_by: str | None = None
    invoiced_at: datetime | None = None
    invoice_id: str | None = None
    revision: int = 0


@dataclass(frozen=True)
class EntryEdit:
    """One changed field of a time entry: appended, never updated or deleted."""

    entry_id: str
    at: datetime
    actor: str  # technician id, or "relay"
    field: str
    old: str | None
    new: str | None
    reason: str


@dataclass(frozen=True)
class EntryUpdate:
    """Replace an entry, provided it is still at ``expected_revision`` and not invoiced."""

    entry: BillableEntry  # the new state; its revision is stored as expected + 1
    expected_revision: int
    history: tuple[EntryEdit, ...] = ()


@dataclass(frozen=True)
class EntryQuery:
    """Filters for :meth:`BillingStore.query_entries`; ``None`` means any."""

    customer_id: str | None = None
    technician_id: str | None = None
    status: str | None = None
    started_from: datetime | None = None  # inclusive
    started_before: datetime | None = None  # exclusive
    invoice_id: str | None = None
    limit: int | None = None
    offset: int = 0
    with_details: bool = True  # False leaves ``details`` empty (cheap bulk reads)


@dataclass(frozen=True)
class CustomerBilling:
    """What an invoice needs to know about a customer."""

    customer_id: str
    legal_name: str
    address_lines: tuple[str, ...]
    postcode: str
    city: str
    country: str  # ISO 3166 alpha-2
    endpoint_id: str  # e-invoicing address (KvK number by default)
    endpoint_scheme: str  # 0106 = KvK
    payment_terms_days: int
    updated_at: datetime
    kvk: str | None = None
    vat_id: str | None = None
    email: str | None = None
    reverse_charge: bool = False  # EU business customer: "btw verlegd"
    reference: str = ""  # buyer reference on invoices; the customer's name when empty


@dataclass(frozen=True)
class PrepaidBlock:
    """A block of prepaid hours ("strippenkaart"), kept in minutes."""

    id: str
    customer_id: str
    minutes: int
    created_at: datetime
    created_by: str
    expires_on: date | None = None  # last day it may be drawn on
    note: str = ""


@dataclass(frozen=True)
class PrepaidBalance:
    block: PrepaidBlock
    used_minutes: int

    @property
    def remaining_minutes(self) -> int:
        return self.block.minutes - self.used_minutes


@dataclass(frozen=True)
class PrepaidDraw:
    """Minutes of one entry paid from one block (negative when a credit note undoes it)."""

    block_id: str
    entry_id: str
    minutes: int


@dataclass(frozen=True)
class InvoiceLineRecord:
    """One line as printed on the invoice: a snapshot, never recomputed."""

    position: int
    entry_id: str | None
    description: str
    supply_date: date
    technician: str
    request_ref: str | None
    actual_minutes: int
    billable_minutes: int
    prepaid_minutes: int
    unit_price: Decimal
    vat_code: str
    vat_percent: Decimal
    surcharges: tuple[str, ...]
    amount: Decimal


@dataclass(frozen=True)
class InvoiceDraft:
    """An invoice ready to be numbered and written by :meth:`BillingStore.create_invoice`.

    ``supplier`` and ``customer`` are snapshots of the parties (JSON-able), so the
    document never changes when their data does.
    """

    id: str
    customer_id: str
    issue_date: date
    due_date: date
    period_start: date
    period_end: date
    buyer_reference: str
    currency: str
    supplier: dict[str, Any]
    customer: dict[str, Any]
    total_excl_vat: Decimal
    vat_total: Decimal
    total_incl_vat: Decimal
    created_at: datetime
    created_by: str
    lines: tuple[InvoiceLineRecord, ...]
    entry_ids: tuple[str, ...]  # each must be approved and uninvoiced
    draws: tuple[PrepaidDraw, ...] = ()


@dataclass(frozen=True)
class CreditRequest:
    """A credit note for invoice ``original_id``: same lines, its own number."""

    id: str
    original_id: str
    issue_date: date
    created_at: datetime
    created_by: str
    reason: str


@dataclass(frozen=True)
class InvoiceRecord:
    """A numbered invoice or credit note as stored (``lines`` empty in listings)."""

    id: str
    number: str  # YYYY-NNNNNN, gap-free per year
    kind: str  # invoice | credit_note
    customer_id: str
    issue_date: date
    due_date: date
    period_start: date
    period_end: date
    buyer_reference: str
    currency: str
    supplier: dict[str, Any]
    customer: dict[str, Any]
    total_excl_vat: Decimal
    vat_total: Decimal
    total_incl_vat: Decimal
    created_at: datetime
    created_by: str
    credits_invoice_id: str | None = None  # the invoice a credit note cancels
    credited_by_id: str | None = None  # the credit note cancelling this invoice
    line_count: int = 0
    lines: tuple[InvoiceLineRecord, ...] = ()


class BillingStore(ABC):
    """Billing persistence; part of every :class:`relay.store.base.Store`."""

    # -- rate cards ------------------------------------------------------------------
    @abstractmethod
    async def add_rate_card(self, card: RateCardRecord) -> bool:
        """Store an imported card; False (nothing written) if its digest is stored."""

    @abstractmethod
    async def list_rate_cards(self) -> list[RateCardRecord]:
        """Every card ever imported, by effective date, then import time."""

    @abstractmethod
    async def get_rate_card(self, digest: str) -> RateCardRecord | None: ...

    # -- time entries ------------------------------------------------------------------
    @abstractmethod
    async def get_entry(self, entry_id: str) -> BillableEntry | None: ...

    @abstractmethod
    async def query_entries(self, query: EntryQuery) -> list[BillableEntry]:
        """Entries matching ``query``, by start time, then id."""

    @abstractmethod
    async def find_merge_target(
        self,
        customer_id: str,
        technician_id: str,
        agent_id: str,
        request: str | None,
        ended_since: datetime,
    ) -> BillableEntry | None:
        """The latest-ending draft entry made from sessions with these keys that
        ended at or after ``ended_since`` and was computed with a rate card."""

    @abstractmethod
    async def close_session_billed(self, close: SessionClose, merge: EntryUpdate | None) -> bool:
        """:meth:`Store.close_session`, where the session's time may join a draft.

        In one transaction: end the session; then, if ``merge`` is given and its
        entry is still a draft at ``merge.expected_revision``, replace that entry
        and append ``merge.history``; otherwise insert ``close.entry`` (if any).
        Idempotent: False and nothing written when the session is already ended."""

    @abstractmethod
    async def add_entry(
        self, entry: BillableEntry, history: Sequence[EntryEdit] = (), refuse_overlap: bool = False
    ) -> None:
        """Insert one entry with its history. With ``refuse_overlap``,
        :class:`ConflictError` (naming the other entry) if the technician has an
        entry whose time overlaps it."""

    @abstractmethod
    async def add_entries(self, entries: Sequence[BillableEntry]) -> None:
        """Insert many entries in one transaction (imports, benchmarks)."""

    @abstractmethod
    async def update_entry(self, update: EntryUpdate) -> BillableEntry:
        """Apply ``update``; :class:`ConflictError` if the entry changed meanwhile or
        is invoiced, :class:`NotFoundError` if unknown. Returns the stored entry."""

    @abstractmethod
    async def approve_entries(
        self, entry_ids: Sequence[str], actor: str, at: datetime
    ) -> list[str]:
        """Approve every draft among ``entry_ids`` in one transaction, with history;
        approved ones are left as they are. Returns the ids that changed.
        :class:`NotFoundError` for an unknown id, :class:`ConflictError` for an
        invoiced one; then nothing changes."""

    @abstractmethod
    async def list_entry_edits(self, entry_id: str) -> list[EntryEdit]:
        """The entry's history, oldest first."""

    # -- customers' billing data ---------------------------------------------------------
    @abstractmethod
    async def set_customer_billing(self, billing: CustomerBilling) -> None:
        """Insert or replace; ConflictError for an unknown customer."""

    @abstractmethod
    async def get_customer_billing(self, customer_id: str) -> CustomerBilling | None: ...

    # -- prepaid hours ---------------------------------------------------------------------
    @abstractmethod
    async def add_prepaid_block(self, block: PrepaidBlock) -> None: ...

    @abstractmethod
    async def prepaid_balances(self, customer_id: str) -> list[PrepaidBalance]:
        """The customer's blocks with what was drawn, oldest first."""

    # -- invoices ------------------------------------------------------------------------
    @abstractmethod
    async def next_invoice_number(self, year: int) -> int:
        """The sequence number the next document of ``year`` would get (a preview)."""

    @abstractmethod
    async def create_invoice(self, draft: InvoiceDraft) -> InvoiceRecord:
        """Number and write ``draft`` in one transaction: the next number of the
        issue year (gap-free, unique under concurrent creation), its lines, its
        entries marked invoiced, its prepaid draws. :class:`ConflictError` and
        nothing written if an entry is no longer approved and uninvoiced, or a
        prepaid block would be overdrawn."""

    @abstractmethod
    async def credit_invoice(self, request: CreditRequest) -> InvoiceRecord:
        """Write the credit note cancelling an invoice, in one transaction: numbered
        like an invoice, the original's lines and totals; the original's entries go
        back to approved (history kept) and its prepaid draws are reversed.
        :class:`NotFoundError` if unknown; :class:`ConflictError` if it is a credit
        note or already credited."""

    @abstractmethod
    async def get_invoice(self, ref: str) -> InvoiceRecord | None:
        """By id or number, with its lines."""

    @abstractmethod
    async def list_invoices(self, customer_id: str | None = None) -> list[InvoiceRecord]:
        """Most recent number first; lines are not loaded (see ``line_count``)."""
