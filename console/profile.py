"""The technician's profile: relay URL and token, in ``$QP_HOME`` (0600)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import platformdirs

from shared.errors import ConfigError
from shared.secrets_io import make_private_dir, write_private


def home() -> Path:
    """The profile directory: ``$QP_HOME``, else the platform's per-user config
    folder (``$XDG_CONFIG_HOME/qp``, by default ``~/.config/qp``, on Linux)."""
    env = os.environ.get("QP_HOME")
    return Path(env) if env else platformdirs.user_config_path("qp", appauthor=False)


@dataclass(frozen=True)
class Profile:
    url: str
    token: str
    ca_file: str | None = None

    @staticmethod
    def path() -> Path:
        return home() / "profile.json"

    def save(self) -> None:
        make_private_dir(home())
        write_private(self.path(), json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def remove(cls) -> bool:
        """Delete the stored profile and its token; False if there was none."""
        try:
            cls.path().unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise ConfigError(f"cannot remove {cls.path()}: {exc}") from exc
        return True

    @classmethod
    def load(cls) -> Profile:
        path = cls.path()
        if not path.exists():
            raise ConfigError("not logged in; run 'qp login URL --token TOKEN' first")
        try:
            data = json.loads(path.read_text())
            return cls(str(data["url"]), str(data["token"]), data.get("ca_file"))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path} is damaged ({exc}); run 'qp login' again") from exc
