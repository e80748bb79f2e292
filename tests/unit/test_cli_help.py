"""The help test: every subcommand of qp, qp-agent and qp-relay has a description
(and, where it runs something, an example), and every option a help text."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import pytest

from agent.cli import _parser as agent_parser
from console.cli import _parser as console_parser
from relay.cli import _parser as relay_parser
from shared.cli_shape import children, summaries, walk

PARSERS: dict[str, Callable[[], argparse.ArgumentParser]] = {
    "qp": console_parser,
    "qp-agent": agent_parser,
    "qp-relay": relay_parser,
}


def _commands() -> list[tuple[str, argparse.ArgumentParser]]:
    return [node for make in PARSERS.values() for node in walk(make())]


@pytest.mark.parametrize("prog", PARSERS)
def test_every_subcommand_has_a_summary(prog: str) -> None:
    for path, node in walk(PARSERS[prog]()):
        for name, text in summaries(node).items():
            assert text.strip(), f"{path} {name} has no one-line help"


def test_every_subcommand_has_a_description_and_leaves_have_an_example() -> None:
    missing = []
    for path, node in _commands():
        if " " not in path:
            continue
        if not (node.description or "").strip():
            missing.append(f"{path}: no description")
        if not children(node) and path.split()[-1] != "completion":
            epilog = node.epilog or ""
            if "examples:" not in epilog or path not in epilog:
                missing.append(f"{path}: no example")
    assert not missing, "\n".join(missing)


def test_every_option_has_a_help_text() -> None:
    missing = [
        f"{path} {(action.option_strings or [action.dest])[0]}"
        for path, node in _commands()
        for action in node._actions
        if not isinstance(action, argparse._SubParsersAction) and not (action.help or "").strip()
    ]
    assert not missing, "\n".join(missing)


def test_every_help_page_renders() -> None:
    for path, node in _commands():
        text = node.format_help()
        assert text.startswith("usage: "), path
