"""Compute one time entry from raw facts and a rate card: every figure, explained.

Steps, in order (each recorded in :attr:`Computation.explanation`):

1. **Merge**: the sessions of one reconnect group are one piece of work, from the
   first start to the last end: the time between two sessions counts like a
   quiet stretch inside one (overlaps count once).
2. **Idle**: every quiet stretch, inside a session or between two, is tolerated up
   to the idle threshold; what lasts beyond it is excluded.
3. **Grace, then rounding**: if the work left is shorter than the grace period it
   bills nothing (the draft stays, so a later reconnect can join it); otherwise
   the actual seconds become billable minutes by the rounding rule for this
   customer × service type, once per entry (the minimum is charged once).
4. **Rate**: the most specific base rate × the complexity multiplier.
5. **Surcharges**: actual time is split by local time window; urgency adds to
   every minute. Time that rounding adds (minimum, started increment) bills at
   the lowest surcharge of the entry; time that rounding removes comes off the
   highest. Rounding thus never moves time into a dearer window, and merging
   reconnects (one rounding instead of several) never costs more.
6. **Amount**: Σ billed seconds × rate × (100 % + surcharge) × (1 − discount),
   rounded half-up to cents once, at the end.

Everything is a pure function of its inputs, so recomputing an entry from the
raw facts in its explanation with the same card gives the same amount.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from typing import Any

from relay.billing.explain import render_text
from relay.billing.facts import EntryContext, SessionFacts, facts_from_json, facts_to_json
from relay.billing.idle import IdleResult, exclude_idle
from relay.billing.merge import gaps
from relay.billing.ratecard import RateCard
from relay.billing.ratecard_export import card_digest
from relay.billing.resolve import Resolution, resolve
from relay.billing.rounding import CENT, RoundingRule, billable_minutes
from relay.billing.spans import Span, subtract, total, union, utc
from relay.billing.surcharges import Segment, WindowRules, split_by_window
from shared.clock import iso
from shared.errors import ConfigError, UsageError

EXPLANATION_VERSION = 1
_EXACT = Context(prec=60)  # intermediate results; only the final amount is rounded


@dataclass(frozen=True)
class Computation:
    """Every figure of one entry, and how it was derived (``explanation``, JSON-able)."""

    session_ids: tuple[str, ...]
    customer_id: str
    technician_id: str
    agent_id: str
    request: str | None
    context: EntryContext
    started_at: datetime
    ended_at: datetime
    span_seconds: int  # session time, overlaps once, failed connects left out
    idle_excluded_seconds: int
    actual_seconds: int  # what was billed from: span minus excluded idle time
    billable_minutes: int
    hourly_rate: Decimal  # base rate × complexity multiplier, before surcharges
    amount: Decimal
    currency: str
    card_effective_from: date
    card_digest: str
    explanation: dict[str, Any]

    def explain_text(self) -> str:
        """The explanation as lines a person reads."""
        return render_text(self.explanation)


@dataclass(frozen=True)
class Bucket:
    """Billed time that shares its windows and so its surcharge."""

    windows: tuple[str, ...]
    holiday: str | None
    percent: Decimal  # time window surcharge + urgency
    actual_seconds: int
    billed_seconds: int  # after rounding's adjustment


@dataclass(frozen=True)
class _Figures:
    actual_seconds: int
    billable_minutes: int
    buckets: tuple[Bucket, ...]
    amount_exact: Decimal
    amount: Decimal
    segments: tuple[Segment, ...]


def compute_entry(
    sessions: Sequence[SessionFacts], card: RateCard, context: EntryContext
) -> Computation:
    """The entry for ``sessions`` (one reconnect group, see :mod:`merge`) under ``card``."""
    group = _check_group(sessions)
    first = group[0]
    res = resolve(
        card, first.customer_id, context.service_type, context.technician_level, context.complexity
    )
    rules = _window_rules(card, res)
    urgent = Decimal(res.urgent.value) if context.urgent else Decimal(0)
    grace = int(res.rounding["grace_seconds"].value)
    threshold = int(res.idle_threshold_minutes.value)
    idle = [exclude_idle(s, threshold) for s in group]
    bridges = _bridges(group, threshold)
    kept_parts = [i.kept for i in idle] + [b.kept for b in bridges]

    merged = _figures(kept_parts, res, rules, urgent)
    failed: list[SessionFacts] = []
    if merged.actual_seconds < grace:  # all of it together is still a failed connect
        failed = list(group)
        merged = _figures(kept_parts, res, rules, urgent, minutes=0)
    separate = [_figures([i.kept], res, rules, urgent) for i in idle]
    minutes, amount = merged.billable_minutes, merged.amount
    minutes_capped = amount_capped = False

    stretch = union([*(i.span for i in idle), *(b.span for b in bridges)])
    span_seconds = total(stretch)
    kept = union(s for part in kept_parts for s in part)
    excluded = subtract(stretch, kept)
    explanation = _explain(
        group=group,
        context=context,
        card=card,
        res=res,
        idle=idle,
        failed=failed,
        figures=merged,
        separate=separate,
        excluded=excluded,
        span_seconds=span_seconds,
        minutes=(minutes, minutes_capped),
        amount=(amount, amount_capped),
    )
    explanation["merge"]["between"] = [
        {**_span_json(b.span), "kept_seconds": total(b.kept)} for b in bridges
    ]
    explanation["rounding"]["grace_seconds"] = grace
    return Computation(
        session_ids=tuple(s.session_id for s in group),
        customer_id=first.customer_id,
        technician_id=first.technician_id,
        agent_id=first.agent_id,
        request=first.request,
        context=context,
        started_at=utc(min(s.span.start for s in group)),
        ended_at=utc(max(s.span.end for s in group)),
        span_seconds=span_seconds,
        idle_excluded_seconds=total(excluded),
        actual_seconds=merged.actual_seconds,
        billable_minutes=minutes,
        hourly_rate=res.hourly_rate,
        amount=amount,
        currency=card.currency,
        card_effective_from=card.effective_from,
        card_digest=card_digest(card),
        explanation=explanation,
    )


def recompute(explanation: dict[str, Any], card: RateCard) -> Computation:
    """Compute again from the raw facts an explanation recorded, with its card.

    :class:`ConfigError` if ``card`` is not the card the entry was computed with.
    """
    recorded = explanation["card"]["digest"]
    if card_digest(card) != recorded:
        raise ConfigError(
            f"this entry was computed with rate card {recorded}, not {card_digest(card)}"
        )
    sessions, context = facts_from_json(explanation["facts"])
    return compute_entry(sessions, card, context)


@dataclass(frozen=True)
class Bridge:
    """The time between two sessions of one piece of work, treated as a quiet
    stretch: kept up to the idle threshold, excluded beyond it."""

    span: Span
    kept: tuple[Span, ...]


def _bridges(group: Sequence[SessionFacts], threshold_minutes: int) -> list[Bridge]:
    out: list[Bridge] = []
    end: int | None = None
    for session in group:  # sorted by start
        if end is not None and session.span.start > end:
            gap = Span(end, session.span.start)
            kept_until = min(gap.end, gap.start + threshold_minutes * 60)
            kept = (Span(gap.start, kept_until),) if kept_until > gap.start else ()
            out.append(Bridge(gap, kept))
        end = session.span.end if end is None else max(end, session.span.end)
    return out


def _check_group(sessions: Sequence[SessionFacts]) -> tuple[SessionFacts, ...]:
    if not sessions:
        raise UsageError("an entry needs at least one session")
    group = tuple(sorted(sessions, key=lambda s: (s.span.start, s.span.end, s.session_id)))
    if len({s.merge_key for s in group}) != 1:
        raise UsageError("sessions of one entry must share customer, technician, agent, request")
    if len({s.session_id for s in group}) != len(group):
        raise UsageError("a session appears twice in one entry")
    return group


def _window_rules(card: RateCard, res: Resolution) -> WindowRules:
    return WindowRules(
        zone=card.zone,
        windows=tuple((w, Decimal(p.value)) for w, p in res.windows),
        holiday=card.surcharges.holiday,
        holiday_percent=Decimal(res.holiday.value) if res.holiday else Decimal(0),
        combine=card.surcharges.combine,
    )


def _figures(
    kept: Sequence[Sequence[Span]],
    res: Resolution,
    rules: WindowRules,
    urgent: Decimal,
    minutes: int | None = None,
) -> _Figures:
    spans = union(s for spans in kept for s in spans)
    actual = total(spans)
    if minutes is None:
        minutes = billable_minutes(actual, _entry_rule(res))
    segments = split_by_window(spans, rules)
    buckets = _adjust(_buckets(segments, urgent), minutes * 60 - actual)
    discount = Decimal(res.discount_percent.value)
    with localcontext(_EXACT):
        weight = sum((b.billed_seconds * (100 + b.percent) for b in buckets), Decimal(0))
        exact = res.hourly_rate * weight * (100 - discount) / (3600 * 100 * 100)
        rounded = exact.quantize(CENT, rounding=ROUND_HALF_UP)
    return _Figures(actual, minutes, buckets, exact, rounded, segments)


def _entry_rule(res: Resolution) -> RoundingRule:
    # The grace period already sorted out failed connects by session length; the
    # kept time of real sessions is rounded without it, so that joining sessions
    # never turns unbilled seconds into a minimum charge.
    return replace(res.rounding_rule, grace_seconds=0)


def _buckets(segments: Sequence[Segment], urgent: Decimal) -> list[Bucket]:
    seconds: dict[tuple[tuple[str, ...], str | None, Decimal], int] = {}
    for seg in segments:
        key = (seg.windows, seg.holiday, seg.percent + urgent)
        seconds[key] = seconds.get(key, 0) + seg.span.seconds
    return [Bucket(w, h, p, s, s) for (w, h, p), s in seconds.items()]


def _adjust(buckets: list[Bucket], delta: int) -> tuple[Bucket, ...]:
    """Add ``delta`` seconds at the lowest surcharge, or remove them from the highest."""
    if not buckets or delta == 0:
        return tuple(buckets)
    order = sorted(range(len(buckets)), key=lambda i: (buckets[i].percent, i))
    if delta > 0:
        low = order[0]
        b = buckets[low]
        buckets[low] = Bucket(
            b.windows, b.holiday, b.percent, b.actual_seconds, b.billed_seconds + delta
        )
        return tuple(buckets)
    remove = -delta
    for i in reversed(order):
        b = buckets[i]
        take = min(remove, b.billed_seconds)
        buckets[i] = Bucket(
            b.windows, b.holiday, b.percent, b.actual_seconds, b.billed_seconds - take
        )
        remove -= take
    return tuple(buckets)


def _span_json(span: Span, card: RateCard | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "from": iso(utc(span.start)),
        "to": iso(utc(span.end)),
        "seconds": span.seconds,
    }
    if card is not None:
        out["local_from"] = utc(span.start).astimezone(card.zone).isoformat()
        out["local_to"] = utc(span.end).astimezone(card.zone).isoformat()
    return out


def _idle_json(result: IdleResult, threshold: int) -> dict[str, Any]:
    if result.unit == "second":
        quiet = [
            {
                "from_second": run.first,
                "to_second": run.last + 1,
                "seconds": run.last + 1 - run.first,
                "excluded_seconds": max(0, run.last + 1 - run.excluded_from),
            }
            for run in result.runs
        ]
        return {
            "session_id": result.session_id,
            **_span_json(result.span),
            "idle_runs": [],
            "quiet": quiet,
            "excluded": [_span_json(s) for s in result.excluded],
            "excluded_seconds": result.excluded_seconds,
            "kept_seconds": result.kept_seconds,
            "threshold_minutes": threshold,
        }
    return {
        "session_id": result.session_id,
        **_span_json(result.span),
        "idle_runs": [
            {
                "first_minute": run.first,
                "last_minute": run.last,
                "minutes": run.minutes,
                "excluded_minutes": run.excluded_minutes,
            }
            for run in result.runs
            if run.minutes
        ],
        "excluded": [_span_json(s) for s in result.excluded],
        "excluded_seconds": result.excluded_seconds,
        "kept_seconds": result.kept_seconds,
        "threshold_minutes": threshold,
    }


def _explain(
    *,
    group: tuple[SessionFacts, ...],
    context: EntryContext,
    card: RateCard,
    res: Resolution,
    idle: list[IdleResult],
    failed: list[SessionFacts],
    figures: _Figures,
    separate: list[_Figures],
    excluded: tuple[Span, ...],
    span_seconds: int,
    minutes: tuple[int, bool],
    amount: tuple[Decimal, bool],
) -> dict[str, Any]:
    threshold = int(res.idle_threshold_minutes.value)
    actual = figures.actual_seconds
    return {
        "version": EXPLANATION_VERSION,
        "facts": facts_to_json(group, context),
        "card": {
            "name": card.name,
            "effective_from": card.effective_from.isoformat(),
            "digest": card_digest(card),
            "currency": card.currency,
            "timezone": card.timezone,
        },
        "sessions": {
            "failed_connects": [{"session_id": s.session_id, **_span_json(s.span)} for s in failed],
            "billed": [_idle_json(i, threshold) for i in idle],
        },
        "merge": {
            "window_minutes": res.merge_window_minutes.to_json(),
            "session_count": len(group),
            "gaps_seconds": gaps(group),
        },
        "idle": {
            "threshold_minutes": res.idle_threshold_minutes.to_json(),
            "excluded": [_span_json(s) for s in excluded],
            "excluded_seconds": total(excluded),
        },
        "time": {
            "span_seconds": span_seconds,
            "idle_excluded_seconds": total(excluded),
            "actual_seconds": actual,
            "actual_minutes": str((Decimal(actual) / 60).quantize(CENT, ROUND_HALF_UP)),
        },
        "rounding": {
            "rule": {name: pick.to_json() for name, pick in res.rounding.items()},
            "merged_minutes": billable_minutes(actual, _entry_rule(res)),
            "separate_minutes": [f.billable_minutes for f in separate],
            "capped_at_separate": minutes[1],
            "billable_minutes": minutes[0],
        },
        "rate": {
            "service_type": res.service_type,
            "level": res.level,
            "complexity": res.complexity,
            "base": res.base_rate.to_json(),
            "considered": [c.to_json() for c in res.considered],
            "multiplier": res.multiplier.to_json(),
            "hourly_rate": str(res.hourly_rate),
        },
        "surcharges": {
            "combine": card.surcharges.combine,
            "windows": {w.name: p.to_json() for w, p in res.windows},
            "holiday": None if res.holiday is None else res.holiday.to_json(),
            "urgent": {"applies": context.urgent, **res.urgent.to_json()},
            "segments": [
                {
                    **_span_json(seg.span, card),
                    "windows": list(seg.windows),
                    "holiday": seg.holiday,
                    "percent": str(seg.percent),
                }
                for seg in figures.segments
            ],
            "billed": [
                {
                    "windows": list(b.windows),
                    "holiday": b.holiday,
                    "percent": str(b.percent),
                    "actual_seconds": b.actual_seconds,
                    "billed_seconds": b.billed_seconds,
                }
                for b in figures.buckets
            ],
            "rounding_adjustment_seconds": figures.billable_minutes * 60 - actual,
        },
        "discount": res.discount_percent.to_json(),
        "amount": {
            "exact": str(figures.amount_exact),
            "merged": str(figures.amount),
            "separate": [str(f.amount) for f in separate],
            "capped_at_separate": amount[1],
            "value": str(amount[0]),
            "currency": card.currency,
        },
    }
