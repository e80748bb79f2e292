"""Human durations such as ``90s``, ``15m``, ``24h``, ``7d``."""

from __future__ import annotations

import re

from shared.errors import UsageError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PATTERN = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")


def parse_duration(text: str) -> int:
    """Seconds in ``text``; a bare number means seconds."""
    match = _PATTERN.match(text)
    if not match or int(match.group(1)) <= 0:
        raise UsageError(f"invalid duration {text!r}: use a number with s, m, h or d (e.g. 24h)")
    return int(match.group(1)) * _UNITS[match.group(2) or "s"]
