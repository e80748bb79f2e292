"""Session policy: per customer, with per-agent overrides; the most specific wins.

The effective policy travels in every session offer. The relay derives the
certificate's extensions from it; the agent enforces it again on its side.
"""

from __future__ import annotations

from typing import Any

from shared.errors import UsageError
from shared.forwarding import MODES, AllowRule

DEFAULTS: dict[str, Any] = {
    "consent": "unattended",  # attended: the local user must approve each session
    "forwarding": "off",  # off | lan | list
    "forward_allow": [],  # HOST:PORT rules for forwarding = list
    "sftp_root": None,  # None: the whole file system for an enrolled agent
    "record_input": False,  # record keystrokes in the asciicast as well as output
    "upload_recordings": False,  # agents send terminal recordings to the relay
}
CONSENT = ("attended", "unattended")
MAX_RULES = 256  # forward_allow rules in one policy
MAX_PATH = 4096  # characters of sftp_root (PATH_MAX on Linux)
#: What a client may pin on its own machine (``qp-agent policy``): only stricter.
CLIENT_PINS = ("attended",)


def validate(raw: dict[str, Any]) -> dict[str, Any]:
    """Check a partial policy; returns it normalised or raises :class:`UsageError`."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in DEFAULTS:
            raise UsageError(f"unknown policy setting {key!r}; known: {', '.join(DEFAULTS)}")
        if value is None and key != "sftp_root":
            continue
        if key == "consent" and value not in CONSENT:
            raise UsageError("consent must be attended or unattended")
        if key == "forwarding" and value not in MODES:
            raise UsageError(f"forwarding must be one of {', '.join(MODES)}")
        if key == "forward_allow":
            if (
                not isinstance(value, list)
                or len(value) > MAX_RULES
                or not all(isinstance(rule, str) for rule in value)
            ):
                raise UsageError(
                    f"forward_allow must be a list of at most {MAX_RULES} HOST:PORT rules"
                )
            try:
                value = [f"{r.host}:{r.port or '*'}" for r in map(AllowRule.parse, value)]
            except ValueError as exc:
                raise UsageError(str(exc)) from None
        if key == "sftp_root" and value is not None:
            if not isinstance(value, str) or not value.startswith("/") or len(value) > MAX_PATH:
                raise UsageError(
                    f"sftp_root must be an absolute path of at most {MAX_PATH} characters"
                )
        if key in ("record_input", "upload_recordings") and not isinstance(value, bool):
            raise UsageError(f"{key} must be true or false")
        out[key] = value
    return out


def effective(customer: dict[str, Any], agent: dict[str, Any]) -> dict[str, Any]:
    """Defaults, then the customer's policy, then the agent's overrides."""
    result = dict(DEFAULTS)
    for layer in (customer, agent):
        result.update({k: v for k, v in layer.items() if k in DEFAULTS})
    return result


def permits_forwarding(policy: dict[str, Any]) -> bool:
    return bool(policy.get("forwarding", "off") != "off")
