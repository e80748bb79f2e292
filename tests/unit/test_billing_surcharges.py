"""Time windows in local time (midnight, DST), Dutch holidays, combining rules."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from relay.billing.holidays_nl import NL_DEFAULT_OBSERVED, easter_sunday, holiday_on, nl_holidays
from relay.billing.ratecard import TimeWindow
from relay.billing.spans import Span, epoch
from relay.billing.surcharges import WindowRules, classify, combine, split_by_window
from tests.unit.billing_helpers import AMS, card, local

CARD = card()


def rules(combine_mode: str = "highest") -> WindowRules:
    assert CARD.surcharges.holiday is not None
    return WindowRules(
        zone=AMS,
        windows=tuple((w, w.percent) for w in CARD.surcharges.windows),
        holiday=CARD.surcharges.holiday,
        holiday_percent=CARD.surcharges.holiday.percent,
        combine=combine_mode,
    )


@pytest.mark.parametrize(
    ("year", "easter"),
    [(2024, date(2024, 3, 31)), (2025, date(2025, 4, 20)), (2026, date(2026, 4, 5)),
     (2027, date(2027, 3, 28)), (2038, date(2038, 4, 25)), (2285, date(2285, 3, 22))],
)  # fmt: skip
def test_easter(year: int, easter: date) -> None:
    assert easter_sunday(year) == easter


def test_dutch_holidays_2026() -> None:
    days = nl_holidays(2026)
    assert days["kings_day"] == date(2026, 4, 27)
    assert days["ascension_day"] == date(2026, 5, 14)
    assert days["whit_monday"] == date(2026, 5, 25)
    assert days["easter_monday"] == date(2026, 4, 6)
    assert days["second_christmas_day"] == date(2026, 12, 26)


def test_kings_day_moves_to_saturday_when_the_27th_is_a_sunday() -> None:
    assert nl_holidays(2025)["kings_day"] == date(2025, 4, 26)
    assert holiday_on(date(2025, 4, 27), "NL", NL_DEFAULT_OBSERVED, ()) is None


def test_observed_list_and_extra_dates() -> None:
    assert holiday_on(date(2026, 4, 3), "NL", NL_DEFAULT_OBSERVED, ()) is None  # Good Friday
    assert holiday_on(date(2026, 4, 3), "NL", ("good_friday",), ()) == "good_friday"
    new_year_eve = date(2026, 12, 31)
    assert holiday_on(new_year_eve, "none", (), (new_year_eve,)) == "extra_date"
    assert holiday_on(date(2026, 12, 25), "none", (), ()) is None


def test_window_past_midnight_belongs_to_the_day_it_starts() -> None:
    friday_night = TimeWindow("late", (4,), 22 * 60, 2 * 60, Decimal(80))
    assert friday_night.covers(4, 23 * 60)  # Friday 23:00
    assert friday_night.covers(5, 60)  # Saturday 01:00, still Friday's window
    assert not friday_night.covers(5, 23 * 60)  # Saturday 23:00
    assert not friday_night.covers(4, 60)  # Friday 01:00 belongs to Thursday night
    assert not friday_night.covers(5, 2 * 60)  # the end is exclusive


@pytest.mark.parametrize(
    ("wall", "windows", "percent"),
    [
        ("2026-01-05 17:59", (), "0"),  # Monday, before the evening
        ("2026-01-05 18:00", ("evening",), "50"),
        ("2026-01-05 22:00", ("night",), "100"),
        ("2026-01-06 06:59", ("night",), "100"),
        ("2026-01-10 12:00", ("weekend",), "50"),  # Saturday
        ("2026-01-10 23:00", ("night", "weekend"), "100"),  # highest wins
        ("2026-04-27 10:00", ("holiday",), "100"),  # King's Day, a Monday
        ("2026-12-25 19:00", ("evening", "holiday"), "100"),  # Christmas, a Friday
    ],
)
def test_classify_by_local_wall_time(wall: str, windows: tuple[str, ...], percent: str) -> None:
    found = classify(datetime.fromisoformat(wall), rules())
    assert found.windows == windows
    assert found.percent == Decimal(percent)


def test_sum_combines_overlapping_windows() -> None:
    found = classify(datetime.fromisoformat("2026-01-10 23:00"), rules("sum"))
    assert found.percent == Decimal(150)
    assert combine([], "sum") == 0


def _split(start: datetime, end: datetime) -> list[tuple[str, str, int, tuple[str, ...]]]:
    segments = split_by_window([Span(epoch(start), epoch(end))], rules())
    return [
        (
            datetime.fromtimestamp(s.span.start, AMS).strftime("%H:%M:%S%z"),
            datetime.fromtimestamp(s.span.end, AMS).strftime("%H:%M:%S%z"),
            s.span.seconds,
            s.windows,
        )
        for s in segments
    ]


def test_split_at_window_edges_to_the_second() -> None:
    assert _split(local("2026-01-05 17:50:30"), local("2026-01-05 18:10:15")) == [
        ("17:50:30+0100", "18:00:00+0100", 570, ()),
        ("18:00:00+0100", "18:10:15+0100", 615, ("evening",)),
    ]


def test_split_across_spring_dst_change() -> None:
    # 2026-03-29: clocks go from 02:00 CET to 03:00 CEST; 01:30-03:30 local is one hour.
    assert _split(local("2026-03-29 06:30"), local("2026-03-29 07:30")) == [
        ("06:30:00+0200", "07:00:00+0200", 1800, ("night", "weekend")),
        ("07:00:00+0200", "07:30:00+0200", 1800, ("weekend",)),
    ]
    start, end = local("2026-03-29 01:30"), local("2026-03-29 03:30")
    assert epoch(end) - epoch(start) == 3600
    assert _split(start, end) == [
        ("01:30:00+0100", "03:30:00+0200", 3600, ("night", "weekend")),
    ]


def test_split_across_autumn_dst_change() -> None:
    # 2026-10-25: 03:00 CEST becomes 02:00 CET; the night window ends at 07:00 CET.
    assert _split(local("2026-10-25 06:30"), local("2026-10-25 07:30")) == [
        ("06:30:00+0100", "07:00:00+0100", 1800, ("night", "weekend")),
        ("07:00:00+0100", "07:30:00+0100", 1800, ("weekend",)),
    ]
