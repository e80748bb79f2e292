"""The office's work: rate cards, customers' billing data, the company's own data,
prepaid hours, invoices and credit notes. Every change is written with its audit
record."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from relay.billing.exports import CsvDialect
from relay.billing.invoice import STANDARD, Period
from relay.billing.parties import (
    HOME,
    check_country,
    check_kvk,
    check_party,
    check_vat_id,
    derived_endpoint,
    follow_endpoint,
)
from relay.billing.prepaid import PAYS, Terms, terms_for
from relay.billing.ratecard import RateCard
from relay.billing.ratecard_export import card_digest
from relay.billing.ratecard_parse import parse_rate_card
from relay.billing.ubl import Profile
from relay.billing.vat import customer_vat, is_eu_business
from relay.model import (
    AuditEvent,
    Customer,
    CustomerBilling,
    InvoiceRecord,
    Keyset,
    PrepaidBalance,
    PrepaidBlock,
    PrepaidTerms,
    RateCardRecord,
    Technician,
)
from relay.services.company import CompanyData
from relay.services.documents import InvoiceTemplates
from relay.services.invoicing import Plan, credit_invoice, customer_party, plan_invoice, render
from relay.services.live_settings import LiveSettings, as_live
from relay.services.prepaid import relay_terms
from relay.services.timekeeping import RateBook
from relay.settings import Settings
from relay.store.interface import Store
from shared.clock import Clock
from shared.errors import NotFoundError, UsageError

MAX_CARD = 60_000  # characters of TOML; one control message carries it
_CACHE_SIZE = 4


def check_billing(b: CustomerBilling) -> CustomerBilling:
    """Refuse data an e-invoice could not carry or an accountant would not accept;
    the identifiers come back normalised, and the e-invoicing address is filled from
    the customer's own numbers (KvK, else a Belgian VAT id) when none is given."""
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
    b = replace(
        b,
        country=check_country(b.country),
        kvk=check_kvk(b.kvk) if b.kvk else None,
        vat_id=check_vat_id(b.vat_id) if b.vat_id else None,
    )
    if b.country == HOME and not b.kvk:
        raise UsageError("a Dutch customer needs its KvK number (--kvk)")
    if not b.endpoint_id and (derived := derived_endpoint(b)) is not None:
        b = replace(b, endpoint_scheme=derived[0], endpoint_id=derived[1])
    if not b.endpoint_id or not b.endpoint_scheme:
        raise UsageError(
            "without a KvK number give the e-invoicing address: --endpoint ID "
            "--endpoint-scheme CODE (e.g. 0060 for a DUNS number)"
        )
    try:
        party = check_party(customer_party(b))
    except UsageError as exc:
        raise UsageError(str(exc).replace("party ", "customer ", 1)) from None
    customer_vat(
        b.country,
        b.vat_id,
        reverse_charge=b.reverse_charge,
        no_reverse_charge_reason=b.no_reverse_charge_reason,
        standard=STANDARD,
    )
    return replace(b, postcode=party.postcode, endpoint_id=party.endpoint_id, email=party.email)


def _vat_override(
    before: CustomerBilling, changes: dict[str, Any]
) -> tuple[dict[str, Any], str | None]:
    """``changes`` with what an override of reverse charge implies, and its reason if
    one is given now: a reason means no reverse charge; reverse charge ends it."""
    reason = changes.get("no_reverse_charge_reason")
    if reason is not None:
        if changes.get("reverse_charge") is True:
            raise UsageError(
                "--no-reverse-charge-reason says why there is no reverse charge: "
                "leave out --reverse-charge"
            )
        return {**changes, "reverse_charge": False}, reason
    if changes.get("reverse_charge") is True and before.no_reverse_charge_reason:
        return {**changes, "no_reverse_charge_reason": ""}, None
    return changes, None


class Office:
    """Rate cards, billing data, prepaid hours and invoices of the relay."""

    @property
    def settings(self) -> Settings:
        """The settings in force now: a reload swaps them between two uses."""
        return self._live.current

    def __init__(
        self,
        store: Store,
        clock: Clock,
        settings: Settings | LiveSettings,
        book: RateBook,
        templates: InvoiceTemplates | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self._live = as_live(settings)
        self.book = book
        self.templates = templates or InvoiceTemplates(None)
        self.company = CompanyData(store, clock, self.settings.company)
        self._live.on_swap(lambda _old, new: setattr(self.company, "defaults", new.company))
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
        """Change the fields in ``changes``; the result must be invoiceable. An
        e-invoicing address derived from the KvK number (or VAT id) follows it. An
        override of reverse charge is audited with its reason, in the same write."""
        now = self.clock.now()
        current = await self.store.get_customer_billing(customer.id)
        base = current or CustomerBilling(
            customer.id, "", (), "", "", "NL", "", "0106", 14, now, reference=""
        )
        changes, reason = _vat_override(base, changes)
        updated = follow_endpoint(base, replace(base, **changes, updated_at=now))
        updated = check_billing(updated)
        eu_business = is_eu_business(updated.country, updated.vat_id)
        if reason is not None and not eu_business:
            raise UsageError(
                "--no-reverse-charge-reason is for a business in another EU country "
                "(with its VAT id); this customer has no reverse charge to override"
            )
        if not eu_business:
            updated = replace(updated, no_reverse_charge_reason="")
        detail = {"fields": sorted(changes)}
        audit = [AuditEvent(now, "customer_billing", actor.id, customer.id, detail)]
        if reason is not None:
            why = {"reason": reason, "country": updated.country, "vat": updated.vat_id}
            audit.append(AuditEvent(now, "no_reverse_charge", actor.id, customer.id, why))
        await self.store.set_customer_billing(updated, audit=audit)
        return updated

    async def add_prepaid(self, actor: Technician, block: PrepaidBlock) -> None:
        """Store a block of prepaid hours, audited with it."""
        if block.expires_on is not None and block.expires_on < self.today():
            raise UsageError(f"the block would have expired already ({block.expires_on})")
        if block.expires_on is not None and block.expires_on < block.first_day:
            raise UsageError(
                f"the block would expire ({block.expires_on}) before it is valid "
                f"({block.first_day}); check --from and --expires"
            )
        detail = {"minutes": block.minutes, "valid_from": block.first_day.isoformat()}
        audit = AuditEvent(block.created_at, "prepaid_add", actor.id, block.id, detail)
        await self.store.add_prepaid_block(block, audit=(audit,))

    async def balances(self, customer: Customer) -> list[PrepaidBalance]:
        return await self.store.prepaid_balances(customer.id)

    async def prepaid_terms(self, customer: Customer) -> tuple[Terms, PrepaidTerms | None]:
        """The prepaid terms that apply to ``customer``, and its own settings."""
        own = await self.store.get_prepaid_terms(customer.id)
        return terms_for(relay_terms(self.settings.billing), own), own

    async def set_prepaid_terms(
        self, actor: Technician, customer: Customer, changes: dict[str, Any]
    ) -> tuple[Terms, PrepaidTerms | None]:
        """Change the customer's own ``pays`` / ``warn_below_minutes`` (None: back to
        the relay's default), audited with it."""
        if changes.get("pays") not in (None, *PAYS):
            raise UsageError(f"pays must be one of {', '.join(PAYS)} (or default)")
        now = self.clock.now()
        current = await self.store.get_prepaid_terms(customer.id)
        base = current or PrepaidTerms(customer.id, now, actor.id)
        own = replace(base, **changes, updated_at=now, updated_by=actor.id)
        detail = {name: getattr(own, name) for name in sorted(changes)}
        audit = AuditEvent(now, "prepaid_terms", actor.id, customer.id, detail)
        await self.store.set_prepaid_terms(own, audit=(audit,))
        return terms_for(relay_terms(self.settings.billing), own), own

    def today(self) -> date:
        """The company's local date now."""
        return self.clock.now().astimezone(self.zone).date()

    # -- invoices ------------------------------------------------------------------------
    async def plan(
        self, actor: Technician, customer: Customer, period: Period, reference: str | None
    ) -> Plan:
        """The invoice as it would be written now (nothing is written), with the
        company's data as stored now."""
        company, _ = await self.company.current()
        return await plan_invoice(
            self.store,
            company,
            customer,
            period,
            reference=reference,
            actor=actor.id,
            now=self.clock.now(),
            prepaid_terms=relay_terms(self.settings.billing),
        )

    async def create_invoice(self, actor: Technician, plan: Plan) -> InvoiceRecord:
        """Number and write a planned invoice, with its audit record."""
        draft = plan.draft
        detail = {"customer": draft.customer_id}
        audit = AuditEvent(self.clock.now(), "invoice_create", actor.id, draft.id, detail)
        return await self.store.create_invoice(draft, audit=(audit,))

    async def invoices(
        self, customer: Customer | None, page: Keyset | None = None
    ) -> list[InvoiceRecord]:
        """Invoices and credit notes (of ``customer`` when given; all, or one page),
        the most recent number first."""
        return await self.store.list_invoices(customer.id if customer else None, page)

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
