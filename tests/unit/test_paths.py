"""Where the console keeps its profile and the agent its data, when not told."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from agent import files
from console.profile import home


def test_profile_follows_qp_home_then_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QP_HOME", str(tmp_path / "explicit"))
    assert home() == tmp_path / "explicit"
    monkeypatch.delenv("QP_HOME")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    if sys.platform.startswith("linux"):
        assert home() == tmp_path / "cfg" / "qp"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux paths")
def test_agent_data_is_var_lib_for_root_and_xdg_for_users(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QP_AGENT_DATA", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setattr("agent.files.os.geteuid", lambda: 0)
    assert files.default_data_dir() == Path("/var/lib/qp-agent")
    monkeypatch.setattr("agent.files.os.geteuid", lambda: 1000)
    assert files.default_data_dir() == tmp_path / "data" / "qp-agent"
    monkeypatch.setenv("QP_AGENT_DATA", str(tmp_path / "given"))
    assert files.default_data_dir() == tmp_path / "given"
