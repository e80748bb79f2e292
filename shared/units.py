"""Human-readable quantities for people-facing text (findings, tables)."""

from __future__ import annotations

_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def human_bytes(value: int | None) -> str:
    """``1536`` -> ``"1.5 KiB"``; ``None`` -> ``"-"``. Negative values keep their sign."""
    if value is None:
        return "-"
    sign = "-" if value < 0 else ""
    amount = float(abs(value))
    for unit in _BYTE_UNITS:
        if amount < 1024 or unit == _BYTE_UNITS[-1]:
            return f"{sign}{amount:.0f} {unit}" if unit == "B" else f"{sign}{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")
