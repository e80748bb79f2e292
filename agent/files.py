"""The agent's data directory: identity, host key and certificate, relay trust."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
import platformdirs

from shared.errors import ConfigError
from shared.keys import load_private_key, parse_certificate
from shared.secrets_io import make_private_dir, write_private


def default_data_dir() -> Path:
    """``$QP_AGENT_DATA``; else, for root on Linux (the service),
    ``/var/lib/qp-agent``; else the platform's per-user data folder
    (``$XDG_DATA_HOME/qp-agent``, by default ``~/.local/share/qp-agent``)."""
    env = os.environ.get("QP_AGENT_DATA")
    if env:
        return Path(env)
    if sys.platform.startswith("linux") and os.geteuid() == 0:
        return Path("/var/lib/qp-agent")
    return platformdirs.user_data_path("qp-agent", appauthor=False)


@dataclass(frozen=True)
class AgentFiles:
    root: Path

    @property
    def identity(self) -> Path:
        return self.root / "identity_key"

    @property
    def host_key(self) -> Path:
        return self.root / "host_key"

    @property
    def host_cert(self) -> Path:
        return self.root / "host_key-cert.pub"

    @property
    def user_ca(self) -> Path:
        return self.root / "user_ca.pub"

    @property
    def host_ca(self) -> Path:
        return self.root / "host_ca.pub"

    @property
    def config(self) -> Path:
        return self.root / "agent.json"

    @property
    def audit_log(self) -> Path:
        return self.root / "audit.log"

    @property
    def control_socket(self) -> Path:
        return self.root / "control.sock"

    @property
    def recordings(self) -> Path:
        return self.root / "recordings"

    @property
    def status(self) -> Path:
        return self.root / "status.json"

    def enrolled(self) -> bool:
        return bool(self.config.exists())

    def prepare(self) -> None:
        make_private_dir(self.root)

    def save_config(self, data: dict[str, Any]) -> None:
        write_private(self.config, json.dumps(data, indent=2) + "\n")

    def load_config(self) -> dict[str, Any]:
        if not self.enrolled():
            raise ConfigError(
                f"no enrolled agent in {self.root}; run 'qp-agent enroll URL --token T' first"
            )
        try:
            data = json.loads(self.config.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read {self.config}: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{self.config} is damaged; enroll again")
        return data

    def write_status(self, data: dict[str, Any]) -> None:
        write_private(self.status, json.dumps(data) + "\n")

    def read_status(self) -> dict[str, Any]:
        try:
            data = json.loads(self.status.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}


@dataclass(frozen=True)
class Identity:
    """Everything ``qp-agent run`` needs, loaded from the data directory."""

    relay_url: str
    agent_id: str
    name: str
    ca_file: str | None
    identity_key: asyncssh.SSHKey
    host_key: asyncssh.SSHKey
    host_cert: asyncssh.SSHCertificate
    user_ca: str

    @classmethod
    def load(cls, files: AgentFiles) -> Identity:
        config = files.load_config()
        try:
            cert = parse_certificate(files.host_cert.read_bytes())
            user_ca = files.user_ca.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"agent data in {files.root} is incomplete: {exc}") from exc
        return cls(
            relay_url=str(config["relay_url"]),
            agent_id=str(config["agent_id"]),
            name=str(config.get("name", "")),
            ca_file=config.get("ca_file"),
            identity_key=load_private_key(files.identity),
            host_key=load_private_key(files.host_key),
            host_cert=cert,
            user_ca=user_ca,
        )
