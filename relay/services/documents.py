"""Invoice documents rendered: the HTML page and the PDF, from one Jinja2 template.

The template is the packaged ``relay/templates/invoice.html.j2`` unless the relay's
data directory holds its own ``invoice.html.j2``; a ``logo.png`` there is shown at the
top. Both are read at every export, so a company adapts them without a restart.
The figures come shaped and worded by :mod:`relay.billing.document`; the template
only lays them out.

Autoescape is always on and the template runs in Jinja2's sandbox. WeasyPrint gets
the page with every fetch refused but ``data:`` URLs (the logo is one), so no
template can make the relay reach the network or read a file.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from relay.billing.document import shape
from relay.billing.invoice import Invoice, Party, Supplier
from relay.core.help_requests import parse_number
from relay.store.interface import Store
from shared.errors import ConfigError, UsageError

TEMPLATE_FILE = "invoice.html.j2"
LOGO_FILE = "logo.png"
MAX_TEMPLATE = 256 * 1024  # bytes
MAX_LOGO = 1024 * 1024  # bytes
MAX_TITLE = 80  # characters of a help request's text on an invoice line
_WHERE = "in the relay's data directory"  # errors reach consoles: no server paths
_PNG = b"\x89PNG\r\n\x1a\n"


def packaged_template() -> str:
    """The template shipped with the relay."""
    return (resources.files("relay") / "templates" / TEMPLATE_FILE).read_text(encoding="utf-8")


class InvoiceTemplates:
    """The invoice template and logo of one relay (its data directory, if any)."""

    def __init__(self, data_dir: Path | None) -> None:
        self.template_path = data_dir / TEMPLATE_FILE if data_dir else None
        self.logo_path = data_dir / LOGO_FILE if data_dir else None
        self._pdf_turn = asyncio.Lock()  # one PDF at a time: layout is CPU-bound

    def version(self) -> tuple[int, ...]:
        """Changes when the company's template or logo does (for caches of renderings)."""
        out: list[int] = []
        for path in (self.template_path, self.logo_path):
            try:
                info = path.stat() if path else None
            except OSError:
                info = None
            out += (info.st_mtime_ns, info.st_size) if info else (-1, -1)
        return tuple(out)

    def html(self, invoice: Invoice, supplier: Supplier, customer: Party) -> str:
        """The invoice as a self-contained HTML page."""
        source, name = self._template()
        return render_html(source, name, invoice, supplier, customer, self._logo())

    async def pdf(self, invoice: Invoice, supplier: Supplier, customer: Party) -> bytes:
        """The invoice as PDF, laid out by WeasyPrint off the event loop."""
        page = self.html(invoice, supplier, customer)
        async with self._pdf_turn:
            return await asyncio.to_thread(html_to_pdf, page)

    def _template(self) -> tuple[str, str]:
        path = self.template_path
        if path is None or not path.exists():
            return packaged_template(), f"relay/templates/{TEMPLATE_FILE}"
        shown = f"{TEMPLATE_FILE} {_WHERE}"
        return _read(path, MAX_TEMPLATE, shown).decode("utf-8", errors="replace"), shown

    def _logo(self) -> str | None:
        path = self.logo_path
        if path is None or not path.exists():
            return None
        data = _read(path, MAX_LOGO, f"{LOGO_FILE} {_WHERE}")
        if not data.startswith(_PNG):
            raise ConfigError(f"{LOGO_FILE} {_WHERE} is not a PNG image; save the logo as PNG")
        return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _read(path: Path, limit: int, shown: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {shown}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise ConfigError(f"{shown} is larger than {limit // 1024} KiB; make it smaller")
    return data


# -- rendering -----------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _compiled(source: str, name: str) -> jinja2.Template:
    env = ImmutableSandboxedEnvironment(
        autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True
    )
    try:
        return env.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(f"{name}, line {exc.lineno}: {exc.message}") from None


def render_html(
    source: str,
    name: str,
    invoice: Invoice,
    supplier: Supplier,
    customer: Party,
    logo: str | None = None,
) -> str:
    """``invoice`` through the template ``source`` (``name`` says where it came from)."""
    template = _compiled(source, name)
    try:
        return template.render(doc=shape(invoice, supplier, customer), logo=logo)
    except jinja2.TemplateError as exc:  # an adapted template naming what is not there
        raise ConfigError(f"{name}: {exc}") from None


def html_to_pdf(page: str) -> bytes:
    """The HTML ``page`` laid out as an A4 PDF (fetches other than ``data:`` refused)."""
    try:
        import weasyprint  # a heavy import (Pango via cffi); only exports need it
    except OSError as exc:  # the library is there but Pango is not
        raise ConfigError(
            f"PDF invoices need Pango (Debian: apt-get install libpango-1.0-0 "
            f"libpangoft2-1.0-0): {exc}"
        ) from None
    document = weasyprint.HTML(string=page, url_fetcher=_data_only(weasyprint))
    pdf: bytes = document.write_pdf()
    return pdf


def _data_only(weasyprint: Any) -> Any:
    """A URL fetcher refusing everything but ``data:`` URLs, for WeasyPrint 62 and later."""
    if hasattr(weasyprint, "URLFetcher"):  # newer releases: a class with a protocol list
        return weasyprint.URLFetcher(allowed_protocols=("data",))

    def fetch(url: str) -> Any:
        if not url.startswith("data:"):
            raise ValueError(f"{url[:60]}: an invoice may only embed data: URLs")
        return weasyprint.default_url_fetcher(url)

    return fetch


# -- what invoice lines say ------------------------------------------------------------------


async def request_titles(store: Store, refs: Iterable[str | None]) -> dict[str, str]:
    """The first line of each help request's text, by the reference an entry carries
    (``REQ-12``), for the invoice lines whose entry has no notes. References that
    are not help requests (a customer's own ticket number) are left out."""
    titles: dict[str, str] = {}
    for ref in {r for r in refs if r}:
        try:
            number = parse_number(ref)
        except UsageError:
            continue
        found = await store.get_help_request(number)
        if found is None or not found.text.strip():
            continue
        first = " ".join(found.text.strip().splitlines()[0].split())
        titles[ref] = first if len(first) <= MAX_TITLE else first[: MAX_TITLE - 1] + "…"
    return titles
