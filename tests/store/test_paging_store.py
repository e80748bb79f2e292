"""Compliance tests for keyset paging (every Store backend): a list read page by
page, each page starting after the sort key of the last row of the one before,
gives every row once in the list's order; a scope keeps other customers' rows out
of the page itself; the per-agent count of help requests.

Backend-agnostic: only the ``store`` fixture and the interface. Fixed datetimes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from relay.model import HelpRequest, Keyset, SnapshotRecord
from relay.store.interface import Store
from tests.store.records import agent, at, customer, enroll_token, seed, session, technician

R = TypeVar("R")


async def _pages(
    read: Callable[[Keyset], Awaitable[list[R]]],
    key: Callable[[R], tuple[Any, ...]],
    size: int,
    scope: tuple[str, ...] | None = None,
) -> list[list[R]]:
    """Every page of ``size`` rows, each asked after the last key of the page before."""
    pages: list[list[R]] = []
    after: tuple[Any, ...] | None = None
    while True:
        found = await read(Keyset(size, after, scope))
        assert len(found) <= size
        if not found:
            return pages
        pages.append(found)
        after = key(found[-1])


def _flat(pages: list[list[R]]) -> list[R]:
    return [row for page in pages for row in page]


async def test_agents_page_by_name_then_id_and_keep_to_the_scope(store: Store) -> None:
    await seed(store)
    await store.add_customer(customer("cus-2", "Globex"))
    # Two agents share a name: the id decides, and no page boundary loses one.
    names = ["kassa", "atelier", "kassa", "balie", "zolder", "kassa", "magazijn"]
    for i, name in enumerate(names):
        await store.add_agent(agent(f"agt-{i + 2:02d}", name, "cus-2" if i % 2 else "cus-1"))
    everything = await store.list_agents()
    for size in (1, 2, 3, 100):
        pages = await _pages(store.list_agents, lambda a: (a.name, a.id), size)
        assert _flat(pages) == everything
    acme = _flat(await _pages(store.list_agents, lambda a: (a.name, a.id), 2, ("cus-1",)))
    assert acme == [a for a in everything if a.customer_id == "cus-1"]
    assert await store.list_agents(Keyset(10, None, ())) == []  # no customers: nothing


async def test_sessions_page_newest_first(store: Store) -> None:
    await seed(store)
    for i in range(7):
        # Pairs share a creation time: the id orders them.
        await store.add_session(session(f"ses-{i}", created_at=at(i // 2)))
    everything = await store.list_sessions(100)
    assert [s.id for s in everything] == [f"ses-{i}" for i in reversed(range(7))]
    pages = await _pages(
        lambda page: store.list_sessions(page=page), lambda s: (s.created_at, s.id), 3
    )
    assert [len(p) for p in pages] == [3, 3, 1]
    assert _flat(pages) == everything
    none = await _pages(
        lambda page: store.list_sessions(page=page), lambda s: (s.created_at, s.id), 3, ("cus-9",)
    )
    assert none == []


async def test_customers_technicians_and_tokens_page(store: Store) -> None:
    await seed(store)
    for i, name in enumerate(["zeta", "Beta", "alpha", "Delta"]):
        await store.add_customer(customer(f"cus-{i + 2}", name))
        await store.add_technician(technician(f"tec-{i + 2}", f"tech-{name}"), f"hash-{i}")
        await store.add_enroll_token(enroll_token(f"enr-{i + 2}", created_at=at(i % 2)), f"t{i}")
    customers = _flat(await _pages(store.list_customers, lambda c: (c.name, c.id), 2))
    assert customers == await store.list_customers()
    assert [c.name for c in customers] == ["Acme GmbH", "alpha", "Beta", "Delta", "zeta"]
    only = _flat(await _pages(store.list_customers, lambda c: (c.name, c.id), 2, ("cus-3",)))
    assert [c.name for c in only] == ["Beta"]
    techs = _flat(await _pages(store.list_technicians, lambda t: (t.name, t.id), 2))
    assert techs == await store.list_technicians()
    assert all(t.customer_ids == ("cus-1",) for t in techs)  # scopes come with each page
    tokens = _flat(await _pages(store.list_enroll_tokens, lambda t: (t.created_at, t.id), 2))
    assert tokens == await store.list_enroll_tokens()


async def test_the_help_queue_pages_urgent_first_then_oldest(store: Store) -> None:
    await seed(store)
    await store.add_customer(customer("cus-2", "Globex"))
    await store.add_agent(agent("agt-2", "globex-pc", "cus-2"))
    numbers = {}
    for i in range(9):
        urgent, when = i % 3 == 0, at(10 - i)
        which = "agt-2" if i == 4 else "agt-1"
        owner = "cus-2" if i == 4 else "cus-1"
        request = HelpRequest(0, which, owner, f"r{i}", urgent, "open", when, when)
        numbers[i] = await store.add_help_request(request)
    await store.update_help_request(numbers[8], "open", state="resolved", updated_at=at(20))

    def key(r: HelpRequest) -> tuple[Any, ...]:
        return (0 if r.urgent else 1, r.created_at, r.id)

    states = ("open", "assigned", "in_progress")
    pages = await _pages(lambda page: store.help_request_queue(states, page), key, 2)
    queue = _flat(pages)
    assert [r.text for r in queue] == ["r6", "r3", "r0", "r7", "r5", "r4", "r2", "r1"]
    acme = _flat(await _pages(lambda p: store.help_request_queue(states, p), key, 2, ("cus-1",)))
    assert [r.text for r in acme] == ["r6", "r3", "r0", "r7", "r5", "r2", "r1"]

    assert await store.count_help_requests("agt-1", states) == 7
    assert await store.count_help_requests("agt-1", ("resolved",)) == 1
    assert await store.count_help_requests("agt-9", states) == 0


async def test_snapshots_page_newest_first(store: Store) -> None:
    await seed(store)
    ids = [
        await store.add_snapshot(
            SnapshotRecord(0, "agt-1", at(i), at(i), "refresh", data={"n": i}), keep=50
        )
        for i in range(5)
    ]
    pages = await _pages(
        lambda page: store.list_snapshots("agt-1", page=page), lambda s: (s.id,), 2
    )
    assert [s.id for s in _flat(pages)] == ids[::-1]


async def test_a_page_after_a_removed_row_goes_on_from_where_it_was(store: Store) -> None:
    """The cursor is a sort key, not a position: a row revoked or added before the
    cursor neither repeats nor skips a row after it."""
    await seed(store)
    for i in range(6):
        await store.add_agent(agent(f"agt-{i + 2}", f"pc-{i}"))
    first = await store.list_agents(Keyset(3))
    await store.add_agent(agent("agt-9", "aaa-first"))  # sorts before the cursor
    rest = await store.list_agents(Keyset(10, (first[-1].name, first[-1].id)))
    assert [a.name for a in first + rest] == ["frontdesk-pc"] + [f"pc-{i}" for i in range(6)]
