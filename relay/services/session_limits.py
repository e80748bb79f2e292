"""When a running session has reached one of its limits (``relay.settings.Limits``).

Pure decisions over a :class:`LiveSession` and a monotonic instant; the session
manager's sweeper (:meth:`SessionManager.sweep_once`) asks for every open session
and ends the ones this names. The policy:

* ``login_timeout``: seconds from pairing until the agent reports the technician's
  SSH login. The relay sees only ciphertext, so the login it trusts is the agent's
  ``session_ready`` on its control link. A tunnel without one is closed and, as
  every session without a login, billed nothing.
* ``idle_timeout``: minutes since the last payload in a minute above the billing
  noise threshold (or since the login, if none yet): idle as billing sees it.
* ``max_duration``: minutes from the session's creation, which is when its
  certificate was issued. The certificate is valid ``cert_minutes`` longer, so the
  relay ends the session before the certificate could expire under it.
"""

from __future__ import annotations

from relay.services.live_session import LiveSession
from relay.settings import Limits
from shared.protocol.session_state import BILLED, Event


def _span(minutes: int) -> str:
    hours, rest = divmod(minutes, 60)
    if hours and not rest:
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def overdue(live: LiveSession, limits: Limits, noise: int, now: float) -> tuple[Event, str] | None:
    """The limit ``live`` has reached at monotonic ``now`` with a short reason for
    the technician, or None. Only paired sessions: earlier states have their own,
    shorter timeouts (offer, consent, pairing)."""
    if live.state is not BILLED or live.started_mono is None:
        return None
    if now - live.created_mono >= limits.max_duration * 60:
        return Event.MAX_DURATION, f"reached the maximum length of {_span(limits.max_duration)}"
    if live.login_mono is None:
        if now - live.started_mono >= limits.login_timeout:
            return Event.LOGIN_TIMEOUT, f"no SSH login within {limits.login_timeout} seconds"
        return None
    since = max(live.login_mono, live.last_work(noise) or live.login_mono)
    if now - since >= limits.idle_timeout * 60:
        return Event.IDLE_TIMEOUT, f"idle for {_span(limits.idle_timeout)}"
    return None


def certificate_minutes(limits: Limits) -> int:
    """Validity of a session certificate: the maximum length plus the margin."""
    return limits.max_duration + limits.cert_minutes
