"""The wheel is what an operator installs: build it, install only it in a fresh
virtual environment, and run the day-one commands from a directory far from the
checkout (so nothing is imported from the source tree)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.processes import Proc, timeout

REPO = Path(__file__).resolve().parents[2]


def _run(argv: list[str], cwd: Path, env: dict[str, str], within: float = 300) -> str:
    done = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout(within)
    )
    assert done.returncode == 0, f"{' '.join(argv)} exited {done.returncode}: {done.stderr}"
    return done.stdout


@pytest.mark.timeout(900)
def test_the_wheel_alone_runs_init_serve_login_and_rates_template(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(QP_HOME=str(tmp_path / "home"), PYTHONUNBUFFERED="1", PYTHONSAFEPATH="1")
    # Build from a copy: an in-tree build would leave build/ in the checkout.
    source = tmp_path / "source"
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache"
        ),
    )
    dist = tmp_path / "dist"
    _run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(source)],
        elsewhere,
        env,
    )
    wheels = list(dist.glob("quarkpulse_remote-*.whl"))
    assert len(wheels) == 1, wheels

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], elsewhere, env)
    bin_dir = venv / "bin"
    _run([str(bin_dir / "pip"), "install", "-q", str(wheels[0])], elsewhere, env, within=600)
    # The installed code is the wheel's, not the checkout's.
    where = _run(
        [str(bin_dir / "python"), "-c", "import relay, sys; print(relay.__file__)"], elsewhere, env
    )
    assert str(venv) in where and str(REPO) not in where

    data = tmp_path / "relay-data"
    init = json.loads(
        _run([str(bin_dir / "qp-relay"), "init", "--data", str(data), "--json"], elsewhere, env)
    )
    relay = Proc(
        [str(bin_dir / "qp-relay"), "serve", "--data", str(data), "--listen", "127.0.0.1:0"], env
    )
    try:
        url = relay.wait_line(r"^listening on ", stream="stdout", within=60).split()[-1]
        _run([str(bin_dir / "qp"), "login", url, "--token", init["admin_token"]], elsewhere, env)
        who = json.loads(_run([str(bin_dir / "qp"), "whoami", "--json"], elsewhere, env))
        assert who["role"] == "admin"
        # The migrations and the invoice template travel in the wheel: an invoice
        # list needs the former, the sample card is package data too.
        card = _run([str(bin_dir / "qp"), "rates", "template"], elsewhere, env)
        assert card.startswith("# Quarkpulse rate card")
        card_file = elsewhere / "card.toml"
        card_file.write_text(card)
        imported = json.loads(
            _run([str(bin_dir / "qp"), "rates", "import", str(card_file), "--json"], elsewhere, env)
        )
        assert imported["added"] is True
    finally:
        relay.stop()
