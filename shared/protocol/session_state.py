"""The relay's session lifecycle as data.

``requested → offered → (awaiting_consent) → connecting → active → ended``.
Every legal move is one row of :data:`TRANSITIONS`; anything else raises
:class:`LocalProtocolError`. Every other rule that depends on the state lives here
too, as data: which side may dial its tunnel in which state, whose tunnel token's
lifetime starts again on entering a state, which states are written to the session
row, which agent answers are taken when, and which state is billed. I/O code feeds
events in and acts on the result (h11's ``_state.py`` is the model).
"""

from __future__ import annotations

from enum import StrEnum

from shared.errors import LocalProtocolError


class State(StrEnum):
    REQUESTED = "requested"
    OFFERED = "offered"
    AWAITING_CONSENT = "awaiting_consent"
    CONNECTING = "connecting"
    ACTIVE = "active"
    ENDED = "ended"


class Event(StrEnum):
    OFFER = "offer"
    ASK_CONSENT = "ask_consent"
    ACCEPT = "accept"
    PAIRED = "paired"
    TECHNICIAN_LEFT = "technician_left"
    CLIENT_LEFT = "client_left"
    TECHNICIAN_ENDED = "technician_ended"
    CLIENT_ENDED = "client_ended"
    DECLINE = "decline"
    CONSENT_TIMEOUT = "consent_timeout"
    AGENT_OFFLINE = "agent_offline"
    TUNNEL_TIMEOUT = "tunnel_timeout"
    SHUTDOWN = "shutdown"
    RECOVER = "recover"
    #: The agent reports that the technician's SSH login succeeded.
    LOGIN_OK = "login_ok"
    # Session limits (relay.settings.Limits), enforced by the relay's sweeper.
    IDLE_TIMEOUT = "idle_timeout"
    MAX_DURATION = "max_duration"
    LOGIN_TIMEOUT = "login_timeout"
    #: An admin disabled the session's technician.
    TECHNICIAN_DISABLED = "technician_disabled"


class EndReason(StrEnum):
    COMPLETED = "completed"
    CLIENT_ENDED = "client_ended"
    TECHNICIAN_ENDED = "technician_ended"
    DECLINED = "declined"
    CONSENT_TIMEOUT = "consent_timeout"
    AGENT_OFFLINE = "agent_offline"
    TUNNEL_TIMEOUT = "tunnel_timeout"
    RELAY_SHUTDOWN = "relay_shutdown"
    RECOVERED = "recovered"
    # Session limits: no payload for limits.idle_timeout, limits.max_duration
    # reached, no SSH login within limits.login_timeout of pairing (never billed).
    IDLE_TIMEOUT = "idle_timeout"
    MAX_DURATION = "max_duration"
    LOGIN_TIMEOUT = "login_timeout"
    TECHNICIAN_DISABLED = "technician_disabled"


OPEN_STATES = frozenset(State) - {State.ENDED}

# Events that end a session from any open state, with the reason they record.
_ENDING: dict[Event, EndReason] = {
    Event.TECHNICIAN_ENDED: EndReason.TECHNICIAN_ENDED,
    Event.CLIENT_ENDED: EndReason.CLIENT_ENDED,
    Event.AGENT_OFFLINE: EndReason.AGENT_OFFLINE,
    Event.SHUTDOWN: EndReason.RELAY_SHUTDOWN,
    Event.RECOVER: EndReason.RECOVERED,
    Event.TECHNICIAN_DISABLED: EndReason.TECHNICIAN_DISABLED,
}

#: (state, event) -> (next state, end reason or None)
TRANSITIONS: dict[tuple[State, Event], tuple[State, EndReason | None]] = {
    (State.REQUESTED, Event.OFFER): (State.OFFERED, None),
    (State.OFFERED, Event.ASK_CONSENT): (State.AWAITING_CONSENT, None),
    (State.OFFERED, Event.ACCEPT): (State.CONNECTING, None),
    (State.AWAITING_CONSENT, Event.ACCEPT): (State.CONNECTING, None),
    (State.OFFERED, Event.DECLINE): (State.ENDED, EndReason.DECLINED),
    (State.AWAITING_CONSENT, Event.DECLINE): (State.ENDED, EndReason.DECLINED),
    (State.AWAITING_CONSENT, Event.CONSENT_TIMEOUT): (State.ENDED, EndReason.CONSENT_TIMEOUT),
    (State.OFFERED, Event.TUNNEL_TIMEOUT): (State.ENDED, EndReason.TUNNEL_TIMEOUT),
    (State.CONNECTING, Event.TUNNEL_TIMEOUT): (State.ENDED, EndReason.TUNNEL_TIMEOUT),
    (State.CONNECTING, Event.PAIRED): (State.ACTIVE, None),
    (State.ACTIVE, Event.LOGIN_OK): (State.ACTIVE, None),
    (State.ACTIVE, Event.TECHNICIAN_LEFT): (State.ENDED, EndReason.COMPLETED),
    (State.ACTIVE, Event.CLIENT_LEFT): (State.ENDED, EndReason.COMPLETED),
    # The limits apply once the tunnel is paired; the states before it have their
    # own, shorter timeouts (offer, consent, pairing).
    (State.ACTIVE, Event.IDLE_TIMEOUT): (State.ENDED, EndReason.IDLE_TIMEOUT),
    (State.ACTIVE, Event.MAX_DURATION): (State.ENDED, EndReason.MAX_DURATION),
    (State.ACTIVE, Event.LOGIN_TIMEOUT): (State.ENDED, EndReason.LOGIN_TIMEOUT),
    **{
        (state, event): (State.ENDED, reason)
        for state in OPEN_STATES
        for event, reason in _ENDING.items()
    },
}


AGENT, TECHNICIAN = "agent", "technician"
SIDES = (AGENT, TECHNICIAN)

#: Which tunnel ends may connect in which state. The agent dials once it has the
#: offer (and, when asked, the client's consent), before it reports "accept"; the
#: technician learns its token only with the answer, in ``connecting``.
TUNNEL_SIDES: dict[State, frozenset[str]] = {
    State.OFFERED: frozenset({AGENT}),
    State.AWAITING_CONSENT: frozenset({AGENT}),
    State.CONNECTING: frozenset(SIDES),
}

#: On entering a state, whose tunnel token's lifetime starts again, and whether it
#: also gets the consent timeout (a person may take all of it before the agent dials).
TOKEN_RESTARTS: dict[State, tuple[str, bool]] = {
    State.AWAITING_CONSENT: (AGENT, True),
    State.CONNECTING: (TECHNICIAN, False),
}

#: States written to the session row on entry. The row is inserted as ``requested``
#: before the offer is sent; ``active`` is written only when the technician's SSH
#: login succeeds (:data:`Event.LOGIN_OK`), so a refused login bills nothing;
#: ``awaiting_consent`` may last minutes, so people see it. ``offered`` and
#: ``connecting`` last a round trip and live only in memory: every write is an
#: fsync on the relay's disk, and a ``qp exec`` loop pays for each.
PERSISTED: frozenset[State] = frozenset({State.AWAITING_CONSENT})

#: States in which the agent's answer to an offer (accept or decline) is taken.
ANSWERABLE: frozenset[State] = frozenset({State.OFFERED, State.AWAITING_CONSENT})

#: States in which losing the agent's control link ends the session: the agent has
#: not yet said it takes it. (While the client is asked, and once the tunnel is up,
#: the session lives on its own timers and its tunnel instead.)
ENDED_BY_LINK_LOSS: frozenset[State] = frozenset({State.REQUESTED, State.OFFERED})

#: The state whose time becomes a time entry, once its login succeeded.
BILLED = State.ACTIVE


def tunnel_allowed(state: State, side: str) -> bool:
    """Whether ``side`` may connect its tunnel end in ``state``."""
    return side in TUNNEL_SIDES.get(state, frozenset())


def next_state(state: State, event: Event) -> tuple[State, EndReason | None]:
    """The state after ``event`` and, when it ends the session, the end reason."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise LocalProtocolError(
            f"event {event.value!r} is not allowed in state {state.value!r}"
        ) from None


def can_apply(state: State, event: Event) -> bool:
    """Whether ``event`` is legal in ``state`` (ended sessions accept nothing)."""
    return (state, event) in TRANSITIONS
