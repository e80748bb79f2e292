"""``make demo``: the real flow end to end, on the embedded SQLite default.

A relay, a customer, a technician, an enrolled agent — separate processes on
loopback — then a ``qp exec`` and a scripted ``qp shell`` session, and the time
entry the relay made of them: one technician's reconnects on one machine are one
piece of work, billed once (actual time in whole minutes without a rate card).
"""

from __future__ import annotations

import os
import pty
import select
import sys
import tempfile
import time
from pathlib import Path

from harness import BIN, World


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def scripted_shell(world: World, home: str, agent: str, script: list[bytes]) -> tuple[str, int]:
    """Drive ``qp shell`` under a real PTY, as a technician would type."""
    pid, fd = pty.fork()
    if pid == 0:
        os.environ.update(world.env(home))
        os.execv(str(BIN / "qp"), [str(BIN / "qp"), "shell", agent])
    output = b""
    pending = list(script)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        prompts = output.count(b"$ ") + output.count(b"# ")
        answered = len(script) - len(pending)
        if pending and prompts > answered:  # type the next line at each new prompt
            os.write(fd, pending.pop(0))
    _, status = os.waitpid(pid, 0)
    return output.decode(errors="replace"), os.waitstatus_to_exitcode(status)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="qp-demo-") as tmp:
        world = World(Path(tmp))
        try:
            say("relay: qp-relay init + serve")
            token = world.init_relay()
            print(f"listening on {world.start_relay(0)}")
            world.login(token)
            say("office: a customer and a technician")
            world.qp("customer", "add", "Bakkerij De Vries")
            world.technician("alice", "Bakkerij De Vries")
            print("customer 'Bakkerij De Vries', technician 'alice' (level 2)")
            say("client: qp-agent enroll + run")
            agent_id, data = world.enroll("Bakkerij De Vries", "kassa-pc")
            world.start_agent(data)
            print(world.qp("agents", home="alice").stdout.decode())
            say("technician: qp exec kassa-pc -- uname -sr")
            out = world.qp("exec", "kassa-pc", "--", "uname", "-sr", home="alice")
            print(out.stdout.decode().strip())
            say("technician: qp shell kassa-pc (scripted)")
            text, code = scripted_shell(
                world,
                "alice",
                "kassa-pc",
                [b"tty\n", b"echo fixed the printer queue\n", b"exit 3\n"],
            )
            print(text.strip()[-400:])
            print(f"(shell exited with status {code})")
            say("billing: qp time (the two sessions are one piece of work: one entry)")
            print(world.qp("time", home="alice").stdout.decode())
        finally:
            world.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
