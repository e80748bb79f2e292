"""Surcharges by time window, public holiday and urgency.

Windows and holidays are read in the company's wall-clock time, so DST changes
and midnight need no special cases: billed time is split by UTC minute and each
minute is classified by the local time at which it starts. (Zone offsets are whole
minutes, so a window boundary never falls inside a UTC minute; a piece of a
minute is classified exactly.) During the October change the repeated local hour
is classified twice, as it was worked twice; the skipped March hour never occurs.

Overlapping windows combine by the card's rule (``highest`` or ``sum``); a holiday
counts as a window covering its whole local day. Urgency is not a time window: it
is added on top for the whole entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from relay.billing.holidays_nl import holiday_on
from relay.billing.ratecard import HOLIDAY, HolidaySurcharge, TimeWindow
from relay.billing.spans import Span


@dataclass(frozen=True)
class WindowRules:
    """The time-window surcharges in force for one entry (customer overrides applied)."""

    zone: ZoneInfo
    windows: tuple[tuple[TimeWindow, Decimal], ...] = ()  # window, percent
    holiday: HolidaySurcharge | None = None
    holiday_percent: Decimal = Decimal(0)
    combine: str = "highest"


@dataclass(frozen=True)
class Segment:
    """A stretch of billed time that falls in the same windows."""

    span: Span
    windows: tuple[str, ...]  # names of the windows it falls in ("holiday" included)
    holiday: str | None  # which holiday, when ``"holiday"`` is among ``windows``
    percent: Decimal  # the combined time-window surcharge


@dataclass(frozen=True)
class Classification:
    windows: tuple[str, ...]
    holiday: str | None
    percent: Decimal


def classify(local: datetime, rules: WindowRules) -> Classification:
    """The windows that local wall time ``local`` falls in, and their combined percent."""
    weekday, minute = local.weekday(), local.hour * 60 + local.minute
    names: list[str] = []
    percents: list[Decimal] = []
    for window, percent in rules.windows:
        if window.covers(weekday, minute):
            names.append(window.name)
            percents.append(percent)
    holiday = None
    if rules.holiday is not None:
        hol = rules.holiday
        holiday = holiday_on(local.date(), hol.calendar, hol.observe, hol.extra_dates)
        if holiday is not None:
            names.append(HOLIDAY)
            percents.append(rules.holiday_percent)
    return Classification(tuple(names), holiday, combine(percents, rules.combine))


def combine(percents: Sequence[Decimal], mode: str) -> Decimal:
    """Overlapping window surcharges: the highest one, or their sum."""
    if not percents:
        return Decimal(0)
    if mode == "highest":
        return max(percents)
    if mode == "sum":
        return sum(percents, Decimal(0))
    raise ValueError(f"unknown surcharge combine mode {mode!r}")


def split_by_window(spans: Iterable[Span], rules: WindowRules) -> tuple[Segment, ...]:
    """Cut ``spans`` at UTC minute boundaries, classify each piece, and join
    neighbouring pieces that fall in the same windows."""
    segments: list[Segment] = []
    for span in sorted(spans):
        minute = span.start - span.start % 60
        while minute < span.end:
            piece = Span(max(span.start, minute), min(span.end, minute + 60))
            found = classify(datetime.fromtimestamp(minute, rules.zone), rules)
            last = segments[-1] if segments else None
            if (
                last is not None
                and last.span.end == piece.start
                and (last.windows, last.holiday, last.percent)
                == (found.windows, found.holiday, found.percent)
            ):
                segments[-1] = Segment(
                    Span(last.span.start, piece.end), last.windows, last.holiday, last.percent
                )
            elif piece.seconds:
                segments.append(Segment(piece, found.windows, found.holiday, found.percent))
            minute += 60
    return tuple(segments)
