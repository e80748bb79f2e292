"""Idle exclusion: a client pays for time actually spent.

Within one session, a stretch without payload is tolerated up to the threshold
(reading, thinking, waiting for a reboot); what lasts beyond the threshold is
excluded and reported. A threshold of 0 excludes every quiet stretch.

The relay records quiet stretches to the second (``SessionFacts.quiet``, each at
least a minute long). Sessions recorded before it did are judged by their traffic
minutes: a run of consecutive minutes without traffic, beyond the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

from relay.billing.facts import SessionFacts
from relay.billing.spans import Span, subtract


@dataclass(frozen=True)
class IdleRun:
    """Consecutive idle minutes ``first..last`` (inclusive indices) of a session."""

    first: int
    last: int
    excluded_from: int  # first excluded index; > last when nothing was excluded

    @property
    def minutes(self) -> int:
        return self.last - self.first + 1

    @property
    def excluded_minutes(self) -> int:
        return max(0, self.last - self.excluded_from + 1)


@dataclass(frozen=True)
class IdleResult:
    session_id: str
    span: Span
    runs: tuple[IdleRun, ...]  # every idle run, excluded or not
    excluded: tuple[Span, ...]  # the time not billed
    kept: tuple[Span, ...]  # the session's time minus ``excluded``
    unit: str = "minute"  # what the runs' indices count: minutes, or seconds (quiet)

    @property
    def kept_seconds(self) -> int:
        return sum(s.seconds for s in self.kept)

    @property
    def excluded_seconds(self) -> int:
        return sum(s.seconds for s in self.excluded)


def idle_runs(session: SessionFacts) -> list[tuple[int, int]]:
    """Inclusive index ranges of the session's minutes without traffic."""
    runs: list[tuple[int, int]] = []
    for i in range(session.minute_count):
        if i in session.traffic_minutes:
            continue
        if runs and runs[-1][1] == i - 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def exclude_idle(session: SessionFacts, threshold_minutes: int) -> IdleResult:
    """Split a session's time into kept and excluded idle time."""
    if threshold_minutes < 0:
        raise ValueError("the idle threshold cannot be negative")
    if session.quiet is not None:
        return _exclude_quiet(session, session.quiet, threshold_minutes)
    span = session.span
    runs: list[IdleRun] = []
    excluded: list[Span] = []
    for first, last in idle_runs(session):
        run = IdleRun(first, last, first + threshold_minutes)
        runs.append(run)
        if run.excluded_minutes:
            start = span.start + 60 * run.excluded_from
            excluded.append(Span(start, min(span.end, span.start + 60 * (last + 1))))
    return IdleResult(
        session_id=session.session_id,
        span=span,
        runs=tuple(runs),
        excluded=tuple(excluded),
        kept=subtract([span], excluded),
    )


def _exclude_quiet(
    session: SessionFacts, quiet: tuple[tuple[int, int], ...], threshold_minutes: int
) -> IdleResult:
    """Exclude what each quiet stretch lasts beyond the threshold (to the second).
    Runs are reported in seconds from the start, as ``first``/``last`` second and
    ``excluded_from``."""
    span = session.span
    tolerated = threshold_minutes * 60
    runs: list[IdleRun] = []
    excluded: list[Span] = []
    for start, end in quiet:
        start, end = max(0, start), min(span.seconds, end)
        if end <= start:
            continue
        run = IdleRun(start, end - 1, start + tolerated)
        runs.append(run)
        if start + tolerated < end:
            excluded.append(Span(span.start + start + tolerated, span.start + end))
    return IdleResult(
        session_id=session.session_id,
        span=span,
        runs=tuple(runs),
        excluded=tuple(excluded),
        kept=subtract([span], excluded),
        unit="second",
    )
