"""Party data an accountant accepts: VAT ids, KvK numbers, postcodes, IBANs,
countries and e-invoicing addresses, checked and normalised (pure, no I/O).

Check digits come from python-stdnum (``stdnum.eu.vat``, ``stdnum.iban``, the
postcode modules of NL, AT, ES and SE); where stdnum has no module a simple
format rule stands in (a KvK number is 8 digits; a Belgian postcode 4). Every
refusal is a :class:`~shared.errors.UsageError` whose one line names the field as
the console calls it and says why, e.g.
``vat 'XYZ123' is not a valid VAT number: unknown country code``.

Each ``check_*`` function returns the value in its normal form (``1234 AB``,
``NL123456782B01``, ``NL91ABNA0417164300``), which is what gets stored.
"""

from __future__ import annotations

import re
from dataclasses import replace

from stdnum import iban as stdnum_iban
from stdnum.at import postleitzahl
from stdnum.be import vat as be_vat
from stdnum.es import postal_code as es_postal_code
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import (
    InvalidChecksum,
    InvalidComponent,
    InvalidFormat,
    InvalidLength,
    ValidationError,
)
from stdnum.nl import btw as nl_btw
from stdnum.nl import postcode as nl_postcode
from stdnum.se import postnummer

from relay.billing.invoice import Party, Supplier
from relay.model import CustomerBilling
from shared.errors import UsageError

#: The supplier's country: the VAT rules of :mod:`relay.billing.vat` are Dutch.
HOME = "NL"
KVK_SCHEME = "0106"
EU_MEMBERS = frozenset(
    "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split()
)
#: ISO 3166-1 alpha-2 as the official rules accept it (BR-CL-14; 1A Kosovo, XI N. Ireland).
COUNTRIES = frozenset(
    """1A AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM
    BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ
    DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM
    GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP
    KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH
    MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM
    PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ
    SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA
    UG UM US UY UZ VA VC VE VG VI VN VU WF WS XI YE YT ZA ZM ZW""".split()
)
#: Electronic address schemes (EAS) the official rules accept for an EndpointID (BR-CL-25).
EAS_SCHEMES = frozenset(
    """0002 0007 0009 0037 0060 0088 0096 0097 0106 0130 0135 0142 0147 0151 0154 0158 0170
    0177 0183 0184 0188 0190 0191 0192 0193 0194 0195 0196 0198 0199 0200 0201 0202 0203
    0204 0205 0208 0209 0210 0211 0212 0213 0215 0216 0217 0218 0219 0220 0221 0225 0230
    0235 0240 0244 0242 0245 0246 0248 9910 9913 9914 9915 9918 9919 9920 9922 9923 9924
    9925 9926 9927 9928 9929 9930 9931 9932 9933 9934 9935 9936 9937 9938 9939 9940 9941
    9942 9943 9944 9945 9946 9947 9948 9949 9950 9951 9952 9953 9957 9959 AN AQ AS AU
    EM""".split()
)
_KVK = re.compile(r"\d{8}")
_OIN = re.compile(r"\d{20}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_POSTCODE_ANY = re.compile(r"[A-Z0-9][A-Z0-9 -]{0,14}[A-Z0-9]|[A-Z0-9]")
#: Countries without a stdnum module: (pattern, an example) of their postcodes.
_POSTCODE_RULES: dict[str, tuple[str, str]] = {
    **{cc: (r"\d{4}", "1000") for cc in ("BE", "BG", "CH", "CY", "DK", "HU", "LU", "NO", "SI")},
    **{cc: (r"\d{5}", "10115") for cc in ("DE", "EE", "FI", "FR", "HR", "IT", "LT", "MC")},
    **{cc: (r"\d{3} \d{2}", "110 00") for cc in ("CZ", "GR", "SK")},
    "PL": (r"\d{2}-\d{3}", "00-950"),
    "PT": (r"\d{4}-\d{3}", "1000-001"),
    "US": (r"\d{5}(-\d{4})?", "94105"),
}


def _invalid(field: str, value: str, what: str, why: str) -> UsageError:
    return UsageError(f"{field} {value!r} is not a valid {what}: {why}")


def _why(exc: ValidationError, thing: str) -> str:
    """The reason stdnum refused a number, in words."""
    if isinstance(exc, InvalidChecksum):
        return "the check digits do not match"
    if isinstance(exc, InvalidLength):
        return f"wrong length for {thing}"
    if isinstance(exc, InvalidComponent):
        return "unknown country code"
    if isinstance(exc, InvalidFormat):
        return f"wrong format for {thing}"
    return str(exc) or "refused"


# -- single fields ------------------------------------------------------------------------


def check_country(code: str, field: str = "country") -> str:
    """An ISO 3166-1 alpha-2 country code, upper case."""
    value = code.strip().upper()
    if value not in COUNTRIES:
        raise _invalid(field, code, "country code", "use ISO 3166 alpha-2, e.g. NL, BE, US")
    return value


def vat_country(vat_id: str) -> str:
    """The country a VAT id belongs to: its prefix, ``GR`` for Greece's ``EL``."""
    prefix = vat_id[:2].upper()
    return "GR" if prefix == "EL" else prefix


def check_vat_id(value: str, field: str = "vat") -> str:
    """A VAT id of an EU member state with valid check digits, compact (``EL`` for Greece).

    Only EU VAT ids appear on our invoices: a customer outside the EU is invoiced
    outside the scope of Dutch VAT, and such an invoice carries no VAT ids (BR-O-02).
    """
    compact = re.sub(r"[\s.\-]", "", value).upper()
    country = vat_country(compact)
    if country not in EU_MEMBERS:
        why = (
            f"{compact[:2]} is not an EU member state"
            if compact[:2] in COUNTRIES
            else "unknown country code"
        )
        raise _invalid(field, value, "VAT number", why)
    try:
        number = str(eu_vat.validate(compact))
    except ValidationError as exc:
        raise _invalid(field, value, "VAT number", _why(exc, f"a {country} VAT number")) from None
    return "EL" + number[2:] if country == "GR" else number


def check_kvk(value: str, field: str = "kvk") -> str:
    """A Dutch Chamber of Commerce (KvK) number: 8 digits (stdnum has no module for it)."""
    compact = re.sub(r"[\s.]", "", value)
    if not _KVK.fullmatch(compact):
        raise _invalid(field, value, "KvK number", "a KvK number has 8 digits")
    return compact


def check_postcode(country: str, value: str, field: str = "postcode") -> str:
    """A postcode as written in ``country``: ``1234 AB`` in the Netherlands."""
    text = value.strip().upper()
    modules = {"NL": nl_postcode, "AT": postleitzahl, "ES": es_postal_code, "SE": postnummer}
    if country in modules:
        try:
            normal = str(modules[country].validate(text))
        except ValidationError:
            example = {"NL": "1234 AB", "AT": "1010", "ES": "28001", "SE": "114 55"}[country]
            why = f"write it as in {country}, e.g. {example}"
            raise _invalid(field, value, "postcode", why) from None
        return postnummer.format(normal) if country == "SE" else normal
    if country in _POSTCODE_RULES:
        pattern, example = _POSTCODE_RULES[country]
        if not re.fullmatch(pattern, text):
            raise _invalid(field, value, "postcode", f"write it as in {country}, e.g. {example}")
        return text
    if not _POSTCODE_ANY.fullmatch(text):
        raise _invalid(field, value, "postcode", "use letters, digits, spaces and hyphens")
    return text


def check_iban(value: str, field: str = "iban") -> str:
    """An IBAN with valid check digits and its country's length and format, compact."""
    compact = str(stdnum_iban.compact(value))
    if compact[:2] not in COUNTRIES:
        raise _invalid(field, value, "IBAN", "unknown country code")
    try:
        return str(stdnum_iban.validate(compact))
    except InvalidChecksum:
        # stdnum checks the digits first; a wrong length is the likelier mistake to name.
        repaired = compact[:2] + stdnum_iban.calc_check_digits(compact) + compact[4:]
        why = "the check digits do not match"
        if not stdnum_iban.is_valid(repaired):
            why = f"wrong length or format for a {compact[:2]} IBAN"
        raise _invalid(field, value, "IBAN", why) from None
    except InvalidComponent:
        raise _invalid(field, value, "IBAN", "unknown country or bank code") from None
    except ValidationError as exc:
        raise _invalid(field, value, "IBAN", _why(exc, f"a {compact[:2]} IBAN")) from None


def check_email(value: str, field: str = "email") -> str:
    """An e-mail address (its shape; whether it is read is another matter)."""
    text = value.strip()
    if not _EMAIL.fullmatch(text):
        raise _invalid(field, value, "e-mail address", "write it as name@example.nl")
    return text


def check_endpoint(scheme: str, value: str, field: str = "endpoint") -> str:
    """An e-invoicing address of ``scheme`` (EAS code), checked where the official
    rules check it: KvK (0106), OIN (0190), Belgian enterprise number (0208),
    Dutch VAT id (9944)."""
    if scheme not in EAS_SCHEMES:
        why = "not an EAS code (e.g. 0106 KvK, 0208 Belgian enterprise number, 0060 DUNS)"
        raise _invalid(f"{field} scheme", scheme, "e-invoicing scheme", why)
    text = value.strip()
    try:
        if scheme == KVK_SCHEME:
            return check_kvk(text, field)
        if scheme == "9944":  # the Dutch VAT id with its NL prefix (PEPPOL-COMMON-R056)
            return "NL" + str(nl_btw.validate(text))
        if scheme == "0208":
            return str(be_vat.compact(be_vat.validate(text)))
    except ValidationError as exc:
        raise _invalid(field, value, f"{scheme} address", _why(exc, "it")) from None
    if scheme == "0190" and not _OIN.fullmatch(text):
        raise _invalid(field, value, "0190 address", "an OIN has 20 digits")
    if scheme == "EM":
        return check_email(text, field)
    if not text or len(text) > 100:
        raise _invalid(field, value, f"{scheme} address", "give 1 to 100 characters")
    return text


# -- parties ---------------------------------------------------------------------------------


def check_party(party: Party) -> Party:
    """``party`` with every identifier checked and normalised (see the module doc)."""
    country = check_country(party.country_code)
    return replace(
        party,
        country_code=country,
        postcode=check_postcode(country, party.postcode),
        kvk_number=check_kvk(party.kvk_number) if party.kvk_number else None,
        vat_id=check_vat_id(party.vat_id) if party.vat_id else None,
        endpoint_id=check_endpoint(party.endpoint_scheme, party.endpoint_id),
        email=check_email(party.email) if party.email else None,
    )


def check_supplier(supplier: Supplier) -> Supplier:
    """The invoicing company: a Dutch business with KvK number, Dutch VAT id and IBAN;
    its e-invoicing address is its KvK number."""
    party = check_party(supplier.party)
    if party.country_code != HOME:
        why = "the relay invoices as a Dutch company"
        raise _invalid("country", party.country_code, "company country", why)
    if not party.kvk_number:
        raise UsageError("kvk is missing: a Dutch company's invoices carry its KvK number")
    if not party.vat_id or vat_country(party.vat_id) != HOME:
        raise _invalid("vat", party.vat_id or "", "company VAT number", "give the Dutch btw-id")
    party = replace(party, endpoint_id=party.kvk_number, endpoint_scheme=KVK_SCHEME)
    return replace(supplier, party=party, iban=check_iban(supplier.iban))


# -- e-invoicing addresses -------------------------------------------------------------------


def derived_endpoint(billing: CustomerBilling) -> tuple[str, str] | None:
    """The e-invoicing address the customer's own numbers give: its KvK number (0106),
    else a Belgian VAT id's enterprise number (0208); None without either."""
    if billing.kvk:
        return KVK_SCHEME, billing.kvk
    if billing.vat_id and billing.vat_id.upper().startswith("BE"):
        return "0208", re.sub(r"\D", "", billing.vat_id)
    return None


def follow_endpoint(before: CustomerBilling, after: CustomerBilling) -> CustomerBilling:
    """``after``, whose endpoint moves with the number it was derived from.

    An endpoint equal to what :func:`derived_endpoint` gave for ``before`` was
    derived (or set to the same thing, which is no different); when the change
    left it alone but changed that number, the endpoint follows. An endpoint set
    to something else stays where it was put.
    """
    old = derived_endpoint(before)
    unchanged = (after.endpoint_scheme, after.endpoint_id) == (
        before.endpoint_scheme,
        before.endpoint_id,
    )
    if old is None or not unchanged or old != (before.endpoint_scheme, before.endpoint_id):
        return after
    new = derived_endpoint(after)
    scheme, endpoint = new if new is not None else (before.endpoint_scheme, "")
    return replace(after, endpoint_scheme=scheme, endpoint_id=endpoint)
