"""Identifiers and bearer tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_id(prefix: str) -> str:
    """A short random id such as ``agt-5f3a9c0b1d2e``."""
    return f"{prefix}-{secrets.token_hex(6)}"


def new_token(prefix: str) -> str:
    """A bearer secret with 256 bits of entropy, prefixed by its kind (``qpt_…``)."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def token_hash(token: str) -> str:
    """What the store keeps instead of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def same_secret(a: str, b: str) -> bool:
    """Constant-time comparison."""
    return hmac.compare_digest(a.encode(), b.encode())
