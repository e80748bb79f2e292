"""Every record the relay keeps, apart from how it is stored.

The services build and read these; the store (:mod:`relay.store.interface`)
persists them; the pure rules (``relay.core``, ``relay.billing``) compute with
them. This module imports nothing of the relay.

All datetimes are timezone-aware UTC; calendar dates (``date``) are days in the
company's time zone. Money is ``Decimal``. Tokens are kept only as their SHA-256
hex digest (``token_hash``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from shared.errors import UsageError

# -- directory and sessions --------------------------------------------------


@dataclass(frozen=True)
class Keyset:
    """One page of a list the store reads: at most ``limit`` rows in the list's own
    order, starting after the row whose sort key is ``after`` (None: from the top),
    of the customers in ``customer_ids`` only when it is given (a technician's
    scope, so that a page is never filled with rows the caller may not see)."""

    limit: int
    after: tuple[Any, ...] | None = None
    customer_ids: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Customer:
    id: str
    name: str
    created_at: datetime
    policy: dict[str, Any] = field(default_factory=dict)  # session policy (see relay.core.policy)


@dataclass(frozen=True)
class Technician:
    id: str
    name: str
    level: int  # expertise level 1..3
    role: str  # technician | billing | admin
    customer_ids: tuple[str, ...]  # scope; admins and billing see every customer
    created_at: datetime
    disabled: bool = False
    #: When the API token stops working; None until the relay stamps tokens made
    #: before expiry existed (it does at start, with ``limits.technician_token_days``).
    token_expires_at: datetime | None = None
    #: What an admin lets a billing login read beyond metadata (see
    #: :data:`relay.core.authorization.GRANTS`).
    grants: tuple[str, ...] = ()


@dataclass(frozen=True)
class TechnicianChange:
    """What to change on a technician in one write; None leaves a field as it is.
    A new token comes as its hash with its expiry."""

    disabled: bool | None = None
    level: int | None = None
    customer_ids: tuple[str, ...] | None = None
    grants: tuple[str, ...] | None = None
    token_hash: str | None = None
    token_expires_at: datetime | None = None


@dataclass(frozen=True)
class EnrollToken:
    id: str
    customer_id: str
    expires_at: datetime
    uses_left: int
    created_by: str  # technician id
    created_at: datetime
    revoked: bool = False


@dataclass(frozen=True)
class Agent:
    id: str
    name: str
    customer_id: str
    identity_key: str  # OpenSSH public key line
    host_key: str  # OpenSSH public key line
    enrolled_at: datetime
    revoked: bool = False
    last_seen_at: datetime | None = None
    policy: dict[str, Any] = field(default_factory=dict)  # overrides the customer's
    ephemeral: bool = False  # a support-code agent: its identity dies with its process


@dataclass(frozen=True)
class SupportCode:
    id: str
    customer_id: str
    request: str | None
    expires_at: datetime
    created_by: str  # technician id
    created_at: datetime
    used_at: datetime | None = None


@dataclass(frozen=True)
class Session:
    id: str
    agent_id: str
    technician_id: str
    customer_id: str
    kind: str  # exec | shell | proxy | …
    state: str  # shared.protocol.session_state.State value
    created_at: datetime
    relay_node: str
    started_at: datetime | None = None  # when both tunnel ends were paired
    last_seen_at: datetime | None = None  # heartbeat while active
    ended_at: datetime | None = None
    end_reason: str | None = None
    bytes_to_agent: int = 0
    bytes_to_technician: int = 0
    active_minutes: int = 0  # minutes with traffic
    traffic_minutes: tuple[int, ...] = ()  # which minutes (from started_at) had traffic
    request: str | None = None  # the help request (REQ-n) or outside reference
    #: Seconds of the session during which the relay could not write its database
    #: (it kept the time in memory and wrote the end when it could).
    store_gap_seconds: int = 0
    #: Stretches of a minute or more without payload, flat (from, to, …) seconds
    #: from ``started_at``; None for sessions recorded before the relay kept them.
    quiet: tuple[int, ...] | None = None


@dataclass(frozen=True)
class TimeEntry:
    id: str
    session_ids: tuple[str, ...]
    customer_id: str
    agent_id: str
    technician_id: str
    started_at: datetime
    ended_at: datetime
    actual_seconds: int
    billable_minutes: int
    hourly_rate: Decimal
    amount: Decimal
    status: str  # draft | approved | invoiced
    created_at: datetime
    service_type: str = "remote_support"
    request: str | None = None  # the help request (REQ-n) or outside reference
    notes: str = ""
    details: dict[str, Any] = field(default_factory=dict)  # how the figures were derived


@dataclass(frozen=True)
class SessionBeat:
    """A heartbeat of an active session: what the relay has seen so far.
    ``last_seen_at=None`` keeps the stored value."""

    session_id: str
    last_seen_at: datetime | None
    bytes_to_agent: int
    bytes_to_technician: int
    active_minutes: int
    traffic_minutes: tuple[int, ...] = ()
    quiet: tuple[int, ...] | None = None  # None keeps the stored value


@dataclass(frozen=True)
class SessionClose:
    """Everything written when a session ends, in one transaction."""

    session_id: str
    state: str
    end_reason: str
    ended_at: datetime
    last_seen_at: datetime | None
    bytes_to_agent: int
    bytes_to_technician: int
    active_minutes: int
    entry: TimeEntry | None  # None when the session never became active
    traffic_minutes: tuple[int, ...] = ()
    store_gap_seconds: int = 0
    quiet: tuple[int, ...] | None = None  # None keeps the stored value


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: datetime
    event: str  # e.g. enroll, enroll_refused, login_failed, session_open, cert_issued
    actor: str  # technician id, agent id, "relay" or "anonymous"
    subject: str  # what it was about (ids), may be empty
    detail: dict[str, Any]


@dataclass(frozen=True)
class AuditEvent:
    """An audit record to append: written by the store in the same transaction as
    the change it records (or alone, for a refusal that changes nothing)."""

    at: datetime
    event: str
    actor: str
    subject: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


# -- diagnostics and help requests ----------------------------------------


@dataclass(frozen=True)
class SnapshotRecord:
    id: int
    agent_id: str
    taken_at: datetime
    received_at: datetime
    kind: str  # refresh | session_start | session_end | help
    session_id: str | None = None
    request_id: int | None = None
    worst: str | None = None  # most severe finding: critical | warning | info
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HelpRequest:
    id: int  # the number the client and technicians use
    agent_id: str
    customer_id: str
    text: str
    urgent: bool
    state: str  # open | assigned | in_progress | resolved | cancelled
    created_at: datetime
    updated_at: datetime
    assigned_to: str | None = None  # technician id
    resolution: str | None = None
    snapshot_id: int | None = None


# -- billing ------------------------------------------------------------

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
    after: tuple[datetime, str] | None = None  # (started_at, id) of the last entry seen
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
    # Why a business in another EU country (valid VAT id) is charged Dutch VAT instead
    # of reverse charge; without one such a customer must be reverse-charged.
    no_reverse_charge_reason: str = ""


@dataclass(frozen=True)
class CompanyDetails:
    """The company's own data as the supplier on invoices, set with ``qp company set``.

    Until it is first set, relay.toml's ``[company]`` values stand in; the time zone
    and the standard VAT rate stay there.
    """

    legal_name: str
    address_lines: tuple[str, ...]  # one or two lines
    postcode: str
    city: str
    country: str  # ISO 3166 alpha-2
    kvk: str
    vat_id: str
    iban: str
    email: str
    payment_means: str  # 58 SEPA credit transfer, 30 credit transfer
    updated_at: datetime
    updated_by: str  # technician id


@dataclass(frozen=True)
class PrepaidBlock:
    """A block of prepaid hours ("strippenkaart"), kept in minutes. It pays for work
    supplied from :attr:`first_day` up to and including ``expires_on``."""

    id: str
    customer_id: str
    minutes: int
    created_at: datetime
    created_by: str
    expires_on: date | None = None  # last day of work it may pay for
    note: str = ""
    valid_from: date | None = None  # first day of work it may pay for (see first_day)

    @property
    def first_day(self) -> date:
        """``valid_from``; unset, the (UTC) day the block was bought. The store
        always keeps a date."""
        return self.valid_from if self.valid_from is not None else self.created_at.date()


@dataclass(frozen=True)
class PrepaidTerms:
    """A customer's own prepaid settings; ``None`` keeps the relay's ``[billing]``
    default (``prepaid_pays``, ``prepaid_warn_below_hours``)."""

    customer_id: str
    updated_at: datetime
    updated_by: str
    pays: str | None = None  # base | all: what prepaid hours pay of surcharges
    warn_below_minutes: int | None = None  # a balance below this is low (0: never)


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
    notes: tuple[str, ...] = ()  # printed on the document (prepaid hours, their balance)
    prepaid_left_minutes: int | None = None  # balance after this invoice; None: no blocks


@dataclass(frozen=True)
class CreditRequest:
    """A credit note for invoice ``original_id``: same lines, its own number."""

    id: str
    original_id: str
    issue_date: date
    created_at: datetime
    created_by: str
    reason: str


def format_number(year: int, seq: int) -> str:
    """The invoice number for the ``seq``-th document of ``year``: ``2026-000123``.

    The store guarantees a gap-free sequence per year; this only fixes the format.
    """
    if not 1000 <= year <= 9999:
        raise UsageError(f"invoice year {year} is not a four-digit year")
    if not 1 <= seq <= 999_999:
        raise UsageError(f"invoice sequence {seq} is outside 1..999999")
    return f"{year:04d}-{seq:06d}"


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
    notes: tuple[str, ...] = ()  # as on InvoiceDraft; none on credit notes
    prepaid_left_minutes: int | None = None
