"""Dutch public holidays, computed (no data files, no network).

The days of the *Algemene termijnenwet* plus Easter and Whit Sunday, with Good
Friday available for offices that observe it. King's Day is 27 April, or the
26th when the 27th is a Sunday (from 2014; Queen's Day on 30 April, or the 29th
when that is a Sunday, before). Liberation Day (5 May) counts every year, as in
the law; an office that only observes it every fifth year leaves it out of
``observe`` and lists those years under ``extra_dates``.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

NL_HOLIDAYS = (
    "new_years_day",
    "good_friday",
    "easter_sunday",
    "easter_monday",
    "kings_day",
    "liberation_day",
    "ascension_day",
    "whit_sunday",
    "whit_monday",
    "christmas_day",
    "second_christmas_day",
)
NL_DEFAULT_OBSERVED = tuple(name for name in NL_HOLIDAYS if name != "good_friday")


def easter_sunday(year: int) -> date:
    """Gregorian Easter Sunday (the anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = divmod(h + el - 7 * m + 114, 31)
    return date(year, month, day + 1)


def _kings_day(year: int) -> date:
    if year >= 2014:
        day = date(year, 4, 27)
    else:
        day = date(year, 4, 30)
    return day - timedelta(days=1) if day.weekday() == 6 else day


@lru_cache(maxsize=64)
def nl_holidays(year: int) -> dict[str, date]:
    """Every Dutch holiday of ``year`` this module knows: name -> date."""
    easter = easter_sunday(year)
    return {
        "new_years_day": date(year, 1, 1),
        "good_friday": easter - timedelta(days=2),
        "easter_sunday": easter,
        "easter_monday": easter + timedelta(days=1),
        "kings_day": _kings_day(year),
        "liberation_day": date(year, 5, 5),
        "ascension_day": easter + timedelta(days=39),
        "whit_sunday": easter + timedelta(days=49),
        "whit_monday": easter + timedelta(days=50),
        "christmas_day": date(year, 12, 25),
        "second_christmas_day": date(year, 12, 26),
    }


def holiday_on(
    day: date, calendar: str, observe: tuple[str, ...], extra_dates: tuple[date, ...]
) -> str | None:
    """The name of the holiday ``day`` is under these settings, else ``None``.

    When two holidays share a date (Liberation and Ascension Day in 2008), the
    first observed one in calendar order names it.
    """
    if calendar == "NL":
        dates = nl_holidays(day.year)
        for name in NL_HOLIDAYS:
            if name in observe and dates[name] == day:
                return name
    if day in extra_dates:
        return "extra_date"
    return None
