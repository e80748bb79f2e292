"""The client's consent pin: "always ask me", set on this machine, beyond the relay.

The relay decides the session policy, but a person at the machine may insist on
approving every session: ``qp-agent policy --consent attended`` writes a pin in the
agent's data directory. The agent then asks its user for every session whatever
the relay's policy says, and reports the pin on each link so the relay shows the
effective policy. Only the owner of the data directory (the account the agent runs
as) or root may set or clear it. The file is not a secret: 0644, so the user can
see that it is there.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from agent.files import AgentFiles
from shared.errors import UsageError

PIN_FILE = "consent_pin.json"
#: What a pin may say; "relay" clears it (the relay's policy decides again).
CONSENT_PINS = ("attended",)


def pin_path(files: AgentFiles) -> Path:
    return files.root / PIN_FILE


def read_pin(files: AgentFiles) -> str | None:
    """The pinned consent mode, or None. A pin file that cannot be read or parsed
    still pins "attended": asking too often is the safe way to fail."""
    path = pin_path(files)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return "attended"
    consent = data.get("consent") if isinstance(data, dict) else None
    return consent if consent in CONSENT_PINS else "attended"


def may_change_pin(files: AgentFiles, euid: int | None = None) -> None:
    """Raise :class:`UsageError` unless the caller owns the data directory or is root."""
    uid = os.geteuid() if euid is None else euid
    try:
        owner = files.root.stat().st_uid
    except FileNotFoundError:
        raise UsageError(f"no agent data in {files.root}; enroll first") from None
    if uid not in (0, owner):
        raise UsageError(
            f"only the owner of {files.root} (uid {owner}) or root may change the consent pin"
        )


def set_pin(files: AgentFiles, consent: str | None, euid: int | None = None) -> None:
    """Pin ``consent`` (one of :data:`CONSENT_PINS`), or clear the pin with None."""
    may_change_pin(files, euid)
    path = pin_path(files)
    if consent is None:
        path.unlink(missing_ok=True)
        return
    if consent not in CONSENT_PINS:
        raise UsageError(f"consent can be pinned to {', '.join(CONSENT_PINS)} only")
    partial = path.with_suffix(".tmp")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "w") as out:
        out.write(json.dumps({"consent": consent}) + "\n")
    os.chmod(partial, 0o644)  # whatever the umask: readable, written by its owner only
    partial.replace(path)
