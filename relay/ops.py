"""``qp-relay reload``, ``backup`` and ``restore``: operating a relay's data directory.

What a data directory holds, and so what a backup carries:

- ``relay.db`` — the database (technicians and their login tokens, customers,
  agents, sessions, time entries, invoices, audit log). Copied with SQLite's online
  backup API: a consistent snapshot while the relay keeps running and writing.
- ``host_ca``, ``user_ca`` — the SSH certificate authorities' private keys. Without
  them every enrolled agent has to be enrolled again.
- ``relay.toml`` — the settings; ``.initialised`` — the marker holding the relay id.
- ``recordings/`` — terminal recordings; ``invoice.html.j2``, ``logo.png`` and any
  other file the operator put there.

Not copied: ``relay.db-wal``/``-shm`` (folded into the copied database), and the
running relay's ``relay.pid``/``relay.lock``. Every file is written 0600, every
directory 0700, with a ``BACKUP.json`` manifest (sha256 of each file) that
``restore`` checks before it writes anything.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from relay.init import DB_FILE, MARKER, SETTINGS_FILE, require_initialised
from relay.settings import load_settings
from shared.cli_shape import Doc
from shared.errors import ConfigError, UsageError
from shared.secrets_io import make_private_dir, write_private

PID_FILE = "relay.pid"
#: The single-instance lock (when present it holds the running relay's pid).
LOCK_FILE = "relay.lock"
MANIFEST = "BACKUP.json"
#: Files of a running relay that a backup leaves out (the database is copied apart).
SKIPPED = {DB_FILE, f"{DB_FILE}-wal", f"{DB_FILE}-shm", f"{DB_FILE}-journal", PID_FILE, LOCK_FILE}


# -- the running relay's pid -----------------------------------------------------------------


def write_pid(data_dir: Path) -> None:
    """Record this process as the relay serving ``data_dir``."""
    write_private(data_dir / PID_FILE, f"{os.getpid()}\n")


def remove_pid(data_dir: Path) -> None:
    """Forget the pid file, if it is still ours."""
    path = data_dir / PID_FILE
    try:
        if path.read_text().strip() == str(os.getpid()):
            path.unlink()
    except OSError:
        pass


def running_pid(data_dir: Path) -> int:
    """The pid of the relay serving ``data_dir`` (from ``relay.lock``, else
    ``relay.pid``); refuses when no live relay process holds it."""
    for name in (LOCK_FILE, PID_FILE):
        try:
            text = (data_dir / name).read_text()
        except OSError:
            continue
        found = re.search(r"\d+", text)
        if found is None:
            continue
        pid = int(found.group())
        if _is_relay(pid):
            return pid
    raise ConfigError(f"no relay is running on {data_dir} (start it with qp-relay serve)")


def _is_relay(pid: int) -> bool:
    """Whether ``pid`` is alive and (where /proc tells) a ``qp-relay serve``, so a
    stale file never gets an unrelated process signalled."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's: the signal will say
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc here: trust the file
    return any(b"relay" in arg for arg in argv) and b"serve" in argv


def reload(data_dir: Path) -> int:
    """Check ``relay.toml`` here, then ask the running relay to read it (SIGHUP)."""
    require_initialised(data_dir)
    try:
        load_settings(data_dir / SETTINGS_FILE)
    except ConfigError as exc:
        raise ConfigError(f"{exc}; nothing was reloaded, the relay keeps its settings") from None
    pid = running_pid(data_dir)
    os.kill(pid, signal.SIGHUP)
    print(f"asked the relay (pid {pid}) to reload {data_dir / SETTINGS_FILE}")
    return 0


# -- backup and restore ----------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _empty_target(path: Path, what: str) -> None:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise UsageError(f"{what} {path} exists and is not empty; give a new directory")


def _copy_private(src: Path, dst: Path) -> None:
    """Copy one file; the copy is 0600 from its first byte."""
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with src.open("rb") as fin, os.fdopen(fd, "wb") as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)


def _copy_database(src: Path, dst: Path) -> None:
    """SQLite's online backup: one consistent snapshot (WAL readers block no writer)."""
    os.close(os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    source = sqlite3.connect(src, timeout=30)
    target = sqlite3.connect(dst)
    try:
        source.backup(target)
        _check_database(target, dst)
    finally:
        target.close()
        source.close()


def _check_database(db: sqlite3.Connection, path: Path) -> None:
    (result,) = db.execute("PRAGMA quick_check").fetchone()
    if result != "ok":
        raise ConfigError(f"database {path} failed its check: {result}")


def _files(data_dir: Path) -> list[Path]:
    """The files a backup carries, relative to ``data_dir``, sorted."""
    found = []
    for path in sorted(data_dir.rglob("*")):
        rel = path.relative_to(data_dir)
        temporary = rel.name.startswith(".") and ".tmp" in rel.name
        if path.is_file() and not path.is_symlink() and str(rel) not in SKIPPED and not temporary:
            found.append(rel)
    return found


def backup(data_dir: Path, dest: Path) -> dict[str, object]:
    """Copy everything that matters of ``data_dir`` into the new directory ``dest``
    (see the module's docstring); the manifest written."""
    require_initialised(data_dir)
    _empty_target(dest, "backup directory")
    make_private_dir(dest)
    files: dict[str, str] = {}
    _copy_database(data_dir / DB_FILE, dest / DB_FILE)
    files[DB_FILE] = _sha256(dest / DB_FILE)
    for rel in _files(data_dir):
        for parent in reversed(rel.parents[:-1]):
            make_private_dir(dest / parent)
        _copy_private(data_dir / rel, dest / rel)
        files[str(rel)] = _sha256(dest / rel)
    manifest: dict[str, object] = {
        "format": 1,
        "relay_id": (data_dir / MARKER).read_text().strip(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": files,
    }
    write_private(dest / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return manifest


def restore(src: Path, data_dir: Path) -> dict[str, object]:
    """Check the backup in ``src`` against its manifest, then copy it into the new
    data directory ``data_dir``; the manifest."""
    try:
        manifest = json.loads((src / MANIFEST).read_text())
        files: dict[str, str] = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigError(f"{src} is not a qp-relay backup (no readable {MANIFEST})") from None
    for needed in (DB_FILE, MARKER, "host_ca", "user_ca"):
        if needed not in files:
            raise ConfigError(f"backup {src} lacks {needed}; it cannot be restored")
    for rel, digest in files.items():
        path = src / rel
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            raise ConfigError(f"backup {src} names a file outside it: {rel}")
        if not path.is_file() or _sha256(path) != digest:
            raise ConfigError(f"backup {src}: {rel} is missing or changed since the backup")
    _empty_target(data_dir, "data directory")
    make_private_dir(data_dir)
    for rel in sorted(files, key=lambda r: r == MARKER):  # the marker last: complete first
        for parent in reversed(Path(rel).parents[:-1]):
            make_private_dir(data_dir / parent)
        _copy_private(src / rel, data_dir / rel)
    db = sqlite3.connect(data_dir / DB_FILE)
    try:
        _check_database(db, data_dir / DB_FILE)
    finally:
        db.close()
    result: dict[str, object] = manifest
    return result


# -- the commands ----------------------------------------------------------------------------


DOCS: dict[str, Doc] = {
    "qp-relay reload": Doc(
        "Check relay.toml, then signal the relay serving --data (SIGHUP, which works "
        "too) to apply it to what starts next: sessions, logins, entries. Live "
        "sessions continue. A file that does not load is refused and the relay keeps "
        "its settings. The listening socket's limits (open_timeout, ping_*, "
        "tunnel_max_*) need a restart.",
        ("qp-relay reload --data /var/lib/qp-relay", "systemctl reload qp-relay"),
    ),
    "qp-relay backup": Doc(
        "Copy what matters of a relay, while it runs: the database (SQLite online "
        "backup: one consistent snapshot), the SSH CA keys, relay.toml, recordings and "
        "invoice template files, with a BACKUP.json manifest. Files 0600, directories "
        "0700. DEST must be new or empty.",
        ("qp-relay backup --data /var/lib/qp-relay /srv/backup/qp-$(date +%F)",),
    ),
    "qp-relay restore": Doc(
        "Check a backup against its manifest and copy it into a new (or empty) data "
        "directory, ready for qp-relay serve. Never writes into a used directory.",
        (
            "qp-relay restore /srv/backup/qp-2026-12-01 /var/lib/qp-relay-new",
            "qp-relay serve --data /var/lib/qp-relay-new",
        ),
    ),
}


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``reload``, ``backup`` and ``restore`` under ``qp-relay`` (texts: :data:`DOCS`)."""
    rel = sub.add_parser("reload", help="re-read relay.toml in the running relay")
    rel.add_argument("--data", required=True, type=Path)
    bak = sub.add_parser("backup", help="copy a relay's data (online) into a new directory")
    bak.add_argument("dest", type=Path, help="a new (or empty) directory for the backup")
    bak.add_argument("--data", required=True, type=Path)
    res = sub.add_parser("restore", help="restore a backup into a new data directory")
    res.add_argument("src", type=Path, help="a directory written by qp-relay backup")
    res.add_argument("data", type=Path, help="the new (or empty) data directory")


def run(args: argparse.Namespace) -> int | None:
    """Run ``args.command`` if it is one of these; None otherwise."""
    if args.command == "reload":
        return reload(args.data)
    if args.command == "backup":
        manifest = backup(args.data, args.dest)
        files = manifest["files"]
        assert isinstance(files, dict)
        print(f"backed up relay {manifest['relay_id']}: {len(files)} files in {args.dest}")
        return 0
    if args.command == "restore":
        manifest = restore(args.src, args.data)
        print(f"restored relay {manifest['relay_id']} into {args.data}")
        print(f"next: qp-relay serve --data {args.data}")
        return 0
    return None
