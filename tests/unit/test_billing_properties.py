"""Properties of billing over generated sessions, cards and contexts.

Runs are derandomized so the suite is deterministic; starts cluster around DST
changes, midnight and holidays as well as anywhere in 2026.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal, localcontext

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.billing.compute import Computation, compute_entry, recompute
from relay.billing.facts import EntryContext, SessionFacts
from relay.billing.idle import exclude_idle
from relay.billing.merge import merge_sessions
from relay.billing.ratecard import RateCard
from relay.billing.ratecard_export import to_toml
from relay.billing.ratecard_parse import parse_rate_card
from relay.billing.rounding import RoundingRule, billable_minutes
from tests.unit.billing_helpers import CARD_TEXT

PROPERTY = settings(
    derandomize=True,
    deadline=None,
    max_examples=int(os.environ.get("QP_HYPOTHESIS_EXAMPLES", "120")),
    suppress_health_check=[HealthCheck.too_slow],
)

ANCHORS = [
    datetime(2026, 3, 29, 0, 0, tzinfo=UTC),  # spring DST change at 01:00 UTC
    datetime(2026, 10, 25, 0, 0, tzinfo=UTC),  # autumn DST change at 01:00 UTC
    datetime(2026, 4, 26, 20, 0, tzinfo=UTC),  # midnight into King's Day
    datetime(2026, 12, 24, 16, 0, tzinfo=UTC),  # Christmas Eve evening
    datetime(2026, 1, 9, 20, 0, tzinfo=UTC),  # Friday evening into the weekend
]
YEAR = datetime(2026, 1, 1, tzinfo=UTC)


@st.composite
def starts(draw: st.DrawFn) -> datetime:
    if draw(st.booleans()):
        anchor = draw(st.sampled_from(ANCHORS))
        return anchor + timedelta(seconds=draw(st.integers(0, 6 * 3600)))
    return YEAR + timedelta(seconds=draw(st.integers(0, 364 * 86400)))


@st.composite
def traffic(draw: st.DrawFn, minutes: int) -> frozenset[int]:
    """Alternating runs of busy and idle minutes."""
    out: set[int] = set()
    i, busy = 0, draw(st.booleans())
    while i < minutes:
        length = draw(st.integers(1, 25))
        if busy:
            out.update(range(i, min(minutes, i + length)))
        i, busy = i + length, not busy
    return frozenset(out)


@st.composite
def one_session(draw: st.DrawFn, start: datetime | None = None, sid: str = "ses-1") -> SessionFacts:
    begin = start if start is not None else draw(starts())
    seconds = draw(st.one_of(st.integers(0, 200), st.integers(0, 4 * 3600)))
    return SessionFacts(
        session_id=sid,
        customer_id=draw(st.sampled_from(["cus-1", "cus-big"])),
        technician_id="tec-1",
        agent_id="agt-1",
        request="T-1",
        started_at=begin,
        ended_at=begin + timedelta(seconds=seconds),
        traffic_minutes=draw(traffic(-(-seconds // 60))),
    )


@st.composite
def groups(draw: st.DrawFn) -> tuple[SessionFacts, ...]:
    """1-4 sessions of one piece of work, possibly overlapping."""
    at = draw(starts())
    customer = draw(st.sampled_from(["cus-1", "cus-big"]))
    out = []
    for n in range(draw(st.integers(1, 4))):
        s = draw(one_session(start=at, sid=f"ses-{n}"))
        s = SessionFacts(
            s.session_id, customer, "tec-1", "agt-1", "T-1", s.started_at, s.ended_at,
            s.traffic_minutes,
        )  # fmt: skip
        out.append(s)
        at = s.ended_at + timedelta(seconds=draw(st.integers(-1800, 900)))
    return tuple(out)


@st.composite
def cards(draw: st.DrawFn) -> RateCard:
    mode = draw(st.sampled_from(["up", "nearest", "down"]))
    return _card(
        mode,
        minimum=draw(st.integers(0, 30)),
        increment=draw(st.integers(1, 15)),
        grace=draw(st.integers(0, 120)),
        idle=draw(st.integers(0, 10)),
        combine=draw(st.sampled_from(["highest", "sum"])),
    )


_CARDS: dict[tuple[object, ...], RateCard] = {}


def _card(mode: str, minimum: int, increment: int, grace: int, idle: int, combine: str) -> RateCard:
    key = (mode, minimum, increment, grace, idle, combine)
    if key not in _CARDS:
        text = (
            CARD_TEXT.replace('mode = "up"', f'mode = "{mode}"')
            .replace("minimum_minutes = 15", f"minimum_minutes = {minimum}")
            .replace("increment_minutes = 5", f"increment_minutes = {increment}")
            .replace("grace_seconds = 60", f"grace_seconds = {grace}")
            .replace("idle_threshold_minutes = 5", f"idle_threshold_minutes = {idle}")
            .replace('combine = "highest"', f'combine = "{combine}"')
        )
        _CARDS[key] = parse_rate_card(text, "generated.toml")
    return _CARDS[key]


contexts = st.builds(
    EntryContext,
    technician_level=st.integers(1, 3),
    service_type=st.sampled_from(["remote_support", "project", "on_call", "phone", "on_site"]),
    complexity=st.sampled_from(["standard", "complex", "specialist"]),
    urgent=st.booleans(),
)


def _rule(c: Computation) -> RoundingRule:
    rule = c.explanation["rounding"]["rule"]
    return RoundingRule(**{name: pick["value"] for name, pick in rule.items()})


@PROPERTY
@given(groups(), cards(), contexts)
def test_billed_time_is_never_below_the_minimum(
    group: tuple[SessionFacts, ...], card: RateCard, context: EntryContext
) -> None:
    c = compute_entry(group, card, context)
    assert c.billable_minutes == 0 or c.billable_minutes >= _rule(c).minimum_minutes
    assert (c.amount == 0) == (c.billable_minutes == 0)
    assert c.amount == c.amount.quantize(Decimal("0.01"))


@PROPERTY
@given(one_session(), cards(), contexts)
def test_excluded_idle_minutes_are_never_billed(
    s: SessionFacts, card: RateCard, context: EntryContext
) -> None:
    c = compute_entry([s], card, context)
    threshold = c.explanation["idle"]["threshold_minutes"]["value"]
    if c.explanation["sessions"]["failed_connects"]:
        assert c.billable_minutes == 0
        return
    assert c.actual_seconds == s.span.seconds - c.idle_excluded_seconds
    # Grace sorts out failed connects by session length; kept time rounds without it.
    assert c.billable_minutes == billable_minutes(
        c.actual_seconds, replace(_rule(c), grace_seconds=0)
    )
    idle = exclude_idle(s, threshold)
    for span in idle.excluded:
        for second in range(span.start, span.end, 30):
            index = (second - s.span.start) // 60
            assert index not in s.traffic_minutes
            # ...and at least ``threshold`` idle minutes precede it in its run.
            assert all(index - k not in s.traffic_minutes for k in range(threshold + 1))
    busy = s.span.seconds - sum(
        min(60, s.span.end - (s.span.start + 60 * i))
        for i in range(s.minute_count)
        if i not in s.traffic_minutes
    )
    assert busy <= c.actual_seconds  # traffic minutes are always kept
    # Billed time only counts kept seconds: all-busy traffic never bills less.
    full = SessionFacts(**{**s.__dict__, "traffic_minutes": frozenset(range(s.minute_count))})
    assert compute_entry([full], card, context).billable_minutes >= c.billable_minutes


@PROPERTY
@given(groups(), cards(), contexts)
def test_a_merged_entry_is_its_stretch_less_idle_rounded_once(
    group: tuple[SessionFacts, ...], card: RateCard, context: EntryContext
) -> None:
    merged = compute_entry(group, card, context)
    first = min(s.span.start for s in group)
    last = max(s.span.end for s in group)
    assert merged.span_seconds == last - first  # the time between sessions is in it
    assert merged.actual_seconds == merged.span_seconds - merged.idle_excluded_seconds
    rule = _rule(merged)
    if merged.actual_seconds < rule.grace_seconds:
        assert (merged.billable_minutes, merged.amount) == (0, Decimal("0.00"))
    else:  # grace on the merged time, then the minimum and the increment once
        assert merged.billable_minutes == billable_minutes(
            merged.actual_seconds, replace(rule, grace_seconds=0)
        )
    # Separate entries each pay the minimum: one piece of work never pays it twice.
    separate = [compute_entry([s], card, context) for s in group]
    if rule.mode == "up" and all(c.billable_minutes for c in separate):
        with localcontext(Context(prec=80)):
            assert merged.billable_minutes <= max(
                sum(c.billable_minutes for c in separate),
                billable_minutes(last - first, replace(rule, grace_seconds=0)),
            )


@PROPERTY
@given(groups(), cards(), contexts)
def test_recomputing_from_raw_facts_gives_the_stored_amount(
    group: tuple[SessionFacts, ...], card: RateCard, context: EntryContext
) -> None:
    stored = compute_entry(group, card, context)
    record = json.loads(json.dumps(stored.explanation))
    reimported = parse_rate_card(to_toml(card), "exported.toml")
    again = recompute(record, reimported)
    assert again.amount == stored.amount
    assert again.billable_minutes == stored.billable_minutes
    assert again.explanation == stored.explanation


@PROPERTY
@given(st.lists(one_session(), max_size=8), st.integers(0, 30))
def test_merge_groups_partition_the_sessions(sessions: list[SessionFacts], window: int) -> None:
    sessions = [
        SessionFacts(**{**s.__dict__, "session_id": f"ses-{i}"}) for i, s in enumerate(sessions)
    ]
    grouped = merge_sessions(sessions, window)
    ids = sorted(s.session_id for g in grouped for s in g)
    assert ids == sorted(s.session_id for s in sessions)
    for g in grouped:
        assert len({s.merge_key for s in g}) == 1
