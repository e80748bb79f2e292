"""Activity and quiet stretches (pure), and idle exclusion to the second."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from relay.billing.facts import (
    EntryContext,
    SessionFacts,
    facts_from_json,
    facts_to_json,
    quiet_pairs,
)
from relay.billing.idle import exclude_idle
from relay.core import activity

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def minutes_of(*frames: tuple[float, int]) -> dict[int, activity.Minute]:
    found: dict[int, activity.Minute] = {}
    for second, size in frames:
        activity.record(found, second, size)
    return found


def test_a_sleep_is_one_quiet_stretch_from_the_last_to_the_next_payload() -> None:
    frames = minutes_of((0.2, 3000), (1.0, 400), (199.5, 500), (200.1, 300))
    assert activity.working(frames, noise=256) == [0, 3]
    assert activity.quiet(frames, noise=256, length=200.3) == (1, 199)


def test_output_every_five_seconds_is_never_quiet() -> None:
    frames = minutes_of(*[(5.0 * i, 300) for i in range(41)])
    assert activity.quiet(frames, noise=256, length=200.5) == ()


def test_noise_is_not_work_and_the_tail_of_a_session_counts() -> None:
    frames = minutes_of((0.5, 2000), (90.0, 200), (150.0, 30))  # a rekey-sized minute
    assert activity.working(frames, noise=256) == [0]
    assert activity.quiet(frames, noise=256, length=240.0) == (0, 240)


def session(length: int, quiet: tuple[tuple[int, int], ...] | None) -> SessionFacts:
    return SessionFacts(
        "ses-1", "cus-1", "tec-1", "agt-1", None, T0, T0 + timedelta(seconds=length),
        traffic_minutes=frozenset({0, length // 60}), quiet=quiet,
    )  # fmt: skip


def test_idle_is_what_a_quiet_stretch_lasts_beyond_the_threshold() -> None:
    result = exclude_idle(session(200, ((1, 199),)), threshold_minutes=1)
    assert result.excluded_seconds == 138  # 198 s quiet, the first minute tolerated
    assert result.kept_seconds == 62
    assert exclude_idle(session(200, ((1, 199),)), threshold_minutes=5).excluded_seconds == 0
    assert exclude_idle(session(200, ()), threshold_minutes=0).excluded_seconds == 0


def test_old_sessions_without_quiet_stretches_are_judged_by_minutes() -> None:
    result = exclude_idle(session(200, None), threshold_minutes=1)
    assert result.unit == "minute" and result.excluded_seconds == 60


def test_quiet_stretches_survive_the_facts_record() -> None:
    facts = session(200, quiet_pairs((1, 199)))
    (back,), _ = facts_from_json(facts_to_json([facts], EntryContext(technician_level=2)))
    assert back.quiet == ((1, 199),)
    older = facts_to_json([session(200, None)], EntryContext(technician_level=2))
    assert "quiet" not in older["sessions"][0]
