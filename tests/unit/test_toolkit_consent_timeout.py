"""Consent without waiting for real time.

The agent's :class:`ConsentBroker` gets an injected sleep the test ends by hand
(its 60 s timeout is not configurable from the command line), and the relay's
:class:`SessionManager` runs on a :class:`FakeClock` with a real SQLite store, fed
the messages an agent sends (``consent_pending``, then ``resolve_offer``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from agent.consent import APPROVED, DENIED, TIMEOUT, ConsentBroker, ConsentRequest
from relay.services.live_session import LiveSession
from relay.services.sessions import SessionManager
from relay.settings import Limits, Settings
from relay.store.interface import Store
from shared.clock import FakeClock
from shared.errors import UnavailableError
from shared.protocol.session_state import Event, State

# -- the agent's broker, with a sleep the test controls ---------------------------------------


class ManualSleep:
    """Stands in for ``asyncio.sleep``: returns only when the test calls :meth:`elapse`."""

    def __init__(self) -> None:
        self.requested: list[float] = []
        self.waiters: list[asyncio.Future[None]] = []

    async def __call__(self, seconds: float) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.requested.append(seconds)
        self.waiters.append(waiter)
        await waiter

    def elapse(self) -> None:
        """The timeout passes for every timer started so far."""
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(None)


async def until(condition: Callable[[], object]) -> None:
    """Let the loop run (no time passes) until ``condition`` holds; bounded."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


def request(session_id: str) -> ConsentRequest:
    return ConsentRequest(session_id, "alice", "exec", "ticket 42")


async def asking(broker: ConsentBroker, sleep: ManualSleep, sid: str) -> asyncio.Task[str]:
    count = len(sleep.requested)
    task = asyncio.create_task(broker.ask(request(sid)))
    await until(lambda: len(sleep.requested) > count)  # the question and its timer exist
    return task


async def test_no_answer_before_the_timeout_means_timeout() -> None:
    sleep = ManualSleep()
    broker = ConsentBroker(timeout=60, sleep=sleep)
    task = await asking(broker, sleep, "ses-a")
    assert sleep.requested == [60]
    assert [r.session_id for r in broker.pending()] == ["ses-a"]
    assert not task.done()  # nothing decides but the clock
    sleep.elapse()
    assert await task == TIMEOUT
    assert broker.pending() == []
    assert broker.answer("ses-a", True) is False  # too late: opens nothing


async def test_an_answer_before_the_timeout_wins_and_stops_the_timer() -> None:
    sleep = ManualSleep()
    broker = ConsentBroker(timeout=60, sleep=sleep)
    task = await asking(broker, sleep, "ses-a")
    assert broker.answer("ses-a", True) is True
    assert await task == APPROVED
    await until(lambda: sleep.waiters[0].cancelled())
    assert broker.answer("ses-a", False) is False  # answered once only


async def test_deny_and_cancel_mean_no() -> None:
    sleep = ManualSleep()
    broker = ConsentBroker(timeout=60, sleep=sleep)
    denied = await asking(broker, sleep, "ses-a")
    cancelled = await asking(broker, sleep, "ses-b")
    assert broker.answer("ses-a", False) is True
    broker.cancel("ses-b")  # the session ended before anyone answered
    assert (await denied, await cancelled) == (DENIED, DENIED)


async def test_an_answer_for_another_session_opens_nothing() -> None:
    sleep = ManualSleep()
    broker = ConsentBroker(timeout=60, sleep=sleep)
    first = await asking(broker, sleep, "ses-a")
    second = await asking(broker, sleep, "ses-b")
    assert broker.answer("ses-unknown", True) is False
    assert broker.answer("ses-a-stale", True) is False
    await until(lambda: True)
    assert not first.done() and not second.done()
    # Approving A does not approve B.
    assert broker.answer("ses-a", True) is True
    assert await first == APPROVED
    assert [r.session_id for r in broker.pending()] == ["ses-b"]
    assert not second.done()
    sleep.elapse()
    assert await second == TIMEOUT
    assert broker.answer("ses-a", True) is False  # a stale id, once answered


# -- the relay's side: consent_pending, then the agent's consent_timeout ------------------------


def manager(store: Store, clock: FakeClock, settings: Settings | None = None) -> SessionManager:
    m = SessionManager(store, clock, settings or Settings(), "rly-1")
    m.ready_grace = 0
    return m


async def offered(m: SessionManager) -> tuple[LiveSession, dict[str, str], list[str]]:
    """A session offered to agt-1 whose agent then asked its user."""
    live, tokens = await m.create("agt-1", "tec-1", "cus-1", "exec")
    states: list[str] = []

    async def on_state(session_id: str, state: str) -> None:
        states.append(state)

    live.on_state = on_state
    await m.advance(live, Event.OFFER)
    await m.consent_pending("agt-1", live.row.id)
    return live, tokens, states


async def test_the_agents_consent_timeout_is_recorded_as_consent_timeout(store: Store) -> None:
    m = manager(store, FakeClock())
    live, _, states = await offered(m)
    sid = live.row.id
    assert live.state is State.AWAITING_CONSENT
    assert states == ["awaiting_consent"]  # the technician was told it waits
    row = await store.get_session(sid)
    assert row is not None and row.state == "awaiting_consent"

    waiting = asyncio.create_task(m.wait_accept(live))
    await until(lambda: True)
    assert not waiting.done()
    m.resolve_offer("agt-intruder", sid, None)  # not this agent's to answer
    await until(lambda: True)
    assert not waiting.done()
    m.resolve_offer("agt-1", sid, "consent_timeout")
    with pytest.raises(UnavailableError, match="did not answer the consent request in time"):
        await waiting

    row = await store.get_session(sid)
    assert row is not None
    assert (row.state, row.end_reason, row.started_at) == ("ended", "consent_timeout", None)
    assert await store.list_time_entries() == []
    assert sid not in m.live
    events = [a.event for a in await store.list_audit()]
    assert "consent_asked" in events and "session_end" in events


async def test_a_consent_timeout_that_was_never_asked_is_a_decline(store: Store) -> None:
    m = manager(store, FakeClock())
    live, _ = await m.create("agt-1", "tec-1", "cus-1", "exec")
    await m.advance(live, Event.OFFER)
    waiting = asyncio.create_task(m.wait_accept(live))
    m.resolve_offer("agt-1", live.row.id, "consent_timeout")
    with pytest.raises(UnavailableError, match="declined"):
        await waiting
    row = await store.get_session(live.row.id)
    assert row is not None and row.end_reason == "declined"


def instant_limits() -> Settings:
    """The relay's own windows set to zero: its consent timeout is already over."""
    return Settings(limits=Limits(offer_timeout=0, consent_timeout=0))


async def test_the_relays_own_consent_limit_records_consent_timeout(store: Store) -> None:
    m = manager(store, FakeClock(), instant_limits())
    live, _, _ = await offered(m)
    with pytest.raises(UnavailableError):
        await m.wait_accept(live)
    row = await store.get_session(live.row.id)
    assert row is not None and (row.end_reason, row.started_at) == ("consent_timeout", None)
    assert await store.list_time_entries() == []


async def test_the_relays_consent_limit_tells_the_technician_why(store: Store) -> None:
    m = manager(store, FakeClock(), instant_limits())
    live, _, _ = await offered(m)
    with pytest.raises(UnavailableError, match="consent"):
        await m.wait_accept(live)


# -- after consent the agent must be able to dial its tunnel -----------------------------------


async def test_the_agent_can_claim_its_tunnel_once_its_user_consented(store: Store) -> None:
    m = manager(store, FakeClock())
    live, tokens, _ = await offered(m)
    try:
        assert m.claim_token(live.row.id, tokens["technician"]) is None  # not before accept
        assert m.claim_token(live.row.id, tokens["agent"]) == "agent"
    finally:
        await m.end(live, Event.SHUTDOWN)


async def test_tunnel_tokens_outlive_a_slow_but_timely_consent(store: Store) -> None:
    clock = FakeClock()
    m = manager(store, clock)
    live, tokens, _ = await offered(m)
    sid = live.row.id
    try:
        clock.advance(90)  # the user answers after 90 s: within the 120 s consent limit
        assert m.claim_token(sid, tokens["agent"]) == "agent"
        waiting = asyncio.create_task(m.wait_accept(live))
        m.resolve_offer("agt-1", sid, None)
        await waiting
        assert m.claim_token(sid, tokens["technician"]) == "technician"
    finally:
        await m.end(live, Event.SHUTDOWN)
