"""The relay's storage interface: small and shaped like the domain.

Implementations live beside this module (``sqlite/``; ``postgres/`` later, with the
same module names) and all pass one compliance suite (``tests/store/``). Business
rules stay in Python: the store persists and queries, it never decides what is
billable. The records it persists are those of :mod:`relay.model`.

Three abstract parts make one :class:`Store`: the directory and sessions
(:class:`CoreStore`), diagnostics and help requests (:class:`DiagnosticsStore`),
billing (:class:`BillingStore`).

Every method that changes state takes a keyword-only ``audit``: the
:class:`AuditEvent` records describing the change, appended in the same transaction
as the change itself. If the change fails (an exception) or finds nothing to do (a
method returning False, None or nothing changed), nothing is written: audit
records are written only when the change is. :meth:`CoreStore.audit` appends a
record on its own, for refusals that change nothing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from relay.model import (
    Agent,
    AuditEvent,
    AuditRecord,
    BillableEntry,
    CompanyDetails,
    CreditRequest,
    Customer,
    CustomerBilling,
    EnrollToken,
    EntryEdit,
    EntryQuery,
    EntryUpdate,
    HelpRequest,
    InvoiceDraft,
    InvoiceRecord,
    Keyset,
    PrepaidBalance,
    PrepaidBlock,
    PrepaidTerms,
    RateCardRecord,
    Session,
    SessionBeat,
    SessionClose,
    SnapshotRecord,
    SupportCode,
    Technician,
    TechnicianChange,
    TimeEntry,
)
from shared.errors import ConflictError


class OverlapError(ConflictError):
    """Time entry ``entry_id`` (``source``: session or manual) of the same
    technician overlaps the time being written."""

    def __init__(self, message: str, entry_id: str, source: str) -> None:
        super().__init__(message)
        self.entry_id = entry_id
        self.source = source


class CoreStore(ABC):
    """Customers, technicians, tokens, agents, sessions, time entries, audit."""

    #: Told of every write transaction: seconds from asking to commit or failure, and
    #: whether it committed (metrics; set by the composition root, None: nobody asks).
    write_observer: Callable[[float, bool], None] | None = None

    # -- lifecycle -----------------------------------------------------------
    @abstractmethod
    async def open(self) -> None:
        """Connect and apply pending migrations."""

    @abstractmethod
    async def close(self) -> None:
        """Release the connection; idempotent."""

    @property
    @abstractmethod
    def write_transactions(self) -> int:
        """Write transactions committed since :meth:`open` (migrations not counted),
        whether or not they found anything to change; for status output and
        benchmarks. A failed, rolled-back write does not count."""

    # -- relay metadata --------------------------------------------------------
    @abstractmethod
    async def get_meta(self, key: str) -> str | None:
        """A relay-wide setting stored at init (e.g. ``relay_id``)."""

    @abstractmethod
    async def set_meta(self, key: str, value: str) -> None:
        """Insert or replace a relay-wide setting."""

    # -- customers -------------------------------------------------------------
    @abstractmethod
    async def add_customer(self, customer: Customer, *, audit: Sequence[AuditEvent] = ()) -> None:
        """Insert; :class:`ConflictError` if the name (case-insensitive) exists."""

    @abstractmethod
    async def get_customer(self, customer_id: str) -> Customer | None: ...

    @abstractmethod
    async def find_customer(self, name: str) -> Customer | None:
        """By name, case-insensitive."""

    @abstractmethod
    async def list_customers(self, page: Keyset | None = None) -> list[Customer]:
        """All customers ordered by name, then id; with ``page``, one page of them
        (sort key: name, id; scope: the customer's own id)."""

    # -- technicians -------------------------------------------------------------
    @abstractmethod
    async def add_technician(
        self, technician: Technician, token_hash: str, *, audit: Sequence[AuditEvent] = ()
    ) -> None:
        """Insert with the hash of its API token; ConflictError on a duplicate name."""

    @abstractmethod
    async def technician_by_token(self, token_hash: str) -> Technician | None:
        """The enabled technician holding this token, else None."""

    @abstractmethod
    async def technician_holding(self, token_hash: str) -> Technician | None:
        """The technician holding this token, disabled or not, else None."""

    @abstractmethod
    async def update_technician(
        self, technician_id: str, change: TechnicianChange, *, audit: Sequence[AuditEvent] = ()
    ) -> bool:
        """Apply ``change`` (None fields stay) in one transaction with ``audit``; False
        (nothing written) if unknown; ConflictError for a token in use or an unknown
        customer in the scope."""

    @abstractmethod
    async def stamp_token_expiry(
        self, expires_at: datetime, *, audit: Sequence[AuditEvent] = ()
    ) -> int:
        """Give every technician token without an expiry ``expires_at``; how many
        got it (``audit`` is written only when some did)."""

    @abstractmethod
    async def get_technician(self, technician_id: str) -> Technician | None: ...

    @abstractmethod
    async def list_technicians(self, page: Keyset | None = None) -> list[Technician]:
        """All technicians ordered by name, then id; with ``page``, one page of
        them (sort key: name, id; ``customer_ids`` is ignored)."""

    # -- enrollment tokens -------------------------------------------------------
    @abstractmethod
    async def add_enroll_token(
        self, token: EnrollToken, token_hash: str, *, audit: Sequence[AuditEvent] = ()
    ) -> None:
        """Insert; ConflictError on a duplicate id or token, or an unknown customer."""

    @abstractmethod
    async def consume_enroll_token(
        self, token_hash: str, now: datetime, *, audit: Sequence[AuditEvent] = ()
    ) -> EnrollToken | None:
        """Atomically use one use of a live token (not revoked, not expired, uses
        left) and return it as it was before; None if unknown or not usable (then
        nothing is written: audit records are written only when the change is)."""

    @abstractmethod
    async def revoke_enroll_token(self, token_id: str, *, audit: Sequence[AuditEvent] = ()) -> bool:
        """Mark revoked; False if unknown (no audit: audit records are written only
        when the change is)."""

    @abstractmethod
    async def list_enroll_tokens(self, page: Keyset | None = None) -> list[EnrollToken]:
        """All tokens, newest first; with ``page``, one page of them (sort key:
        created_at, id, descending)."""

    @abstractmethod
    async def set_customer_policy(
        self, customer_id: str, policy: dict[str, Any], *, audit: Sequence[AuditEvent] = ()
    ) -> bool:
        """Replace a customer's session policy; False if unknown (no audit: audit
        records are written only when the change is)."""

    # -- support codes -------------------------------------------------------------
    @abstractmethod
    async def add_support_code(
        self, code: SupportCode, code_hash: str, *, audit: Sequence[AuditEvent] = ()
    ) -> None:
        """Insert; ConflictError on a duplicate id or code, or an unknown customer."""

    @abstractmethod
    async def consume_support_code(
        self, code_hash: str, now: datetime, *, audit: Sequence[AuditEvent] = ()
    ) -> SupportCode | None:
        """Atomically use a live code (unused, not expired) and return it as it was
        before; None if unknown, used or expired (then nothing is written: audit
        records are written only when the change is)."""

    # -- agents ------------------------------------------------------------------
    @abstractmethod
    async def add_agent(self, agent: Agent, *, audit: Sequence[AuditEvent] = ()) -> None:
        """Insert; ConflictError if the id exists."""

    @abstractmethod
    async def get_agent(self, agent_id: str) -> Agent | None: ...

    @abstractmethod
    async def list_agents(self, page: Keyset | None = None) -> list[Agent]:
        """All agents (revoked included) ordered by name, then id; with ``page``,
        one page of them (sort key: name, id)."""

    @abstractmethod
    async def revoke_agent(self, agent_id: str, *, audit: Sequence[AuditEvent] = ()) -> bool:
        """Mark revoked; False if unknown (no audit: audit records are written only
        when the change is)."""

    @abstractmethod
    async def set_agent_policy(
        self, agent_id: str, policy: dict[str, Any], *, audit: Sequence[AuditEvent] = ()
    ) -> bool:
        """Replace an agent's policy overrides; False if unknown (no audit: audit
        records are written only when the change is)."""

    @abstractmethod
    async def touch_agent(self, agent_id: str, at: datetime) -> None:
        """Record that the agent linked or was seen at ``at``."""

    # -- sessions ------------------------------------------------------------------
    @abstractmethod
    async def add_session(self, session: Session, *, audit: Sequence[AuditEvent] = ()) -> None:
        """Insert a new session row (state ``requested``)."""

    @abstractmethod
    async def get_session(self, session_id: str) -> Session | None: ...

    @abstractmethod
    async def set_session_state(
        self,
        session_id: str,
        state: str,
        started_at: datetime | None = None,
        *,
        audit: Sequence[AuditEvent] = (),
    ) -> bool:
        """Move an open session to ``state`` (and set ``started_at`` when given).
        False if the session is unknown or already ended (no audit: audit records
        are written only when the change is)."""

    @abstractmethod
    async def heartbeat_sessions(self, beats: list[SessionBeat]) -> None:
        """Persist ``last_seen_at``, byte counters and active minutes of open
        sessions in one transaction; beats for ended or unknown sessions are skipped."""

    @abstractmethod
    async def close_session(self, close: SessionClose, *, audit: Sequence[AuditEvent] = ()) -> bool:
        """End an open session and insert its time entry (and ``audit``), in one
        transaction.

        Idempotent: returns False and writes nothing if the session is already
        ended (or unknown), not even ``audit``: audit records are written only when
        the change is."""

    @abstractmethod
    async def open_sessions(self, relay_node: str | None = None) -> list[Session]:
        """Sessions not yet ended (of one node when given), oldest first."""

    @abstractmethod
    async def list_sessions(self, limit: int = 200, page: Keyset | None = None) -> list[Session]:
        """Most recent sessions first: ``limit`` of them, or with ``page`` one page
        (sort key: created_at, id, descending)."""

    # -- time entries ------------------------------------------------------------------
    @abstractmethod
    async def list_time_entries(self, limit: int = 1000) -> list[TimeEntry]:
        """Most recent entries first."""

    @abstractmethod
    async def get_time_entry(self, entry_id: str) -> TimeEntry | None: ...

    # -- audit ---------------------------------------------------------------------------
    @abstractmethod
    async def audit(
        self, at: datetime, event: str, actor: str, subject: str = "", **detail: Any
    ) -> None:
        """Append one audit record on its own (never updated or deleted): for
        refusals that change nothing. A change passes its records as ``audit=``."""

    @abstractmethod
    async def append_audit(self, records: Sequence[AuditEvent]) -> None:
        """Append ``records`` on their own, in one transaction (counted refusals)."""

    @abstractmethod
    async def list_audit(
        self,
        limit: int = 200,
        *,
        offset: int = 0,
        before: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        actor: str | None = None,
        event: str | None = None,
        subject: str | None = None,
    ) -> list[AuditRecord]:
        """Most recently appended first, skipping ``offset`` (or, for keyset pages,
        starting below record id ``before``); each filter given must match exactly
        (``since`` ≤ at < ``until``)."""


class DiagnosticsStore(ABC):
    """Diagnostics snapshots and help requests."""

    @abstractmethod
    async def add_snapshot(
        self, record: SnapshotRecord, keep: int, *, audit: Sequence[AuditEvent] = ()
    ) -> int:
        """Insert (``record.id`` is ignored) and return the new id. Keeps at most
        ``keep`` snapshots per agent: older ones not tied to a session or request
        are deleted in the same transaction."""

    @abstractmethod
    async def get_snapshot(self, snapshot_id: int) -> SnapshotRecord | None: ...

    @abstractmethod
    async def list_snapshots(
        self,
        agent_id: str | None = None,
        session_id: str | None = None,
        limit: int = 50,
        page: Keyset | None = None,
    ) -> list[SnapshotRecord]:
        """Newest first, filtered by agent and/or session: ``limit`` of them, or with
        ``page`` one page (sort key: id, descending; ``customer_ids`` is ignored)."""

    @abstractmethod
    async def worst_findings(self) -> dict[str, str | None]:
        """agent id → the worst severity in its latest snapshot."""

    @abstractmethod
    async def add_help_request(
        self, request: HelpRequest, *, audit: Sequence[AuditEvent] = ()
    ) -> int:
        """Insert (``request.id`` is ignored) and return its number. The number is
        known only inside the write, so ``{number}`` in an audit record's subject is
        replaced by it (``REQ-{number}`` → ``REQ-42``)."""

    @abstractmethod
    async def get_help_request(self, number: int) -> HelpRequest | None: ...

    @abstractmethod
    async def list_help_requests(
        self, states: tuple[str, ...] | None = None, agent_id: str | None = None
    ) -> list[HelpRequest]:
        """Oldest first."""

    @abstractmethod
    async def help_request_queue(self, states: tuple[str, ...], page: Keyset) -> list[HelpRequest]:
        """One page of the requests in ``states``, urgent first, then oldest first
        (sort key: 0 when urgent else 1, created_at, number)."""

    @abstractmethod
    async def count_help_requests(self, agent_id: str, states: tuple[str, ...]) -> int:
        """How many of the agent's requests are in ``states``."""

    @abstractmethod
    async def update_help_request(
        self,
        number: int,
        expected_state: str,
        *,
        audit: Sequence[AuditEvent] = (),
        **changes: Any,
    ) -> bool:
        """Apply ``changes`` (state, assigned_to, resolution, updated_at) only if the
        request is still in ``expected_state``; False otherwise (someone was faster),
        and then no audit: audit records are written only when the change is.
        ``audit`` is never a column to change."""


class BillingStore(ABC):
    """Billing persistence; part of every :class:`Store`."""

    # -- rate cards ------------------------------------------------------------------
    @abstractmethod
    async def add_rate_card(
        self, card: RateCardRecord, *, audit: Sequence[AuditEvent] = ()
    ) -> bool:
        """Store an imported card; False (nothing written, no audit) if its digest
        is stored."""

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
    async def close_session_billed(
        self, close: SessionClose, merge: EntryUpdate | None, *, audit: Sequence[AuditEvent] = ()
    ) -> bool:
        """:meth:`Store.close_session`, where the session's time may join a draft.

        In one transaction: end the session; then, if ``merge`` is given and its
        entry is still a draft at ``merge.expected_revision``, replace that entry
        and append ``merge.history``; otherwise insert ``close.entry`` (if any).
        Idempotent: False and nothing written when the session is already ended,
        not even ``audit``: audit records are written only when the change is."""

    @abstractmethod
    async def add_entry(
        self,
        entry: BillableEntry,
        history: Sequence[EntryEdit] = (),
        refuse_overlap: bool = False,
        *,
        audit: Sequence[AuditEvent] = (),
    ) -> None:
        """Insert one entry with its history. With ``refuse_overlap``,
        :class:`OverlapError` (naming the other entry) if the technician has an
        entry whose time overlaps it."""

    @abstractmethod
    async def add_entries(self, entries: Sequence[BillableEntry]) -> None:
        """Insert many entries in one transaction (imports, benchmarks)."""

    @abstractmethod
    async def update_entry(
        self,
        update: EntryUpdate,
        *,
        audit: Sequence[AuditEvent] = (),
        refuse_overlap: tuple[datetime, datetime] | None = None,
    ) -> BillableEntry:
        """Apply ``update``; :class:`ConflictError` if the entry changed meanwhile or
        is invoiced, :class:`NotFoundError` if unknown. With ``refuse_overlap``
        (start, end), :class:`OverlapError` if another entry of the technician
        overlaps that time. Returns the stored entry."""

    @abstractmethod
    async def approve_entries(
        self,
        entry_ids: Sequence[str],
        actor: str,
        at: datetime,
        *,
        audit: Sequence[AuditEvent] = (),
    ) -> list[str]:
        """Approve every draft among ``entry_ids`` in one transaction, with history;
        approved ones are left as they are. Returns the ids that changed; when none
        did, no audit is written (audit records are written only when the change
        is). :class:`NotFoundError` for an unknown id, :class:`ConflictError` for an
        invoiced one; then nothing changes."""

    @abstractmethod
    async def list_entry_edits(self, entry_id: str) -> list[EntryEdit]:
        """The entry's history, oldest first."""

    # -- customers' billing data ---------------------------------------------------------
    @abstractmethod
    async def set_customer_billing(
        self, billing: CustomerBilling, *, audit: Sequence[AuditEvent] = ()
    ) -> None:
        """Insert or replace; ConflictError for an unknown customer."""

    @abstractmethod
    async def get_customer_billing(self, customer_id: str) -> CustomerBilling | None: ...

    # -- the company's own data -------------------------------------------------------------
    @abstractmethod
    async def set_company(
        self, company: CompanyDetails, *, audit: Sequence[AuditEvent] = ()
    ) -> None:
        """Insert or replace the company's data (there is one row)."""

    @abstractmethod
    async def get_company(self) -> CompanyDetails | None:
        """The company's data, or None before it was first set."""

    # -- prepaid hours ---------------------------------------------------------------------
    @abstractmethod
    async def add_prepaid_block(
        self, block: PrepaidBlock, *, audit: Sequence[AuditEvent] = ()
    ) -> None:
        """Insert, keeping ``block.first_day`` as its ``valid_from``; ConflictError on
        a duplicate id or an unknown customer."""

    @abstractmethod
    async def prepaid_balances(self, customer_id: str) -> list[PrepaidBalance]:
        """The customer's blocks with what was drawn, oldest first."""

    @abstractmethod
    async def set_prepaid_terms(
        self, terms: PrepaidTerms, *, audit: Sequence[AuditEvent] = ()
    ) -> None:
        """Insert or replace a customer's prepaid terms; ConflictError for an unknown
        customer."""

    @abstractmethod
    async def get_prepaid_terms(self, customer_id: str) -> PrepaidTerms | None:
        """The customer's own prepaid terms, if any were set."""

    # -- invoices ------------------------------------------------------------------------
    @abstractmethod
    async def next_invoice_number(self, year: int) -> int:
        """The sequence number the next document of ``year`` would get (a preview)."""

    @abstractmethod
    async def create_invoice(
        self, draft: InvoiceDraft, *, audit: Sequence[AuditEvent] = ()
    ) -> InvoiceRecord:
        """Number and write ``draft`` in one transaction: the next number of the
        issue year (gap-free, unique under concurrent creation), its lines, notes
        and prepaid balance, its entries marked invoiced, its prepaid draws.
        :class:`ConflictError` and nothing written if an entry is no longer
        approved and uninvoiced, or a prepaid block would be overdrawn."""

    @abstractmethod
    async def credit_invoice(
        self, request: CreditRequest, *, audit: Sequence[AuditEvent] = ()
    ) -> InvoiceRecord:
        """Write the credit note cancelling an invoice, in one transaction: numbered
        like an invoice, the original's lines and totals; the original's entries go
        back to approved (history kept) and its prepaid draws are reversed.
        :class:`NotFoundError` if unknown; :class:`ConflictError` if it is a credit
        note or already credited."""

    @abstractmethod
    async def get_invoice(self, ref: str) -> InvoiceRecord | None:
        """By id or number, with its lines."""

    @abstractmethod
    async def list_invoices(
        self, customer_id: str | None = None, page: Keyset | None = None
    ) -> list[InvoiceRecord]:
        """Most recent number first; lines are not loaded (see ``line_count``). With
        ``page``, one page (sort key: year, sequence, descending)."""


class Store(CoreStore, DiagnosticsStore, BillingStore, ABC):
    """Persistence for one relay (or a cluster sharing one database)."""
