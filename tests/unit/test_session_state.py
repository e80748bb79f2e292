"""The session lifecycle table (sans-I/O)."""

from __future__ import annotations

import pytest

from shared.errors import LocalProtocolError
from shared.protocol.session_state import (
    OPEN_STATES,
    TRANSITIONS,
    EndReason,
    Event,
    State,
    can_apply,
    next_state,
)


def test_happy_path() -> None:
    state = State.REQUESTED
    for event, expected in [
        (Event.OFFER, State.OFFERED),
        (Event.ACCEPT, State.CONNECTING),
        (Event.PAIRED, State.ACTIVE),
    ]:
        state, reason = next_state(state, event)
        assert (state, reason) == (expected, None)
    assert next_state(state, Event.TECHNICIAN_LEFT) == (State.ENDED, EndReason.COMPLETED)


def test_consent_path_and_its_endings() -> None:
    assert next_state(State.OFFERED, Event.ASK_CONSENT) == (State.AWAITING_CONSENT, None)
    assert next_state(State.AWAITING_CONSENT, Event.ACCEPT) == (State.CONNECTING, None)
    assert next_state(State.AWAITING_CONSENT, Event.DECLINE)[1] is EndReason.DECLINED
    assert next_state(State.AWAITING_CONSENT, Event.CONSENT_TIMEOUT)[1] is EndReason.CONSENT_TIMEOUT


@pytest.mark.parametrize("state", sorted(OPEN_STATES))
@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (Event.SHUTDOWN, EndReason.RELAY_SHUTDOWN),
        (Event.RECOVER, EndReason.RECOVERED),
        (Event.AGENT_OFFLINE, EndReason.AGENT_OFFLINE),
        (Event.CLIENT_ENDED, EndReason.CLIENT_ENDED),
        (Event.TECHNICIAN_ENDED, EndReason.TECHNICIAN_ENDED),
    ],
)
def test_any_open_state_can_be_ended(state: State, event: Event, reason: EndReason) -> None:
    assert next_state(state, event) == (State.ENDED, reason)


@pytest.mark.parametrize("event", list(Event))
def test_ended_accepts_nothing(event: Event) -> None:
    assert not can_apply(State.ENDED, event)
    with pytest.raises(LocalProtocolError, match="not allowed in state 'ended'"):
        next_state(State.ENDED, event)


def test_cannot_skip_pairing() -> None:
    with pytest.raises(LocalProtocolError):
        next_state(State.OFFERED, Event.PAIRED)
    with pytest.raises(LocalProtocolError):
        next_state(State.CONNECTING, Event.TECHNICIAN_LEFT)


def test_every_ending_transition_names_a_reason() -> None:
    for (_, _), (target, reason) in TRANSITIONS.items():
        assert (target is State.ENDED) == (reason is not None)


def test_the_technician_may_dial_only_once_the_agent_accepted() -> None:
    from shared.protocol.session_state import AGENT, TECHNICIAN, tunnel_allowed

    assert [s for s in State if tunnel_allowed(s, AGENT)] == [
        State.OFFERED,
        State.AWAITING_CONSENT,
        State.CONNECTING,
    ]
    assert [s for s in State if tunnel_allowed(s, TECHNICIAN)] == [State.CONNECTING]


def test_a_login_is_taken_only_while_active() -> None:
    assert [s for s in State if can_apply(s, Event.LOGIN_OK)] == [State.ACTIVE]
    assert next_state(State.ACTIVE, Event.LOGIN_OK) == (State.ACTIVE, None)


def test_only_states_people_wait_in_are_written_on_entry() -> None:
    from shared.protocol.session_state import ANSWERABLE, PERSISTED

    assert PERSISTED == {State.AWAITING_CONSENT}
    assert ANSWERABLE == {State.OFFERED, State.AWAITING_CONSENT}
