"""Half-open time spans in whole UTC epoch seconds, and the set algebra billing needs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True, order=True)
class Span:
    """``[start, end)`` in UTC epoch seconds."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"span ends before it starts: {self.start} > {self.end}")

    @property
    def seconds(self) -> int:
        return self.end - self.start


def epoch(dt: datetime) -> int:
    """Whole UTC epoch seconds of an aware datetime (sub-second parts dropped)."""
    if dt.tzinfo is None:
        raise ValueError("billing times must be timezone-aware")
    return int(dt.astimezone(UTC).replace(microsecond=0).timestamp())


def utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def union(spans: Iterable[Span]) -> tuple[Span, ...]:
    """The disjoint, sorted spans covering exactly what ``spans`` cover."""
    out: list[Span] = []
    for span in sorted(s for s in spans if s.seconds > 0):
        if out and span.start <= out[-1].end:
            last = out[-1]
            out[-1] = Span(last.start, max(last.end, span.end))
        else:
            out.append(span)
    return tuple(out)


def subtract(spans: Iterable[Span], holes: Iterable[Span]) -> tuple[Span, ...]:
    """What ``spans`` cover and ``holes`` do not."""
    result = list(union(spans))
    for hole in union(holes):
        nxt: list[Span] = []
        for span in result:
            if hole.end <= span.start or span.end <= hole.start:
                nxt.append(span)
                continue
            if span.start < hole.start:
                nxt.append(Span(span.start, hole.start))
            if hole.end < span.end:
                nxt.append(Span(hole.end, span.end))
        result = nxt
    return tuple(result)


def total(spans: Iterable[Span]) -> int:
    """Seconds covered, counting overlaps once."""
    return sum(s.seconds for s in union(spans))
