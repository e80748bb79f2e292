"""Read a rate card from TOML, refusing anything malformed with file, line and reason.

Money and percentages may be written as TOML numbers (``90.00``) or strings
(``"90.00"``); both become exact ``Decimal`` values. Unknown keys are errors, so
a typo never silently falls back to a default.
"""

from __future__ import annotations

import re
import tomllib
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from relay.billing.holidays_nl import NL_DEFAULT_OBSERVED, NL_HOLIDAYS
from relay.billing.ratecard import (
    COMBINE_MODES,
    COMPLEXITIES,
    DAYS,
    HOLIDAY,
    LEVELS,
    ROUNDING_MODES,
    SERVICE_TYPES,
    URGENT,
    CustomerAgreement,
    HolidaySurcharge,
    RateCard,
    RoundingPolicy,
    SessionPolicy,
    Surcharges,
    TimeWindow,
)
from relay.billing.toml_lines import Path, line_of
from shared.errors import ConfigError

DEFAULT_ROUNDING = RoundingPolicy(
    minimum_minutes=15, increment_minutes=5, mode="up", grace_seconds=0
)
DEFAULT_SESSIONS = SessionPolicy(merge_window_minutes=10, idle_threshold_minutes=5)

_TOP_KEYS = (
    "name",
    "effective_from",
    "currency",
    "timezone",
    "rates",
    "complexity",
    "sessions",
    "rounding",
    "surcharges",
    "customers",
)
_ROUNDING_FIELDS = ("minimum_minutes", "increment_minutes", "mode", "grace_seconds")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_CLOCK = re.compile(r"^(\d\d):(\d\d)$")
_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_AT_END = re.compile(r"\s*\(at end of document\)\s*$")


def parse_rate_card(text: str, source_name: str) -> RateCard:
    """The card in ``text``; :class:`ConfigError` naming ``source_name``, the line
    and the reason when it is malformed."""
    return _Reader(text, source_name).card()


def _syntax_error(text: str, source: str, exc: tomllib.TOMLDecodeError) -> ConfigError:
    message = str(exc)
    if match := _AT.search(message):
        reason = message[: match.start()]
        where = f"line {match.group(1)}, column {match.group(2)}"
    else:
        reason = _AT_END.sub("", message)
        where = f"line {max(1, len(text.splitlines()))}"
    return ConfigError(f"{source}, {where}: not valid TOML: {reason[:1].lower()}{reason[1:]}")


class _Reader:
    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source

    def fail(self, path: Path, reason: str) -> NoReturn:
        line = line_of(self.text, path)
        where = "".join(f"[{p + 1}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
        where = where or "the card"
        raise ConfigError(f"{self.source}, line {line}: {where}: {reason}")

    # -- the document -------------------------------------------------------------
    def card(self) -> RateCard:
        try:
            raw = tomllib.loads(self.text, parse_float=Decimal)
        except tomllib.TOMLDecodeError as exc:
            raise _syntax_error(self.text, self.source, exc) from None
        self.keys(raw, (), _TOP_KEYS)
        if "effective_from" not in raw:
            self.fail((), "effective_from is missing (the date this card takes effect)")
        effective = raw["effective_from"]
        if type(effective) is not date:
            self.fail(("effective_from",), "should be a date such as 2026-01-01")
        timezone = self.string(raw.get("timezone", "Europe/Amsterdam"), ("timezone",))
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            self.fail(("timezone",), f"unknown time zone {timezone!r}")
        currency = self.string(raw.get("currency", "EUR"), ("currency",))
        if not re.fullmatch(r"[A-Z]{3}", currency):
            self.fail(("currency",), "should be a three-letter code such as EUR")
        surcharges = self.surcharges(raw.get("surcharges", {}))
        customers_raw = self.table(raw.get("customers", {}), ("customers",))
        customers = {
            str(cid): self.customer(str(cid), value, surcharges)
            for cid, value in customers_raw.items()
        }
        return RateCard(
            effective_from=effective,
            rates=self.base_rates(raw),
            complexity=self.multipliers(raw.get("complexity"), ("complexity",), True),
            rounding=self.rounding(raw.get("rounding", {}), ("rounding",), True),
            sessions=self.sessions(raw.get("sessions", {}), ("sessions",), True),
            surcharges=surcharges,
            customers=customers,
            name=self.string(raw.get("name", ""), ("name",)),
            currency=currency,
            timezone=timezone,
        )

    def base_rates(self, raw: dict[str, Any]) -> dict[tuple[str, int], Decimal]:
        if "rates" not in raw:
            self.fail((), "the [rates] table is missing")
        table = self.table(raw["rates"], ("rates",))
        self.keys(table, ("rates",), SERVICE_TYPES, what="service type")
        rates: dict[tuple[str, int], Decimal] = {}
        for service in SERVICE_TYPES:
            if service not in table:
                self.fail(("rates",), f"no rates for service type {service}")
            levels = self.level_table(table[service], ("rates", service))
            missing = [str(level) for level in LEVELS if level not in levels]
            if missing:
                self.fail(("rates", service), f"no rate for level {', '.join(missing)}")
            for level, rate in levels.items():
                rates[(service, level)] = rate
        return rates

    def level_table(self, value: Any, path: Path, every: bool = False) -> dict[int, Decimal]:
        """Rates by level; with ``every``, an ``all`` key (every level) is allowed and
        returned under level 0."""
        table = self.table(value, path, "a table of levels such as { 1 = 75.00, 2 = 90.00 }")
        levels = tuple(str(level) for level in LEVELS) + (("all",) if every else ())
        self.keys(table, path, levels, what="expertise level")
        return {
            0 if key == "all" else int(key): self.money(rate, (*path, key))
            for key, rate in table.items()
        }

    def multipliers(self, value: Any, path: Path, complete: bool) -> dict[str, Decimal]:
        if value is None and complete:
            self.fail((), "the [complexity] table is missing")
        table = self.table(value if value is not None else {}, path)
        self.keys(table, path, COMPLEXITIES, what="complexity")
        if complete:
            for name in COMPLEXITIES:
                if name not in table:
                    self.fail(path, f"no multiplier for {name}")
        out: dict[str, Decimal] = {}
        for name in COMPLEXITIES:
            if name in table:
                out[name] = self.number(table[name], (*path, name), "multiplier")
                if out[name] <= 0:
                    self.fail((*path, name), "a multiplier must be above 0")
        return out

    # -- rounding and sessions -------------------------------------------------------
    def rounding(self, value: Any, path: Path, card_level: bool) -> dict[str, RoundingPolicy]:
        table = self.table(value, path)
        self.keys(table, path, ("default", *SERVICE_TYPES), what="rounding level")
        out: dict[str, RoundingPolicy] = {}
        for level in ("default", *SERVICE_TYPES):
            if level in table:
                out[level] = self.rounding_policy(table[level], (*path, level))
        if card_level:
            given = out.get("default", RoundingPolicy())
            filled = {
                name: getattr(given, name)
                if getattr(given, name) is not None
                else getattr(DEFAULT_ROUNDING, name)
                for name in _ROUNDING_FIELDS
            }
            out["default"] = RoundingPolicy(**filled)
        return out

    def rounding_policy(self, value: Any, path: Path) -> RoundingPolicy:
        table = self.table(value, path)
        self.keys(table, path, _ROUNDING_FIELDS)
        mode = table.get("mode")
        if mode is not None and mode not in ROUNDING_MODES:
            self.fail((*path, "mode"), f"mode must be one of {', '.join(ROUNDING_MODES)}")
        increment = self.optional_int(table, path, "increment_minutes", 1)
        return RoundingPolicy(
            minimum_minutes=self.optional_int(table, path, "minimum_minutes", 0),
            increment_minutes=increment,
            mode=mode,
            grace_seconds=self.optional_int(table, path, "grace_seconds", 0),
        )

    def sessions(self, value: Any, path: Path, complete: bool) -> SessionPolicy:
        table = self.table(value, path)
        self.keys(table, path, ("merge_window_minutes", "idle_threshold_minutes"))
        merge = self.optional_int(table, path, "merge_window_minutes", 0)
        idle = self.optional_int(table, path, "idle_threshold_minutes", 0)
        if complete:
            merge = DEFAULT_SESSIONS.merge_window_minutes if merge is None else merge
            idle = DEFAULT_SESSIONS.idle_threshold_minutes if idle is None else idle
        return SessionPolicy(merge, idle)

    # -- surcharges ------------------------------------------------------------------------
    def surcharges(self, value: Any) -> Surcharges:
        path: Path = ("surcharges",)
        table = self.table(value, path)
        self.keys(table, path, ("combine", "urgent_percent", "window", "holiday"))
        combine = self.string(table.get("combine", "highest"), (*path, "combine"))
        if combine not in COMBINE_MODES:
            self.fail((*path, "combine"), f"combine must be one of {', '.join(COMBINE_MODES)}")
        windows_raw = table.get("window", [])
        if not isinstance(windows_raw, list):
            self.fail((*path, "window"), "write time windows as [[surcharges.window]] tables")
        windows: list[TimeWindow] = []
        for index, item in enumerate(windows_raw):
            window = self.window(item, (*path, "window", index))
            if any(w.name == window.name for w in windows):
                self.fail((*path, "window", index, "name"), f"window {window.name} twice")
            windows.append(window)
        holiday = None
        if "holiday" in table:
            holiday = self.holiday(table["holiday"], (*path, "holiday"))
        urgent = self.percent(table.get("urgent_percent", 0), (*path, "urgent_percent"))
        return Surcharges(tuple(windows), holiday, urgent, combine)

    def window(self, value: Any, path: Path) -> TimeWindow:
        table = self.table(value, path)
        self.keys(table, path, ("name", "days", "from", "to", "percent"))
        for key in ("name", "days", "from", "to", "percent"):
            if key not in table:
                self.fail(path, f"a time window needs {key}")
        name = self.string(table["name"], (*path, "name"))
        if not _NAME.match(name) or name in (HOLIDAY, URGENT, "none"):
            self.fail((*path, "name"), f"{name!r} cannot name a window (lowercase, not reserved)")
        days = table["days"]
        if not isinstance(days, list) or not days:
            self.fail((*path, "days"), 'days should be a list such as ["sat", "sun"]')
        for day in days:
            if day not in DAYS:
                self.fail((*path, "days"), f"unknown day {day!r}; use {', '.join(DAYS)}")
        start = self.clock(table["from"], (*path, "from"), allow_24=False)
        end = self.clock(table["to"], (*path, "to"), allow_24=True)
        if start == end:
            self.fail(
                (*path, "to"),
                'from and to are equal; for a whole day write from = "00:00", to = "24:00"',
            )
        return TimeWindow(
            name=name,
            days=tuple(sorted({DAYS.index(day) for day in days})),
            start_minute=start,
            end_minute=end,
            percent=self.percent(table["percent"], (*path, "percent")),
        )

    def clock(self, value: Any, path: Path, allow_24: bool) -> int:
        match = _CLOCK.match(value) if isinstance(value, str) else None
        if match is None:
            self.fail(path, f'{value!r} is not a time of day like "18:00"')
        hours, minutes = int(match.group(1)), int(match.group(2))
        if (hours, minutes) == (24, 0) and allow_24:
            return 1440
        if hours > 23 or minutes > 59:
            self.fail(path, f"{value!r} is not a time of day (00:00 to 23:59, or 24:00 as end)")
        return hours * 60 + minutes

    def holiday(self, value: Any, path: Path) -> HolidaySurcharge:
        table = self.table(value, path)
        self.keys(table, path, ("percent", "calendar", "observe", "extra_dates"))
        if "percent" not in table:
            self.fail(path, "a holiday surcharge needs percent")
        calendar = self.string(table.get("calendar", "NL"), (*path, "calendar"))
        if calendar not in ("NL", "none"):
            self.fail((*path, "calendar"), 'calendar must be "NL" or "none"')
        observe = table.get("observe", list(NL_DEFAULT_OBSERVED) if calendar == "NL" else [])
        if not isinstance(observe, list):
            self.fail((*path, "observe"), "observe should be a list of holiday names")
        for name in observe:
            if name not in NL_HOLIDAYS or calendar != "NL":
                self.fail((*path, "observe"), f"unknown holiday {name!r}")
        extra = table.get("extra_dates", [])
        if not isinstance(extra, list) or any(type(d) is not date for d in extra):
            self.fail((*path, "extra_dates"), "extra_dates should be dates such as 2026-12-31")
        return HolidaySurcharge(
            percent=self.percent(table["percent"], (*path, "percent")),
            calendar=calendar,
            observe=tuple(n for n in NL_HOLIDAYS if n in observe),
            extra_dates=tuple(sorted(set(extra))),
        )

    # -- customers -------------------------------------------------------------------------
    def customer(self, cid: str, value: Any, surcharges: Surcharges) -> CustomerAgreement:
        path: Path = ("customers", cid)
        table = self.table(value, path)
        allowed = ("name", "hourly_rate", "discount_percent", "rates", "complexity")
        self.keys(table, path, (*allowed, "surcharges", "rounding", "sessions"))
        service_rates: dict[str, Decimal] = {}
        level_rates: dict[tuple[str, int], Decimal] = {}
        rates = self.table(table.get("rates", {}), (*path, "rates"))
        self.keys(rates, (*path, "rates"), SERVICE_TYPES, what="service type")
        for service, rate in rates.items():
            if isinstance(rate, dict):
                levels = self.level_table(rate, (*path, "rates", service), every=True)
                for level, level_rate in levels.items():
                    if level == 0:
                        service_rates[service] = level_rate
                    else:
                        level_rates[(service, level)] = level_rate
            else:
                service_rates[service] = self.money(rate, (*path, "rates", service))
        hourly = table.get("hourly_rate")
        discount = self.percent(table.get("discount_percent", 0), (*path, "discount_percent"))
        if discount > 100:
            self.fail((*path, "discount_percent"), "a discount cannot exceed 100 percent")
        return CustomerAgreement(
            customer_id=cid,
            name=self.string(table.get("name", ""), (*path, "name")),
            hourly_rate=None if hourly is None else self.money(hourly, (*path, "hourly_rate")),
            service_rates=service_rates,
            level_rates=level_rates,
            complexity=self.multipliers(table.get("complexity"), (*path, "complexity"), False),
            surcharges=self.customer_surcharges(table.get("surcharges", {}), path, surcharges),
            discount_percent=discount,
            rounding=self.rounding(table.get("rounding", {}), (*path, "rounding"), False),
            sessions=self.sessions(table.get("sessions", {}), (*path, "sessions"), False),
        )

    def customer_surcharges(
        self, value: Any, customer: Path, card: Surcharges
    ) -> dict[str, Decimal]:
        path = (*customer, "surcharges")
        table = self.table(value, path)
        names = [w.name for w in card.windows] + [URGENT]
        if card.holiday is not None:
            names.append(HOLIDAY)
        self.keys(table, path, tuple(names), what="surcharge")
        return {name: self.percent(pct, (*path, name)) for name, pct in table.items()}

    # -- values ------------------------------------------------------------------------------
    def keys(
        self, table: dict[str, Any], path: Path, allowed: tuple[str, ...], what: str = "key"
    ) -> None:
        for key in table:
            if key not in allowed:
                self.fail(
                    (*path, key), f"unknown {what} {key!r}; expected one of {', '.join(allowed)}"
                )

    def table(self, value: Any, path: Path, shape: str = "a table") -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(path, f"should be {shape}")
        return value

    def string(self, value: Any, path: Path) -> str:
        if not isinstance(value, str):
            self.fail(path, "should be a string")
        return value

    def number(self, value: Any, path: Path, what: str) -> Decimal:
        if isinstance(value, bool):
            self.fail(path, f"a {what} should be a number, not {value!r}")
        try:
            number = Decimal(value) if isinstance(value, int | str | Decimal) else None
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite():
            self.fail(path, f"a {what} should be a number such as 90.00, not {value!r}")
        return number

    def money(self, value: Any, path: Path) -> Decimal:
        rate = self.number(value, path, "rate")
        if rate < 0:
            self.fail(path, f"a rate cannot be negative ({rate})")
        return rate

    def percent(self, value: Any, path: Path) -> Decimal:
        pct = self.number(value, path, "percentage")
        if pct < 0:
            self.fail(path, f"a percentage cannot be negative ({pct})")
        return pct

    def optional_int(self, table: dict[str, Any], path: Path, key: str, low: int) -> int | None:
        if key not in table:
            return None
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            self.fail((*path, key), f"should be a whole number of at least {low}")
        return value
