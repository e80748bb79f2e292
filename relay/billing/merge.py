"""Reconnect merge: sessions that are one piece of work become one entry.

Sessions of the same customer, technician, agent and request form one group when
each starts less than the merge window after the group so far ended (overlapping
sessions always join: parallel sessions are one technician's time, billed once).
The minimum charge then applies once per group.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from relay.billing.facts import SessionFacts
from relay.billing.ratecard import RateCard
from relay.billing.resolve import session_settings

_WindowOf = Callable[[str], int]


def merge_sessions(
    sessions: Iterable[SessionFacts], window_minutes: int
) -> list[tuple[SessionFacts, ...]]:
    """Group ``sessions`` into entries; groups ordered by start, sessions by start."""
    return merge_with(sessions, lambda _customer: window_minutes)


def merge_for_card(
    sessions: Iterable[SessionFacts], card: RateCard
) -> list[tuple[SessionFacts, ...]]:
    """:func:`merge_sessions` with each customer's merge window from ``card``."""
    return merge_with(sessions, lambda customer: int(session_settings(card, customer)[0].value))


def merge_with(
    sessions: Iterable[SessionFacts], window_of: _WindowOf
) -> list[tuple[SessionFacts, ...]]:
    by_key: dict[tuple[str, str, str, str], list[SessionFacts]] = {}
    for session in sessions:
        by_key.setdefault(session.merge_key, []).append(session)
    groups: list[tuple[SessionFacts, ...]] = []
    for key, members in by_key.items():
        window = window_of(key[0]) * 60
        if window < 0:
            raise ValueError("the merge window cannot be negative")
        members.sort(key=lambda s: (s.span.start, s.span.end, s.session_id))
        current: list[SessionFacts] = []
        end = 0
        for session in members:
            gap = session.span.start - end
            if current and (gap < window or gap < 0):
                current.append(session)
                end = max(end, session.span.end)
            else:
                if current:
                    groups.append(tuple(current))
                current, end = [session], session.span.end
        groups.append(tuple(current))
    groups.sort(key=lambda g: (g[0].span.start, g[0].merge_key, g[0].session_id))
    return groups


def gaps(group: Iterable[SessionFacts]) -> list[int]:
    """Seconds between each session and the end of the ones before it (≤ 0: overlap)."""
    out: list[int] = []
    end: int | None = None
    for session in sorted(group, key=lambda s: (s.span.start, s.span.end, s.session_id)):
        if end is not None:
            out.append(session.span.start - end)
            end = max(end, session.span.end)
        else:
            end = session.span.end
    return out
