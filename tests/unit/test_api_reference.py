"""The console API's reference page stays in step with the method tables."""

from __future__ import annotations

from relay.api import METHODS
from relay.api.reference import REFERENCE


def test_every_method_is_documented_and_nothing_else() -> None:
    assert sorted(METHODS) == sorted(REFERENCE)


def test_the_documented_roles_are_the_enforced_roles() -> None:
    differ = {
        name: (METHODS[name].roles, entry.roles)
        for name, entry in REFERENCE.items()
        if name in METHODS and set(METHODS[name].roles) != set(entry.roles)
    }
    assert differ == {}


def test_every_entry_says_what_it_returns() -> None:
    assert [name for name, entry in REFERENCE.items() if not entry.result.strip()] == []
