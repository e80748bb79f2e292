"""Tunnel tokens: one per side per session, single use, short-lived.

Which side may use its token in which state is :func:`shared.protocol.session_state.
tunnel_allowed`; when a token's lifetime starts again is
:data:`~shared.protocol.session_state.TOKEN_RESTARTS`. This module holds the tokens
and applies those rules; times are monotonic seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from relay.core.ids import new_token, same_secret, token_hash
from shared.protocol.session_state import SIDES, TOKEN_RESTARTS, State, tunnel_allowed


@dataclass
class TunnelToken:
    hash: str
    expires: float  # monotonic
    used: bool = False


def mint(now: float, ttl: float) -> tuple[dict[str, TunnelToken], dict[str, str]]:
    """Fresh tokens for both sides: what the relay keeps and what it hands out."""
    plain = {side: new_token("qpx") for side in SIDES}
    kept = {side: TunnelToken(token_hash(tok), now + ttl) for side, tok in plain.items()}
    return kept, plain


def restart(
    tokens: dict[str, TunnelToken], entered: State, now: float, ttl: float, consent: float
) -> None:
    """Start a token's lifetime again where entering ``entered`` says so."""
    rule = TOKEN_RESTARTS.get(entered)
    if rule is not None:
        side, with_consent = rule
        tokens[side].expires = now + ttl + (consent if with_consent else 0)


def claim(
    tokens: dict[str, TunnelToken], state: State, presented: str, joined: set[str], now: float
) -> str | None:
    """Use the token ``presented``: the side it belongs to, or None if it is unknown,
    used, expired, its side is connected already, or the state takes no tunnel from
    that side. A used token stays used even when refused later."""
    digest = token_hash(presented)
    for side, token in tokens.items():
        if not same_secret(token.hash, digest):
            continue
        if not tunnel_allowed(state, side) or token.used or now > token.expires:
            return None
        if side in joined:
            return None
        token.used = True
        return side
    return None
