"""Console methods for the company's own data, the supplier on every invoice:
``company.show`` and ``company.set`` (``billing`` or ``admin`` role)."""

from __future__ import annotations

from typing import Any

from relay.api.context import OFFICE, Context, Method
from relay.api.params import Params, text
from relay.model import CompanyDetails
from relay.services.company import checked
from relay.settings import Company
from shared.clock import iso
from shared.errors import UsageError

#: Parameter → field of :class:`relay.model.CompanyDetails` (``address`` apart).
_TEXT_FIELDS = {
    "legal_name": "legal_name",
    "postcode": "postcode",
    "city": "city",
    "country": "country",
    "kvk": "kvk",
    "vat": "vat_id",
    "iban": "iban",
    "email": "email",
    "payment_means": "payment_means",
}


def _company_json(company: Company, record: CompanyDetails | None, by: str) -> dict[str, Any]:
    try:
        checked(company)
        problem = None
    except UsageError as exc:
        problem = str(exc)
    return {
        "legal_name": company.legal_name,
        "address": [line for line in (company.address, company.address2) if line],
        "postcode": company.postcode,
        "city": company.city,
        "country": company.country,
        "kvk": company.kvk,
        "vat": company.vat_id,
        "iban": company.iban,
        "email": company.email,
        "payment_means": company.payment_means,
        "endpoint": f"0106:{company.kvk}" if company.kvk else "",
        "source": "database" if record else "relay.toml",
        "updated_at": iso(record.updated_at) if record else None,
        "updated_by": by or None,
        "invoiceable": problem is None,
        "problem": problem,
    }


def _changes(params: Params) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for key, name in _TEXT_FIELDS.items():
        if key in params:
            changes[name] = text(params, key) or ""
    if "address" in params:
        lines = params["address"]
        lines = [lines] if isinstance(lines, str) else lines
        if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
            raise UsageError("address must be one or two lines of text")
        changes["address_lines"] = tuple(x.strip() for x in lines if x.strip())
        if len(changes["address_lines"]) > 2:
            raise UsageError("address must be one or two lines of text")
    return changes


async def company_show(ctx: Context, params: Params) -> Any:
    """The company's data in force: stored by ``company.set``, else relay.toml's."""
    return await _shown(ctx)


async def company_set(ctx: Context, params: Params) -> Any:
    """Change the fields given; the whole must be invoiceable. The next invoice uses it."""
    data = ctx.services.office.company
    await data.set(ctx.tech, _changes(params))
    return await _shown(ctx)


async def _shown(ctx: Context) -> dict[str, Any]:
    company, record = await ctx.services.office.company.current()
    names = await ctx.services.directory.names()
    by = names.technician(record.updated_by) if record else ""
    return _company_json(company, record, by)


METHODS: dict[str, Method] = {
    "company.show": Method(company_show, OFFICE),
    "company.set": Method(company_set, OFFICE),
}
