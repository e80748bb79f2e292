"""Reconnect merge: same customer, technician, agent and request within the window."""

from __future__ import annotations

from datetime import timedelta

from relay.billing.facts import SessionFacts
from relay.billing.merge import gaps, merge_for_card, merge_sessions
from tests.unit.billing_helpers import card, local, session

T0 = local("2026-01-05 10:00")


def at(minutes: float, length: float, sid: str, **kwargs: str | None) -> SessionFacts:
    return session(T0 + timedelta(minutes=minutes), length, sid=sid, **kwargs)  # type: ignore[arg-type]


def ids(groups: list[tuple[SessionFacts, ...]]) -> list[list[str]]:
    return [[s.session_id for s in g] for g in groups]


def test_reconnects_within_the_window_merge_in_a_chain() -> None:
    sessions = [at(0, 10, "a"), at(19, 5, "b"), at(33, 5, "c"), at(48, 5, "d")]
    # b starts 9 min after a ends; c 9 min after b; d exactly 10 min after c: new entry.
    assert ids(merge_sessions(sessions, 10)) == [["a", "b", "c"], ["d"]]


def test_input_order_does_not_matter() -> None:
    sessions = [at(33, 5, "c"), at(0, 10, "a"), at(19, 5, "b")]
    assert ids(merge_sessions(sessions, 10)) == [["a", "b", "c"]]


def test_different_request_technician_or_agent_never_merge() -> None:
    sessions = [
        at(0, 10, "a"),
        at(11, 5, "b", request="T-2"),
        at(12, 5, "c", technician="tec-2"),
        at(13, 5, "d", agent="agt-2"),
        at(14, 5, "e", request=None),
    ]
    assert ids(merge_sessions(sessions, 10)) == [["a"], ["b"], ["c"], ["d"], ["e"]]


def test_overlapping_sessions_merge_even_with_merging_off() -> None:
    sessions = [at(0, 30, "a"), at(10, 5, "b"), at(30, 5, "c")]
    assert ids(merge_sessions(sessions, 0)) == [["a", "b"], ["c"]]
    assert gaps(merge_sessions(sessions, 10)[0]) == [-20 * 60, 0]


def test_customer_specific_window_from_the_card() -> None:
    big = [at(0, 10, "a", customer="cus-big"), at(30, 5, "b", customer="cus-big")]
    other = [at(0, 10, "c"), at(30, 5, "d")]
    assert ids(merge_for_card(big + other, card())) == [["c"], ["a", "b"], ["d"]]
