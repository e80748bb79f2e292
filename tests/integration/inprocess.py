"""A relay node in the test's own event loop, and its programs as asyncio children.

For tests that need to see inside the relay while real programs use it (the bytes
it pumps, the store's write counter): the node runs on this loop, so the
command-line programs must run without blocking it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from typing import Any

from harness import BIN, World, timeout
from relay.app import Listen, Relay
from relay.services.ports import Tap
from shared.clock import Clock


class AsyncProc:
    """A long-running child on this event loop (the relay is served by it too)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        self.proc = proc
        self.lines: list[str] = []
        self._eof = False
        self._news = asyncio.Event()
        self._reader = asyncio.create_task(self._read(proc.stderr))

    @classmethod
    async def spawn(cls, world: World, argv: list[str], home: str = "admin") -> AsyncProc:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            env=world.env(home),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def _read(self, stream: asyncio.StreamReader) -> None:
        async for raw in stream:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))
            self._news.set()
        self._eof = True
        self._news.set()

    async def wait_line(self, pattern: str, within: float = 15) -> str:
        rx = re.compile(pattern)

        async def find() -> str:
            seen = 0
            while True:
                for line in self.lines[seen:]:
                    if rx.search(line):
                        return line
                seen = len(self.lines)
                if self._eof:
                    raise AssertionError(f"no line matching {pattern!r}: {self.lines[-20:]}")
                self._news.clear()
                await self._news.wait()

        return await asyncio.wait_for(find(), timeout(within))

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), timeout(10))
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        await self._reader


async def arun(
    world: World, argv: list[str], home: str = "admin", check: bool = True
) -> tuple[int, bytes, bytes]:
    """Run a CLI to completion without blocking the loop that serves the relay."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env=world.env(home),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout(60))
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    code = proc.returncode
    assert code is not None
    if check and code != 0:
        raise AssertionError(f"{argv} exited {code}: {err.decode(errors='replace')}")
    return code, out, err


async def aqp_json(world: World, *args: str) -> Any:
    _, out, _ = await arun(world, [str(BIN / "qp"), *args, "--json"])
    return json.loads(out)


@contextlib.asynccontextmanager
async def node_with_agent(
    world: World,
    agent_name: str,
    tap: Tap | None = None,
    clock: Clock | None = None,
    **settings: int,
) -> AsyncIterator[Relay]:
    """A relay node on this loop with one customer (Initech) and one agent linked;
    ``settings`` are written to its ``relay.toml``."""
    world.init_relay(**settings)
    node = await Relay.open(world.relay_data, clock=clock, tap=tap)
    agent: AsyncProc | None = None
    try:
        world.url = await node.start(Listen("127.0.0.1", 0))
        await arun(world, [str(BIN / "qp"), "login", world.url, "--token", world.admin_token])
        await arun(world, [str(BIN / "qp"), "customer", "add", "Initech"])
        token = (await aqp_json(world, "enroll-token", "create", "--customer", "Initech"))["token"]
        data = world.root / "agents" / agent_name
        await arun(
            world,
            [str(BIN / "qp-agent"), "enroll", world.url, "--token", token, "--name", agent_name]
            + ["--data", str(data)],
        )
        config = json.loads((data / "agent.json").read_text())
        config["diagnostics"] = {"probe_gateway": False}  # loopback only
        (data / "agent.json").write_text(json.dumps(config))
        agent = await AsyncProc.spawn(world, [str(BIN / "qp-agent"), "run", "--data", str(data)])
        await agent.wait_line(r"connected to relay as")
        yield node
    finally:
        if agent is not None:
            await agent.stop()
        await node.stop()


class Lines:
    """A child's stdout, line by line, on this loop."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        self.proc = proc
        self.stdout = proc.stdout

    @classmethod
    async def spawn(cls, world: World, argv: list[str], home: str = "admin") -> Lines:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            env=world.env(home),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def line(self, within: float = 30) -> str:
        """The next line it prints."""
        raw = await asyncio.wait_for(self.stdout.readline(), timeout(within))
        return raw.decode(errors="replace").rstrip("\n")

    async def exit(self, within: float = 60) -> int:
        """Wait for it to end; its exit status."""
        await asyncio.wait_for(self.proc.communicate(), timeout(within))
        code = self.proc.returncode
        assert code is not None
        return code
