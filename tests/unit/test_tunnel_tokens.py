"""Tunnel-token rules (pure): single use, lifetimes restarted by the state table."""

from __future__ import annotations

from relay.core import tunnel_tokens
from shared.protocol.session_state import AGENT, TECHNICIAN, State


def test_a_token_is_used_once_and_only_by_its_side_in_its_states() -> None:
    kept, plain = tunnel_tokens.mint(now=0, ttl=60)
    assert tunnel_tokens.claim(kept, State.OFFERED, plain[TECHNICIAN], set(), 1) is None
    assert kept[TECHNICIAN].used is False  # refused by state: still usable later
    assert tunnel_tokens.claim(kept, State.OFFERED, plain[AGENT], set(), 1) == AGENT
    assert tunnel_tokens.claim(kept, State.CONNECTING, plain[AGENT], set(), 2) is None
    assert tunnel_tokens.claim(kept, State.CONNECTING, "qpx_forged", set(), 2) is None
    assert tunnel_tokens.claim(kept, State.CONNECTING, plain[TECHNICIAN], set(), 2) == TECHNICIAN


def test_entering_a_state_restarts_the_lifetime_the_table_names() -> None:
    kept, plain = tunnel_tokens.mint(now=0, ttl=60)
    tunnel_tokens.restart(kept, State.AWAITING_CONSENT, now=50, ttl=60, consent=120)
    assert kept[AGENT].expires == 230 and kept[TECHNICIAN].expires == 60
    tunnel_tokens.restart(kept, State.CONNECTING, now=200, ttl=60, consent=120)
    assert kept[TECHNICIAN].expires == 260
    assert tunnel_tokens.claim(kept, State.CONNECTING, plain[TECHNICIAN], set(), 261) is None
    assert tunnel_tokens.claim(kept, State.CONNECTING, plain[AGENT], {AGENT}, 10) is None
