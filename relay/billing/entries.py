"""Turn ended sessions into draft time entries (pure)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from relay.billing.compute import Computation
from relay.billing.rounding import RoundingRule, amount, billable_minutes
from relay.model import Session, TimeEntry


def draft_entry(
    session: Session,
    entry_id: str,
    started_at: datetime,
    ended_at: datetime,
    actual_seconds: int,
    hourly_rate: Decimal,
    rule: RoundingRule,
    created_at: datetime,
) -> TimeEntry:
    """The draft entry for one session, with the derivation kept in ``details``."""
    seconds = max(0, actual_seconds)
    minutes = billable_minutes(seconds, rule)
    return TimeEntry(
        id=entry_id,
        session_ids=(session.id,),
        customer_id=session.customer_id,
        agent_id=session.agent_id,
        technician_id=session.technician_id,
        started_at=started_at,
        ended_at=ended_at,
        actual_seconds=seconds,
        billable_minutes=minutes,
        hourly_rate=hourly_rate,
        amount=amount(minutes, hourly_rate),
        status="draft",
        created_at=created_at,
        request=session.request,
        details={
            "rounding": {
                "minimum_minutes": rule.minimum_minutes,
                "increment_minutes": rule.increment_minutes,
                "mode": rule.mode,
                "grace_seconds": rule.grace_seconds,
            },
            "bytes_to_agent": session.bytes_to_agent,
            "bytes_to_technician": session.bytes_to_technician,
        },
    )


def entry_from_computation(
    computation: Computation, entry_id: str, created_at: datetime, notes: str = ""
) -> TimeEntry:
    """The draft entry for a computed reconnect group; ``details`` holds the full
    explanation, raw facts included, so the amount can be recomputed later."""
    return TimeEntry(
        id=entry_id,
        session_ids=computation.session_ids,
        customer_id=computation.customer_id,
        agent_id=computation.agent_id,
        technician_id=computation.technician_id,
        started_at=computation.started_at,
        ended_at=computation.ended_at,
        actual_seconds=computation.actual_seconds,
        billable_minutes=computation.billable_minutes,
        hourly_rate=computation.hourly_rate,
        amount=computation.amount,
        status="draft",
        created_at=created_at,
        service_type=computation.context.service_type,
        request=computation.request,
        notes=notes,
        details=computation.explanation,
    )


def not_billed_reason(actual_seconds: int, rule: RoundingRule) -> str:
    """Why ``actual_seconds`` of work come to 0 billable minutes under ``rule``."""
    minutes, seconds = divmod(max(0, actual_seconds), 60)
    took = f"{minutes} min {seconds:02d} s"
    if actual_seconds < rule.grace_seconds:
        return f"{took} is shorter than the {rule.grace_seconds} s grace period: not billed"
    return (
        f"{took} rounds {rule.mode} to 0 minutes (steps of {rule.increment_minutes} min, "
        f"minimum {rule.minimum_minutes} min): not billed"
    )


def explained_rule(explanation: dict[str, Any]) -> RoundingRule:
    """The rounding rule a computed entry's explanation records."""
    rule = explanation["rounding"]["rule"]
    return RoundingRule(
        minimum_minutes=int(rule["minimum_minutes"]["value"]),
        increment_minutes=int(rule["increment_minutes"]["value"]),
        mode=str(rule["mode"]["value"]),
        grace_seconds=int(rule["grace_seconds"]["value"]),
    )
