"""Real processes on loopback: a relay, agents and consoles, for tests, demo and bench.

Everything waits on what the programs print (``listening on …``, ``connected to
relay as …``), never on a sleep. Timeouts scale with ``QP_TEST_TIMEOUT_FACTOR``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

FACTOR = float(os.environ.get("QP_TEST_TIMEOUT_FACTOR", "1"))
BIN = Path(sys.executable).parent


def timeout(seconds: float) -> float:
    """A timeout scaled for slow machines."""
    return seconds * FACTOR


class Proc:
    """A long-running program whose output lines we can wait for."""

    def __init__(self, argv: list[str], env: dict[str, str], stdin: int | None = None) -> None:
        self.argv = argv
        self.popen = subprocess.Popen(
            argv,
            env=env,
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._cond = threading.Condition()
        for name in ("stdout", "stderr"):
            stream = getattr(self.popen, name)
            threading.Thread(target=self._read, args=(name, stream), daemon=True).start()

    def _read(self, name: str, stream: Any) -> None:
        for raw in iter(stream.readline, b""):
            with self._cond:
                self.lines[name].append(raw.decode(errors="replace").rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self.lines[name].append("<eof>")
            self._cond.notify_all()

    def wait_line(
        self, pattern: str, stream: str = "stderr", within: float = 15, start: int = 0
    ) -> str:
        """The first line (from index ``start``) matching regex ``pattern``."""
        rx = re.compile(pattern)
        found: list[str] = []

        def ready() -> bool:
            for line in self.lines[stream][start:]:
                if rx.search(line):
                    found.append(line)
                    return True
            return "<eof>" in self.lines[stream]

        with self._cond:
            self._cond.wait_for(ready, timeout(within))
        if not found:
            raise AssertionError(
                f"{self.argv[0]}: no line matching {pattern!r} on {stream} within {within}s;\n"
                f"stdout: {self.lines['stdout'][-20:]}\nstderr: {self.lines['stderr'][-20:]}"
            )
        return found[0]

    def count(self, stream: str = "stderr") -> int:
        with self._cond:
            return len(self.lines[stream])

    def text(self, stream: str = "stderr") -> str:
        with self._cond:
            return "\n".join(self.lines[stream])

    def signal(self, sig: int) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)

    def wait(self, within: float = 30) -> int:
        return self.popen.wait(timeout(within))

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout(10))
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


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
        return self.run([str(BIN / "qp"), *args], home=home, input=input, check=check)

    def qp_json(self, *args: str, home: str = "admin") -> Any:
        return json.loads(self.qp(*args, "--json", home=home).stdout)

    # -- relay ---------------------------------------------------------------------------
    def init_relay(self, **settings: int) -> str:
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
        listen = f"127.0.0.1:{self.port if port is None else port}"
        self.relay = self.spawn(
            [str(BIN / "qp-relay"), "serve", "--data", str(self.relay_data), "--listen", listen]
        )
        line = self.relay.wait_line(r"^listening on ", stream="stdout")
        self.url = line.split()[-1]
        self.port = int(self.url.rsplit(":", 1)[1])
        return self.url

    def spawn(self, argv: list[str], home: str = "admin", stdin: int | None = None) -> Proc:
        proc = Proc(argv, self.env(home), stdin)
        self.procs.append(proc)
        return proc

    # -- people and machines ---------------------------------------------------------------
    def login(self, token: str, home: str = "admin") -> None:
        self.qp("login", self.url, "--token", token, home=home)

    def technician(self, name: str, *customers: str, role: str = "technician") -> str:
        args = ["technician", "add", name, "--level", "2", "--role", role]
        for customer in customers:
            args += ["--customer", customer]
        token: str = self.qp_json(*args)["token"]
        self.login(token, home=name)
        return token

    def enroll(self, customer: str, name: str) -> tuple[str, Path]:
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
        agent = self.spawn([str(BIN / "qp-agent"), "run", "--data", str(data)])
        agent.wait_line(r"connected to relay as")
        return agent

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
