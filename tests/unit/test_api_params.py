"""Reading times from console calls: company time or an explicit offset, and never a
guess on the night the clocks change."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from relay.api.params import moment
from shared.errors import UsageError

AMS = ZoneInfo("Europe/Amsterdam")


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2026-11-03 14:00", datetime(2026, 11, 3, 13, 0, tzinfo=UTC)),
        ("2026-07-03 14:00", datetime(2026, 7, 3, 12, 0, tzinfo=UTC)),
        ("2026-10-25 01:59", datetime(2026, 10, 24, 23, 59, tzinfo=UTC)),
        ("2026-10-25 03:00", datetime(2026, 10, 25, 2, 0, tzinfo=UTC)),
        ("2026-10-25 02:30+02:00", datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
        ("2026-10-25 02:30+01:00", datetime(2026, 10, 25, 1, 30, tzinfo=UTC)),
        ("2026-03-29 02:30+01:00", datetime(2026, 3, 29, 1, 30, tzinfo=UTC)),
        ("2026-03-29T01:30Z", datetime(2026, 3, 29, 1, 30, tzinfo=UTC)),
    ],
)
def test_company_time_and_offsets(text: str, utc: datetime) -> None:
    assert moment(text, "start", AMS) == utc


def test_a_time_the_clocks_show_twice_asks_for_the_offset() -> None:
    with pytest.raises(UsageError) as caught:
        moment("2026-10-25 02:30", "start", AMS)
    assert str(caught.value) == (
        "start '2026-10-25 02:30' happens twice in Europe/Amsterdam (the clocks go back); "
        "give the offset: '2026-10-25 02:30+02:00' for the first, "
        "'2026-10-25 02:30+01:00' for the second"
    )


def test_a_time_the_clocks_skip_asks_for_the_offset() -> None:
    with pytest.raises(UsageError) as caught:
        moment("2026-03-29 02:30", "end", AMS)
    assert str(caught.value) == (
        "end '2026-03-29 02:30' does not exist in Europe/Amsterdam (the clocks go forward); "
        "give the offset, e.g. '2026-03-29 02:30+01:00'"
    )
