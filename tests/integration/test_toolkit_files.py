"""Toolkit acceptance 2: ``qp put -r`` / ``qp get -r`` and SFTP confinement.

An agent of its own (so its SFTP root and audit log are this module's alone) is
confined with ``qp agent policy AGENT --sftp-root DIR``. Trees go each way with
contents, modes and mtimes intact; every way out of the root is refused with one
line and shows up as ``file_refused`` in the agent's audit.log.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import pytest

from console.profile import Profile
from console.ssh_session import ssh_session
from tests.integration.conftest import Office
from tests.integration.toolkit_helpers import (
    IsolatedAgent,
    agent_events,
    isolated_agent,
    one_line,
    set_policy,
    sha256,
)

SECRET = b"outside the root: must never be read or replaced\n"


@dataclass(frozen=True)
class Confined:
    office: Office
    agent: IsolatedAgent
    root: Path  # the agent's SFTP root
    outside: Path  # a sibling directory the technician must not reach

    def qp(self, *args: str) -> tuple[int, bytes, bytes]:
        done = self.office.world.qp(*args, home="alice", check=False)
        return done.returncode, done.stdout, done.stderr


@pytest.fixture(scope="module")
def confined(office: Office, tmp_path_factory: pytest.TempPathFactory) -> Confined:
    base = tmp_path_factory.mktemp("sftp")
    root, outside = base / "root", base / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET)
    (root / "escape-file").symlink_to(outside / "secret.txt")
    (root / "escape-dir").symlink_to(outside)
    agent = isolated_agent(office.world, "Acme", "files-pc")
    policy = set_policy(office.world, agent.agent_id, "--sftp-root", str(root))
    assert policy["sftp_root"] == str(root)
    return Confined(office, agent, root, outside)


# -- trees each way --------------------------------------------------------------------------

Snapshot = dict[str, tuple[str, int, int, str]]


def snapshot(top: Path) -> Snapshot:
    """Every entry under ``top``: kind, permission bits, mtime (s) and content hash."""
    seen: Snapshot = {}
    for path in sorted(top.rglob("*")):
        st = path.lstat()
        kind = "dir" if stat.S_ISDIR(st.st_mode) else "file"
        digest = sha256(path) if kind == "file" else ""
        seen[str(path.relative_to(top))] = (
            kind,
            stat.S_IMODE(st.st_mode),
            int(st.st_mtime),
            digest,
        )
    st = top.stat()
    seen["."] = ("dir", stat.S_IMODE(st.st_mode), int(st.st_mtime), "")
    return seen


def make_tree(top: Path) -> Snapshot:
    """Files and directories with unusual modes and old, distinct mtimes."""
    files = {
        "readme.txt": (b"hello tree\n", 0o640),
        "sub/data.bin": (os.urandom(300 * 1024 + 5), 0o600),
        "sub/deeper/run.sh": (b"#!/bin/sh\necho ran\n", 0o755),
        "sub/deeper/empty": (b"", 0o444),
    }
    for name, (content, mode) in files.items():
        path = top / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(mode)
    (top / "empty-dir").mkdir()
    dirs = {"empty-dir": 0o750, "sub/deeper": 0o711, "sub": 0o755, ".": 0o700}
    for name, mode in dirs.items():
        (top / name).chmod(mode)
    # mtimes last (children before parents: writing a child touches its parent).
    entries = [*files, *dirs]
    for i, name in enumerate(entries):
        when = 1_500_000_000 + 86_400 * (i + 1)
        os.utime(top / name, (when, when), follow_symlinks=False)
    return snapshot(top)


def test_put_r_copies_a_tree_with_modes_and_mtimes(confined: Confined, tmp_path: Path) -> None:
    local = tmp_path / "tree"
    local.mkdir()
    expected = make_tree(local)
    code, out, err = confined.qp("put", "-r", "-q", confined.agent.agent_id, str(local), "uploaded")
    assert (code, out, err) == (0, b"", b"")
    assert snapshot(confined.root / "uploaded") == expected
    uploads = {e["path"] for e in agent_events(confined.agent.data, "file_upload")}
    assert {"uploaded/readme.txt", "uploaded/sub/data.bin"} <= uploads, uploads


def test_get_r_copies_a_tree_with_modes_and_mtimes(confined: Confined, tmp_path: Path) -> None:
    remote = confined.root / "to-fetch"
    remote.mkdir()
    expected = make_tree(remote)
    local = tmp_path / "fetched"
    code, out, err = confined.qp("get", "-r", "-q", "files-pc", "to-fetch", str(local))
    assert (code, out, err) == (0, b"", b"")
    assert snapshot(local) == expected
    downloads = {e["path"] for e in agent_events(confined.agent.data, "file_download")}
    assert {"to-fetch/readme.txt", "to-fetch/sub/data.bin"} <= downloads, downloads


def test_a_directory_needs_r(confined: Confined, tmp_path: Path) -> None:
    local = tmp_path / "tree"
    local.mkdir()
    code, _, err = confined.qp("put", "-q", "files-pc", str(local), "no-r")
    assert code != 0
    assert one_line(err) == f"qp: {local} is a directory; use -r to copy it"
    assert not (confined.root / "no-r").exists()


# -- every way out is refused, said in one line, and audited ---------------------------------


@dataclass(frozen=True)
class Escape:
    direction: str  # get | put
    remote: str  # as typed by the technician; "{outside}" is filled in


ESCAPES = {
    "get-dotdot": Escape("get", "../outside/secret.txt"),
    "get-dotdot-nested": Escape("get", "sub/../../outside/secret.txt"),
    "get-absolute": Escape("get", "{outside}/secret.txt"),
    "get-symlink-to-file": Escape("get", "escape-file"),
    "get-through-symlinked-dir": Escape("get", "escape-dir/secret.txt"),
    "put-dotdot": Escape("put", "../outside/planted.txt"),
    "put-absolute": Escape("put", "{outside}/planted.txt"),
    "put-symlink-to-file": Escape("put", "escape-file"),
    "put-through-symlinked-dir": Escape("put", "escape-dir/planted.txt"),
}


@pytest.mark.parametrize("case", list(ESCAPES))
def test_traversal_is_refused_and_audited(confined: Confined, tmp_path: Path, case: str) -> None:
    spec = ESCAPES[case]
    remote = spec.remote.format(outside=confined.outside)
    before = len(agent_events(confined.agent.data))
    local = tmp_path / "local.txt"
    if spec.direction == "put":
        local.write_bytes(b"planted by the technician\n")
        code, out, err = confined.qp("put", "-q", "files-pc", str(local), remote)
    else:
        code, out, err = confined.qp("get", "-q", "files-pc", remote, str(local))

    assert code != 0 and out == b""
    assert one_line(err) == f"qp: refused by the agent: {remote}: outside the allowed root"
    # Nothing crossed the boundary either way.
    assert sorted(p.name for p in confined.outside.iterdir()) == ["secret.txt"]
    assert (confined.outside / "secret.txt").read_bytes() == SECRET
    if spec.direction == "get":
        assert not local.exists()
    # The agent's own log says who tried what.
    new = agent_events(confined.agent.data)[before:]
    refused = [e for e in new if e["event"] == "file_refused"]
    assert refused, new
    assert {e["path"] for e in refused} == {remote}
    assert {e["reason"] for e in refused} == {"outside the allowed root"}
    assert all(e["session"].startswith("ses-") for e in refused)
    assert not [e for e in new if e["event"] in ("file_upload", "file_download")]


def test_creating_a_symlink_is_refused(confined: Confined) -> None:
    """The symlink cases cannot be set up by the technician: no new symlinks."""
    raw = json.loads((confined.office.world.root / "qp" / "alice" / "profile.json").read_text())
    profile = Profile(str(raw["url"]), str(raw["token"]))

    async def attempt() -> None:
        async with ssh_session(profile, "files-pc", "files") as (conn, _):
            async with conn.start_sftp_client() as sftp:
                with pytest.raises(asyncssh.SFTPPermissionDenied):
                    await sftp.symlink(str(confined.outside), "new-escape")

    asyncio.run(attempt())
    assert not (confined.root / "new-escape").is_symlink()
    refused = agent_events(confined.agent.data, "file_refused")
    assert refused[-1]["reason"] == "creating symlinks is not allowed"
