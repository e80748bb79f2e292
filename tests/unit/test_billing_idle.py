"""Idle exclusion: idle minutes beyond the threshold are excluded and shown."""

from __future__ import annotations

from relay.billing.idle import exclude_idle, idle_runs
from relay.billing.spans import epoch
from tests.unit.billing_helpers import local, session

START = local("2026-01-05 10:00")


def test_a_long_idle_run_keeps_the_threshold_and_excludes_the_rest() -> None:
    s = session(START, 40, traffic=[*range(10), *range(30, 40)])
    result = exclude_idle(s, 5)
    assert [(r.first, r.last, r.excluded_minutes) for r in result.runs] == [(10, 29, 15)]
    base = epoch(START)
    assert [(x.start - base, x.end - base) for x in result.excluded] == [(15 * 60, 30 * 60)]
    assert result.excluded_seconds == 15 * 60
    assert result.kept_seconds == 25 * 60


def test_runs_up_to_the_threshold_are_kept() -> None:
    s = session(START, 20, traffic=[0, 6, 12, 18, 19])
    assert idle_runs(s) == [(1, 5), (7, 11), (13, 17)]
    assert exclude_idle(s, 5).excluded == ()
    assert exclude_idle(s, 4).excluded_seconds == 3 * 60


def test_a_trailing_partial_minute_counts_only_its_seconds() -> None:
    s = session(START, 10.5, traffic=[0, 1])  # minutes 2..10, the last one 30 s
    result = exclude_idle(s, 2)
    assert result.excluded_seconds == 6 * 60 + 30
    assert result.kept_seconds == 4 * 60


def test_threshold_zero_excludes_every_idle_minute() -> None:
    s = session(START, 5, traffic=[1, 3])
    assert exclude_idle(s, 0).kept_seconds == 2 * 60


def test_no_traffic_at_all() -> None:
    s = session(START, 30, traffic=[])
    assert exclude_idle(s, 5).kept_seconds == 5 * 60


def test_indices_past_the_end_are_ignored() -> None:
    s = session(START, 3, traffic=[0, 1, 2, 3, 99])
    assert exclude_idle(s, 0).kept_seconds == 3 * 60
