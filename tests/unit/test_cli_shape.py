"""The three command lines behave alike: --version, global flags on either side of
the subcommand, completion scripts that bash accepts and that complete, exit codes."""

from __future__ import annotations

import argparse
import os
import subprocess
from pathlib import Path

import pytest

from agent.cli import _parser as agent_parser
from console.cli import _parser as console_parser
from harness.processes import BIN
from relay.cli import _parser as relay_parser
from shared.cli_shape import completion, version, walk

PARSERS = {"qp": console_parser, "qp-agent": agent_parser, "qp-relay": relay_parser}


@pytest.mark.parametrize("prog", PARSERS)
def test_version(prog: str) -> None:
    done = subprocess.run([str(BIN / prog), "--version"], capture_output=True, text=True)
    assert done.returncode == 0
    assert done.stdout.strip() == f"{prog} {version()}"
    assert version()[0].isdigit()


def test_debug_is_accepted_before_and_after_the_subcommand() -> None:
    parser = console_parser()
    assert parser.parse_args(["--debug", "time", "approve", "t-1"]).debug is True
    assert parser.parse_args(["time", "approve", "t-1", "--debug"]).debug is True
    assert parser.parse_args(["time", "approve", "t-1"]).debug is False


def _complete(script: str, words: list[str]) -> list[str]:
    """What bash offers after ``words`` (the last one is being typed)."""
    program = (
        f"{script}\nCOMP_WORDS=({' '.join(words)}); COMP_CWORD={len(words) - 1}\n"
        f'_qp_complete; printf "%s\\n" "${{COMPREPLY[@]}}"\n'
    )
    done = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_bash_completion_parses_and_completes() -> None:
    script = completion(console_parser(), "bash")
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)
    assert "time" in _complete(script, ["qp", "ti"])
    assert set(_complete(script, ["qp", "time", "a"])) == {"add", "approve"}
    assert "--customer" in _complete(script, ["qp", "time", "add", "--cu"])
    # Options after a word that is not a subcommand keep the path.
    assert "--recursive" in _complete(script, ["qp", "put", "agent-1", "--rec"])


@pytest.mark.parametrize("prog", PARSERS)
@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_command_prints_each_shell(prog: str, shell: str) -> None:
    done = subprocess.run(
        [str(BIN / prog), "completion", shell], capture_output=True, text=True, check=True
    )
    assert f"{prog} completion for" in done.stdout
    if shell == "bash":
        subprocess.run(["bash", "-n"], input=done.stdout, text=True, check=True)


def test_walk_reaches_every_subcommand() -> None:
    paths = [path for path, _ in walk(console_parser())]
    assert "qp time add" in paths and "qp invoice export" in paths and paths[0] == "qp"
    assert all(isinstance(p, argparse.ArgumentParser) for _, p in walk(agent_parser()))


def test_qp_exec_exits_255_for_its_own_failure_and_others_exit_1(tmp_path: Path) -> None:
    env = dict(os.environ, QP_HOME=str(tmp_path))
    exec_ = subprocess.run(
        [str(BIN / "qp"), "exec", "some-agent", "--", "true"], env=env, capture_output=True
    )
    assert exec_.returncode == 255, exec_.stderr
    assert b"not logged in" in exec_.stderr
    whoami = subprocess.run([str(BIN / "qp"), "whoami"], env=env, capture_output=True)
    assert whoami.returncode == 1
