"""Journal collector: recent system errors (systemd journal, priority err and worse)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from agent.diagnostics.collector import Unavailable, run_tool
from agent.diagnostics.options import DiagnosticsOptions
from shared.clock import Clock
from shared.diagnostics import MAX_JOURNAL_ENTRIES, MAX_MESSAGE_LENGTH, JournalEntry, JournalInfo

JOURNAL_DIRS = (Path("/var/log/journal"), Path("/run/log/journal"))
# A journal line is cut here before JSON parsing, so one huge entry cannot cost much.
_MAX_LINE = 64 * 1024


def collect_journal(options: DiagnosticsOptions, clock: Clock) -> JournalInfo:
    """The newest ``options.journal_entries`` error entries since
    ``options.journal_since``, newest first."""
    if not sys.platform.startswith("linux"):
        raise Unavailable(
            f"system error log is read from the systemd journal, not on {sys.platform}"
        )
    if not has_journal_files(JOURNAL_DIRS):
        raise Unavailable("no journal files on this machine (journald not running or not storing)")
    lines = min(options.journal_entries, MAX_JOURNAL_ENTRIES)
    result = run_tool(
        [
            "journalctl",
            "--priority=err",
            f"--lines={lines}",
            f"--since={options.journal_since}",
            "--reverse",
            "--output=json",
            "--no-pager",
            "--quiet",
        ],
        options.tool_timeout,
    )
    if result.returncode != 0:
        first = (result.stderr.strip().splitlines() or ["no message"])[0]
        raise Unavailable(f"journalctl failed (exit {result.returncode}): {first}")
    entries = parse_journal_json(result.stdout)[:lines]
    return JournalInfo(source="journald", entries=tuple(entries))


def has_journal_files(directories: tuple[Path, ...]) -> bool:
    """Whether any ``*.journal`` file exists in the journal directories (one level of
    machine-id subdirectories, as journald lays them out)."""
    for directory in directories:
        try:
            if any(directory.glob("*.journal")) or any(directory.glob("*/*.journal")):
                return True
        except OSError:
            continue
    return False


def parse_journal_json(text: str) -> list[JournalEntry]:
    """Entries of ``journalctl --output=json`` (one JSON object per line); lines that
    are not objects are skipped."""
    entries = []
    for line in text.splitlines():
        try:
            record = json.loads(line[:_MAX_LINE])
        except ValueError:
            continue
        if isinstance(record, dict):
            entries.append(_entry(record))
    return entries


def _entry(record: dict[str, object]) -> JournalEntry:
    return JournalEntry(
        time=_time(record.get("__REALTIME_TIMESTAMP")),
        priority=_int(record.get("PRIORITY")),
        unit=_text(record.get("_SYSTEMD_UNIT") or record.get("SYSLOG_IDENTIFIER"))
        or _text(record.get("_COMM")),
        message=_text(record.get("MESSAGE"))[: MAX_MESSAGE_LENGTH * 2],
    )


def _text(value: object) -> str:
    """A journal field: a string, or (for non-UTF-8 data) a list of byte values."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(b, int) and 0 <= b < 256 for b in value):
        return bytes(value).decode("utf-8", errors="replace")
    return ""


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def _time(value: object) -> datetime | None:
    micros = _int(value)
    if micros is None:
        return None
    try:
        return datetime.fromtimestamp(micros / 1_000_000, UTC)
    except (OverflowError, OSError, ValueError):
        return None
