"""The office's work: rate cards, customers' billing data, prepaid hours, invoices
and credit notes. Every change is written with its audit record."""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo

from relay.billing.exports import CsvDialect
from relay.billing.invoice import Period
from relay.billing.ratecard import RateCard
from relay.billing.ratecard_export import card_digest
from relay.billing.ratecard_parse import parse_rate_card
from relay.billing.ubl import Profile
from relay.model import (
    AuditEvent,
    Customer,
    CustomerBilling,
    InvoiceRecord,
    PrepaidBalance,
    PrepaidBlock,
    RateCardRecord,
    Technician,
)
from relay.services.documents import InvoiceTemplates
from relay.services.invoicing import Plan, credit_invoice, customer_party, plan_invoice, render
from relay.services.timekeeping import RateBook
from relay.settings import Settings
from relay.store.interface import Store
from shared.clock import Clock
from shared.errors import NotFoundError, UsageError

MAX_CARD = 60_000  # characters of TOML; one control message carries it
_CACHE_SIZE = 4
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
EU = frozenset(
    "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split()
)


def check_billing(b: CustomerBilling) -> CustomerBilling:
    """Refuse data an e-invoice could not carry; fills the KvK endpoint by default."""
    if not b.endpoint_id and b.kvk:
        b = replace(b, endpoint_id=b.kvk, endpoint_scheme=b.endpoint_scheme or "0106")
    missing = [
        flag
        for flag, value in (
            ("--legal-name", b.legal_name),
            ("--address", b.address_lines),
            ("--postcode", b.postcode),
            ("--city", b.city),
        )
        if not value
    ]
    if missing:
        raise UsageError(f"customer billing data needs {', '.join(missing)}")
    if b.country == "NL" and not b.kvk:
        raise UsageError("a Dutch customer needs its KvK number (--kvk)")
    if not b.endpoint_id or not b.endpoint_scheme:
        raise UsageError(
            "without a KvK number give the e-invoicing address: --endpoint ID "
            "--endpoint-scheme CODE (e.g. 0208 for a Belgian enterprise number)"
        )
    if b.reverse_charge and (not b.vat_id or b.country == "NL" or b.country not in EU):
        raise UsageError(
            "reverse charge is for business customers in another EU country, with a VAT id"
        )
    if b.email and not _EMAIL.fullmatch(b.email):
        raise UsageError(f"{b.email!r} is not an e-mail address")
    try:
        customer_party(b)
    except UsageError as exc:
        raise UsageError(str(exc).replace("party ", "customer ", 1)) from None
    return b


class Office:
    """Rate cards, billing data, prepaid hours and invoices of the relay."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        settings: Settings,
        book: RateBook,
        templates: InvoiceTemplates | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self.book = book
        self.templates = templates or InvoiceTemplates(None)
        # Invoices never change, so their renderings can be kept (the company's
        # template and logo may: their version is part of the key).
        self._rendered: OrderedDict[tuple[object, ...], tuple[str, bytes]] = OrderedDict()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.settings.company.timezone)

    # -- rate cards --------------------------------------------------------------------
    async def import_card(
        self, actor: Technician, body: str, source: str
    ) -> tuple[RateCardRecord, RateCard, bool, bool]:
        """Store a rate card verbatim; refused with file, line and reason when
        malformed (the card in force stays in force). Returns the record, the card,
        whether it was new, and whether it is in force now."""
        if not body.strip():
            raise UsageError(f"{source} is empty")
        if len(body) > MAX_CARD:
            raise UsageError(f"{source} is longer than {MAX_CARD} characters")
        card = parse_rate_card(body, source)
        now = self.clock.now()
        digest = card_digest(card)
        record = RateCardRecord(digest, card.effective_from, card.name, body, source, now, actor.id)
        detail = {"effective_from": card.effective_from.isoformat()}
        audit = AuditEvent(now, "rates_import", actor.id, digest, detail)
        added = await self.store.add_rate_card(record, audit=(audit,))
        found = await self.book.in_force(now)
        return record, card, added, found is not None and found[0].digest == digest

    async def cards(
        self,
    ) -> tuple[list[RateCardRecord], set[str], tuple[RateCardRecord, RateCard] | None]:
        """Every imported card, the digests still current, and the card in force."""
        current = {r.digest for r, _ in await self.book.current()}
        found = await self.book.in_force(self.clock.now())
        return await self.store.list_rate_cards(), current, found

    async def card(self, digest: str | None) -> RateCardRecord:
        """The card ``digest``, or the one in force now."""
        if digest:
            record = await self.store.get_rate_card(digest)
        else:
            found = await self.book.in_force(self.clock.now())
            record = found[0] if found else None
        if record is None:
            raise NotFoundError(
                "no such rate card; with none imported the relay bills at its [billing] "
                "default rate"
            )
        return record

    # -- customers' billing data and prepaid hours ----------------------------------------
    async def billing_of(self, customer: Customer) -> CustomerBilling | None:
        return await self.store.get_customer_billing(customer.id)

    async def set_billing(
        self, actor: Technician, customer: Customer, changes: dict[str, Any]
    ) -> CustomerBilling:
        """Change the fields in ``changes``; the result must be invoiceable."""
        now = self.clock.now()
        current = await self.store.get_customer_billing(customer.id)
        base = current or CustomerBilling(
            customer.id, "", (), "", "", "NL", "", "0106", 14, now, reference=""
        )
        updated = check_billing(replace(base, **changes, updated_at=now))
        detail = {"fields": sorted(changes)}
        audit = AuditEvent(now, "customer_billing", actor.id, customer.id, detail)
        await self.store.set_customer_billing(updated, audit=(audit,))
        return updated

    async def add_prepaid(self, actor: Technician, block: PrepaidBlock) -> None:
        if block.expires_on is not None and block.expires_on < self.today():
            raise UsageError(f"the block would have expired already ({block.expires_on})")
        detail = {"minutes": block.minutes}
        audit = AuditEvent(block.created_at, "prepaid_add", actor.id, block.id, detail)
        await self.store.add_prepaid_block(block, audit=(audit,))

    async def balances(self, customer: Customer) -> list[PrepaidBalance]:
        return await self.store.prepaid_balances(customer.id)

    def today(self) -> Any:
        """The company's local date now."""
        return self.clock.now().astimezone(self.zone).date()

    # -- invoices ------------------------------------------------------------------------
    async def plan(
        self, actor: Technician, customer: Customer, period: Period, reference: str | None
    ) -> Plan:
        """The invoice as it would be written now (nothing is written)."""
        return await plan_invoice(
            self.store,
            self.settings.company,
            customer,
            period,
            reference=reference,
            actor=actor.id,
            now=self.clock.now(),
        )

    async def create_invoice(self, actor: Technician, plan: Plan) -> InvoiceRecord:
        """Number and write a planned invoice, with its audit record."""
        draft = plan.draft
        detail = {"customer": draft.customer_id}
        audit = AuditEvent(self.clock.now(), "invoice_create", actor.id, draft.id, detail)
        return await self.store.create_invoice(draft, audit=(audit,))

    async def invoices(self, customer: Customer | None) -> list[InvoiceRecord]:
        return await self.store.list_invoices(customer.id if customer else None)

    async def credit(
        self, actor: Technician, ref: str, reason: str
    ) -> tuple[InvoiceRecord, InvoiceRecord, str]:
        """The credit note cancelling invoice ``ref``, that invoice, and its customer's name."""
        now = self.clock.now()
        note, original = await credit_invoice(self.store, ref, reason, actor.id, now, self.zone)
        customer = await self.store.get_customer(note.customer_id)
        return note, original, customer.name if customer else note.customer_id

    async def rendered(
        self, ref: str, fmt: str, profile: Profile, dialect: CsvDialect = "rfc4180"
    ) -> tuple[str, bytes]:
        """The stored invoice ``ref`` as ``fmt``: its number and the bytes."""
        key = (ref, fmt, profile, dialect, self.templates.version())
        if key not in self._rendered:
            record, data = await render(
                self.store, ref, fmt, profile, dialect=dialect, templates=self.templates
            )
            self._rendered[key] = (record.number, data)
            while len(self._rendered) > _CACHE_SIZE:
                self._rendered.popitem(last=False)
        self._rendered.move_to_end(key)
        return self._rendered[key]
