"""The console's one sanitising helper, and every print path going through it."""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from console import output
from shared.cli_util import run_main
from shared.errors import UnavailableError
from shared.safe_text import clean

MARKUP = "[bold red]RED[/bold red]"
EVIL = (
    "\x1b]0;title\x07\x1b]52;c;ZXZpbA==\x1b\\\x1b[2K\r\x1b[1Afake\x9b2J\x9d8;;http://x\x9c"
    f"\u202eexe.txt\u2067\x00\x7f{MARKUP}\x1bPq#0\x1b\\\x1b(0"
)
BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def controls(text: str, allowed: str = "") -> set[str]:
    """The control and bidi characters in ``text`` other than ``allowed``."""
    return {
        ch
        for ch in text
        if (ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 or ch in BIDI) and ch not in allowed
    }


def test_clean_removes_whole_sequences_and_keeps_the_text() -> None:
    assert clean(EVIL) == f" fakeexe.txt{MARKUP}"  # the \\r is a space
    assert clean("a\tb\nc\r\nd\re") == "a b c  d e"
    assert clean("a\r\nb\nc\rd", multiline=True) == "a\nb\nc d"
    assert clean("end\x1b") == "end" and clean("\x1b\x1b[31mx") == "x"
    assert clean(None) == "" and clean(42) == "42"
    assert clean("abcdef", limit=4) == "abc…"


@given(st.text())
def test_clean_never_leaves_a_control(text: str) -> None:
    assert not controls(clean(text))
    assert not controls(clean(text, multiline=True), allowed="\n")


def test_every_output_function_prints_inert_text(capsys: pytest.CaptureFixture[str]) -> None:
    row = {"id": EVIL, "name": [EVIL, EVIL], "online": True, "none": None}
    output.show([row], [("id", EVIL), ("name", "Name"), ("online", "On")], False, EVIL)
    output.show([], [("id", "ID")], False, EVIL)
    output.show_object({EVIL: EVIL, "n": None}, False)
    output.say(EVIL)
    output.say(EVIL, err=True)
    output.say(f"one\n{EVIL}", multiline=True)
    output.print_json({"x": EVIL})
    out, err = capsys.readouterr()
    assert not controls(out, allowed="\n") and not controls(err, allowed="\n")
    assert MARKUP in out and MARKUP in err  # markup printed as text, not obeyed
    assert "\\u001b" in out  # JSON keeps the value, escaped


def test_an_error_line_from_a_peer_prints_inert(capsys: pytest.CaptureFixture[str]) -> None:
    def body(args: argparse.Namespace) -> int:
        raise UnavailableError(f"the client declined the session ({EVIL})")

    with pytest.raises(SystemExit) as exited:
        run_main(body, argparse.ArgumentParser(prog="qp"), [], quiet_logs=True)
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert err == f"qp: the client declined the session ( fakeexe.txt{MARKUP})\n"


def _bare_prints(path: Path) -> list[int]:
    tree = ast.parse(path.read_text())
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "print"
    ]


def test_console_prints_only_through_the_output_helpers() -> None:
    """Every console module prints with output.say/show/show_object (which clean);
    a bare ``print`` would bypass the sanitiser. The terminal byte streams of a
    session (exec, shell, replay) are the remote program's output by design."""
    root = Path(__file__).resolve().parents[2] / "console"
    found = {
        path.name: lines
        for path in sorted(root.glob("*.py"))
        if path.name != "output.py" and (lines := _bare_prints(path))
    }
    assert found == {}
