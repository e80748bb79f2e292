"""Clocks: wall time in UTC for records, monotonic time for durations.

Code that measures or stamps time takes a :class:`Clock`, so tests can use
:class:`FakeClock` and never sleep.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Current wall-clock time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""
        ...


class SystemClock:
    """The real clocks."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class FakeClock:
    """A clock that moves only when told to (``advance``)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        self._mono = 1000.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        self._mono += seconds


def iso(dt: datetime | None) -> str | None:
    """ISO 8601 UTC with a ``Z`` suffix, second precision; ``None`` stays ``None``."""
    if dt is None:
        return None
    return dt.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_iso(text: str | None) -> datetime | None:
    """Inverse of :func:`iso` (also accepts fractional seconds and offsets)."""
    if text is None:
        return None
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


#: How far apart the relay's and an agent's (or console's) clocks may be before the
#: SSH certificates the relay signs are refused: they start this long before "now".
CERT_CLOCK_SKEW = timedelta(minutes=2)


def clock_difference(
    local: datetime, remote: datetime, local_name: str = "this computer", remote_name: str = "relay"
) -> str:
    """``local`` against ``remote``'s clock in words: "this computer's clock is
    3 min 20 s behind the relay's"."""
    seconds = round((local - remote).total_seconds())
    if seconds == 0:
        return f"{local_name}'s clock agrees with the {remote_name}'s"
    amount = abs(seconds)
    parts = [
        f"{amount // 86400} d" if amount >= 86400 else "",
        f"{amount % 86400 // 3600} h" if amount >= 3600 else "",
        f"{amount % 3600 // 60} min" if amount >= 60 else "",
        f"{amount % 60} s",
    ]
    way = "ahead of" if seconds > 0 else "behind"
    return f"{local_name}'s clock is {' '.join(p for p in parts if p)} {way} the {remote_name}'s"


def certificate_clock_problem(
    now: datetime,
    relay_time: datetime,
    valid_after: datetime,
    valid_before: datetime,
    local_name: str = "this computer",
) -> str | None:
    """Why a certificate the relay signed at ``relay_time`` for ``valid_after`` ..
    ``valid_before`` will be refused by a clock that reads ``now``, in words that
    say the clocks differ and by how much; None when it will be accepted."""
    if valid_after <= now < valid_before:
        return None
    return (
        f"the clocks differ: {clock_difference(now, relay_time, local_name)}, more than "
        f"the session certificate allows; set the clock of {local_name}"
    )
