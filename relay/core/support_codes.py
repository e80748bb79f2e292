"""Support codes: short, single-use, read aloud over the phone.

Eight characters of Crockford base32 (40 bits), shown as two groups of four.
Input is forgiving: case, dashes and spaces are ignored, and the letters people
confuse with digits (O, I, L) are read as digits.
"""

from __future__ import annotations

import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
LENGTH = 8
_CONFUSABLE = str.maketrans({"O": "0", "I": "1", "L": "1"})


def new_code() -> str:
    """A fresh code, grouped for reading: ``K7Q2-M9XD``."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return f"{raw[:4]}-{raw[4:]}"


def normalise_code(text: str) -> str:
    """The canonical form used for hashing and comparison."""
    cleaned = "".join(ch for ch in text.upper() if ch not in "- \t")
    return cleaned.translate(_CONFUSABLE)[:64]
