"""A relay with its technicians and agents, all real processes on 127.0.0.1.

Used by the integration tests, ``scripts/demo.py`` and the benchmarks.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

from harness.processes import BIN, Proc, timeout


class World:
    """A relay data directory plus the processes and profiles around it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.relay_data = root / "relay"
        self.procs: list[Proc] = []
        self.relay: Proc | None = None
        self.url = ""
        self.port = 0
        self.admin_token = ""

    # -- environment -------------------------------------------------------------------
    def env(self, home: str = "admin", **extra: str) -> dict[str, str]:
        """The environment of a program run as ``home`` (its own ``QP_HOME``)."""
        env = dict(os.environ)
        env.update(QP_HOME=str(self.root / "qp" / home), PYTHONUNBUFFERED="1", **extra)
        env.pop("QP_AGENT_DATA", None)
        return env

    def run(
        self,
        argv: list[str],
        home: str = "admin",
        input: bytes | None = None,
        check: bool = True,
        within: float = 60,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run a program to completion as ``home``; with ``check``, a non-zero exit fails."""
        proc = subprocess.run(
            argv, env=self.env(home), input=input, capture_output=True, timeout=timeout(within)
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.decode(errors='replace')}"
            )
        return proc

    def qp(
        self, *args: str, home: str = "admin", input: bytes | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        """Run ``qp ARGS`` as ``home`` (see :meth:`run`)."""
        return self.run([str(BIN / "qp"), *args], home=home, input=input, check=check)

    def qp_json(self, *args: str, home: str = "admin") -> Any:
        """The parsed ``--json`` output of ``qp ARGS``."""
        return json.loads(self.qp(*args, "--json", home=home).stdout)

    # -- relay ---------------------------------------------------------------------------
    def init_relay(self, **settings: int | str) -> str:
        """``qp-relay init``, then override ``relay.toml`` keys; the admin token."""
        out = self.run([str(BIN / "qp-relay"), "init", "--data", str(self.relay_data), "--json"])
        self.admin_token = json.loads(out.stdout)["admin_token"]
        toml = self.relay_data / "relay.toml"
        text = toml.read_text()
        for key, value in settings.items():
            text, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
            assert n == 1, key
        toml.write_text(text)
        return self.admin_token

    def start_relay(self, port: int | None = None) -> str:
        """Serve the relay on 127.0.0.1 (port 0 picks a free one); its URL."""
        listen = f"127.0.0.1:{self.port if port is None else port}"
        self.relay = self.spawn(
            [str(BIN / "qp-relay"), "serve", "--data", str(self.relay_data), "--listen", listen]
        )
        line = self.relay.wait_line(r"^listening on ", stream="stdout")
        self.url = line.split()[-1]
        self.port = int(self.url.rsplit(":", 1)[1])
        return self.url

    def spawn(self, argv: list[str], home: str = "admin", stdin: int | None = None) -> Proc:
        """Start a long-running program as ``home``; :meth:`close` stops it."""
        proc = Proc(argv, self.env(home), stdin)
        self.procs.append(proc)
        return proc

    # -- people and machines ---------------------------------------------------------------
    def login(self, token: str, home: str = "admin") -> None:
        """``qp login`` with ``token`` into ``home``'s profile."""
        self.qp("login", self.url, "--token", token, home=home)

    def technician(self, name: str, *customers: str, role: str = "technician") -> str:
        """Add a technician allowed on ``customers``, logged in as home ``name``; the token."""
        args = ["technician", "add", name, "--level", "2", "--role", role]
        for customer in customers:
            args += ["--customer", customer]
        token: str = self.qp_json(*args)["token"]
        self.login(token, home=name)
        return token

    def enroll(self, customer: str, name: str, *extra: str) -> tuple[str, Path]:
        """Enroll an agent ``name`` for ``customer`` (``extra``: more ``qp-agent
        enroll`` options, e.g. ``--ca-file``): its id and data directory."""
        token = self.qp_json("enroll-token", "create", "--customer", customer)["token"]
        data = self.root / "agents" / name
        out = self.run(
            [
                str(BIN / "qp-agent"),
                "enroll",
                self.url,
                "--token",
                token,
                "--name",
                name,
                "--data",
                str(data),
                *extra,
            ]
        )
        agent_id = re.search(r"\((agt-[0-9a-f]+)\)", out.stdout.decode())
        assert agent_id, out.stdout
        # Tests only ever talk to loopback: never probe the machine's real gateway.
        config_path = data / "agent.json"
        config = json.loads(config_path.read_text())
        config["diagnostics"] = {"probe_gateway": False}
        config_path.write_text(json.dumps(config))
        return agent_id.group(1), data

    def start_agent(self, data: Path) -> Proc:
        """``qp-agent run`` on ``data``, once it is connected to the relay. Whoever
        enrolled it, its diagnostics leave the machine's real gateway alone."""
        config_path = data / "agent.json"
        config = json.loads(config_path.read_text())
        if config.get("diagnostics", {}).get("probe_gateway") is not False:
            config.setdefault("diagnostics", {})["probe_gateway"] = False
            config_path.write_text(json.dumps(config))
        agent = self.spawn([str(BIN / "qp-agent"), "run", "--data", str(data)])
        agent.wait_line(r"connected to relay as")
        return agent

    def close(self) -> None:
        """Stop every spawned program, newest first."""
        for proc in reversed(self.procs):
            proc.stop()
