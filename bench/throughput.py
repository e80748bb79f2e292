"""Bulk SSH throughput through the relay vs over direct TCP (architecture.md §8).

Relayed path: a real ``qp-relay`` process and an enrolled ``qp-agent`` process (the
:class:`harness.World` harness); this process is the console and
connects with :func:`console.ssh_session.ssh_session`, exactly like ``qp exec``.

Direct baseline: :mod:`bench.sshd` — an asyncssh server in its own process with the
agent's process handler and server options — reached over plain TCP with the
console's SSH options (:mod:`shared.ssh_options`) and the cipher the relayed path negotiated.

Both directions, ``--runs`` runs each (median reported), runs interleaved:
``to_agent``      ``cat > /dev/null`` fed N MiB through stdin (write → drain)
``to_technician`` ``head -c N /dev/zero`` read back from stdout

Run: ``.venv/bin/python -m bench.throughput [--mib 256] [--runs 3] [--cipher ALG]``
Ends with one JSON line of the figures. MB here is 10^6 bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh
import psutil  # type: ignore[import-untyped]

from bench.common import (
    Keys,
    Office,
    json_line,
    median,
    ratio,
    relayed_connect,
    start_office,
    start_sshd,
    throwaway_keys,
)
from bench.cpu_accounting import cpu_now, cpu_since
from console.profile import Profile
from console.ssh_session import ssh_session
from harness import Proc, World
from shared.ssh_options import connect

MIB = 1024 * 1024
GIB = 1024 * MIB
#: The console's stdin chunk (console/remote.py CHUNK).
CHUNK = 64 * 1024
GOAL = 0.6  # architecture.md §8: relayed ≥ 0.6 × direct
#: Give up on a transfer slower than this floor (plus a fixed allowance).
SLOWEST_MBPS = 5.0
WARMUP_BYTES = 16 * MIB

Conn = asyncssh.SSHClientConnection
DIRECTIONS = ("to_agent", "to_technician")


# -- connections ----------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def relayed(office: Office, cipher: str | None) -> AsyncIterator[Conn]:
    """An SSH connection to the agent through the relay, as ``qp exec`` makes it."""
    profile = Profile(office.world.url, office.tech_token)
    if cipher is None:
        async with ssh_session(profile, office.agent_id, "exec") as (conn, _):
            yield conn
        return
    # Same steps and connect() arguments as console.ssh_session, plus a cipher choice.
    conn = await relayed_connect(profile, office.agent_id, encryption_algs=[cipher])
    try:
        yield conn
    finally:
        conn.close()
        with contextlib.suppress(Exception):
            await conn.wait_closed()


@contextlib.asynccontextmanager
async def direct(port: int, keys: Keys, cipher: str) -> AsyncIterator[Conn]:
    """The console's SSH options over plain TCP to :mod:`bench.sshd`."""
    conn = await connect("127.0.0.1", keys.console_options(cipher), port=port)
    try:
        yield conn
    finally:
        conn.close()
        with contextlib.suppress(Exception):
            await conn.wait_closed()


def cipher_of(conn: Conn) -> str:
    send = str(conn.get_extra_info("send_cipher"))
    recv = str(conn.get_extra_info("recv_cipher"))
    return send if send == recv else f"{send}/{recv}"


# -- transfers ------------------------------------------------------------------------------
async def to_agent(conn: Conn, nbytes: int) -> float:
    """Seconds to push ``nbytes`` into ``cat > /dev/null`` until its exit status."""
    proc = await conn.create_process("cat > /dev/null", encoding=None)
    block = bytes(CHUNK)
    left = nbytes
    start = time.perf_counter()
    while left > 0:
        proc.stdin.write(block if left >= CHUNK else block[:left])
        await proc.stdin.drain()
        left -= CHUNK
    proc.stdin.write_eof()
    await proc.wait_closed()
    elapsed = time.perf_counter() - start
    if proc.exit_status != 0:
        raise RuntimeError(f"cat exited {proc.exit_status}")
    return elapsed


async def to_technician(conn: Conn, nbytes: int) -> float:
    """Seconds to read ``nbytes`` of ``head -c N /dev/zero`` back to EOF."""
    start = time.perf_counter()
    proc = await conn.create_process(f"head -c {nbytes} /dev/zero", encoding=None)
    proc.stdin.write_eof()
    got = 0
    while True:
        data = await proc.stdout.read(4 * CHUNK)
        if not data:
            break
        got += len(data)
    await proc.wait_closed()
    elapsed = time.perf_counter() - start
    if got != nbytes or proc.exit_status != 0:
        raise RuntimeError(f"read {got} of {nbytes} bytes, exit {proc.exit_status}")
    return elapsed


async def transfer(conn: Conn, direction: str, nbytes: int) -> float:
    run = to_agent if direction == "to_agent" else to_technician
    return await asyncio.wait_for(run(conn, nbytes), 30 + nbytes / (SLOWEST_MBPS * 1e6))


# -- results --------------------------------------------------------------------------------
@dataclass
class Series:
    seconds: list[float] = field(default_factory=list)
    cpu: dict[str, list[float]] = field(default_factory=dict)

    def add(self, seconds: float, cpu: dict[str, float]) -> None:
        self.seconds.append(seconds)
        for name, value in cpu.items():
            self.cpu.setdefault(name, []).append(value)

    def mbps(self, nbytes: int) -> float:
        return nbytes / median(self.seconds) / 1e6

    def runs_mbps(self, nbytes: int) -> list[float]:
        return [round(nbytes / s / 1e6, 1) for s in self.seconds]

    def cpu_per_gib(self, name: str, nbytes: int) -> float:
        return median(self.cpu.get(name, [])) * GIB / nbytes


async def measured(
    conn: Conn, direction: str, nbytes: int, procs: dict[str, psutil.Process]
) -> tuple[float, dict[str, float]]:
    before = cpu_now(procs)
    seconds = await transfer(conn, direction, nbytes)
    return seconds, cpu_since(procs, before)


# -- main -----------------------------------------------------------------------------------
async def bench(
    office: Office, sshd: Proc, port: int, keys: Keys, nbytes: int, runs: int, cipher: str | None
) -> dict[str, object]:
    me = psutil.Process()
    relay_procs = {
        "relay": psutil.Process(office.relay.popen.pid),
        "agent": psutil.Process(office.agent.popen.pid),
        "console": me,
    }
    results: dict[tuple[str, str], Series] = {
        (path, d): Series() for path in ("direct", "relay") for d in DIRECTIONS
    }
    async with relayed(office, cipher) as rconn:
        negotiated = cipher_of(rconn)
        print(f"cipher negotiated through the relay: {negotiated}", flush=True)
        async with direct(port, keys, rconn.get_extra_info("send_cipher")) as dconn:
            direct_procs = {"sshd": psutil.Process(sshd.popen.pid), "console": me}
            direct_cipher = cipher_of(dconn)
            print(f"cipher negotiated over direct TCP: {direct_cipher}", flush=True)
            for direction in DIRECTIONS:  # warm both paths up, not counted
                await transfer(rconn, direction, WARMUP_BYTES)
                await transfer(dconn, direction, WARMUP_BYTES)
            for i in range(runs):
                for direction in DIRECTIONS:
                    for path, conn, procs in (
                        ("direct", dconn, direct_procs),
                        ("relay", rconn, relay_procs),
                    ):
                        secs, cpu = await measured(conn, direction, nbytes, procs)
                        results[(path, direction)].add(secs, cpu)
                        print(
                            f"  run {i + 1}/{runs} {direction:<13} {path:<6} "
                            f"{nbytes / secs / 1e6:8.1f} MB/s",
                            flush=True,
                        )

    figures: dict[str, object] = {
        "mib": nbytes // MIB,
        "runs": runs,
        "cipher": negotiated,
        "cipher_direct": direct_cipher,
        "goal_ratio": GOAL,
    }
    print()
    print(f"Bulk transfer of {nbytes // MIB} MiB, median of {runs} runs (MB = 10^6 bytes)")
    print(f"cipher: {negotiated} (both paths)")
    for direction in DIRECTIONS:
        d, r = results[("direct", direction)], results[("relay", direction)]
        d_mbps, r_mbps = d.mbps(nbytes), r.mbps(nbytes)
        q = ratio(r_mbps, d_mbps)
        # Run i of both paths ran back to back: their ratio cancels slow drift.
        paired = median([ratio(ds, rs) for ds, rs in zip(d.seconds, r.seconds, strict=True)])
        cpu = {name: r.cpu_per_gib(name, nbytes) for name in ("relay", "agent", "console")}
        cpu_direct = {name: d.cpu_per_gib(name, nbytes) for name in ("sshd", "console")}
        cost = ratio(sum(cpu_direct.values()), sum(cpu.values()))
        label = (
            "console → agent (cat > /dev/null)"
            if direction == "to_agent"
            else "agent → console (head -c N /dev/zero)"
        )
        print(f"\n{direction}: {label}")
        print(f"  direct TCP   {d_mbps:8.1f} MB/s   runs {d.runs_mbps(nbytes)}")
        print(f"  via relay    {r_mbps:8.1f} MB/s   runs {r.runs_mbps(nbytes)}")
        verdict = "meets" if q >= GOAL else "BELOW"
        print(f"  ratio        {q:8.2f}        ({verdict} the ≥ {GOAL} goal)")
        print(f"  paired ratio {paired:8.2f}        (median of run-by-run ratios)")
        print(
            "  CPU s/GiB    via relay: "
            + ", ".join(f"{name} {value:.2f}" for name, value in cpu.items())
            + "; direct: "
            + ", ".join(f"{name} {value:.2f}" for name, value in cpu_direct.items())
        )
        print(f"  CPU ratio    {cost:8.2f}        (direct CPU-s/GiB ÷ relayed, all processes)")
        figures[f"{direction}_direct_mbps"] = round(d_mbps, 1)
        figures[f"{direction}_relay_mbps"] = round(r_mbps, 1)
        figures[f"{direction}_ratio"] = round(q, 3)
        figures[f"{direction}_paired_ratio"] = round(paired, 3)
        figures[f"{direction}_cpu_ratio"] = round(cost, 3)
        for name, value in cpu.items():
            figures[f"{direction}_relay_{name}_cpu_s_per_gib"] = round(value, 3)
        for name, value in cpu_direct.items():
            figures[f"{direction}_direct_{name}_cpu_s_per_gib"] = round(value, 3)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description="SSH bulk throughput: relay vs direct TCP")
    parser.add_argument("--mib", type=int, default=256, help="MiB per transfer (default 256)")
    parser.add_argument("--runs", type=int, default=3, help="runs per direction (default 3)")
    parser.add_argument(
        "--cipher",
        default=None,
        help="force this SSH cipher on both paths (default: what the console negotiates)",
    )
    args = parser.parse_args()
    if args.mib < 1 or args.runs < 1:
        parser.error("--mib and --runs must be at least 1")

    started = time.monotonic()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="qp-bench-tp-") as tmp:
        world = World(Path(tmp))
        try:
            print("starting relay + agent (harness.World) and the direct sshd…", flush=True)
            office = start_office(world)
            keys = throwaway_keys(Path(tmp) / "direct")
            sshd, port = start_sshd(world, keys)
            figures = asyncio.run(
                bench(office, sshd, port, keys, args.mib * MIB, args.runs, args.cipher)
            )
        finally:
            world.close()
    figures["loadavg_1m"] = round(load, 2)
    figures["wall_s"] = round(time.monotonic() - started, 1)
    print(f"\n(total {figures['wall_s']} s; 1-minute load average at start {load:.2f})")
    print(json_line(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
