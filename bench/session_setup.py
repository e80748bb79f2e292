"""Session setup from a fresh process: ``qp exec AGENT -- true`` vs plain ``ssh`` (§8).

Relayed: a ``qp-relay`` process and an enrolled ``qp-agent`` process (the
:class:`harness.World` harness); each run is a new ``qp exec bench-pc -- true``
process, timed from spawn to exit.

Baseline: OpenSSH's ``/usr/bin/ssh`` running ``true`` on :mod:`bench.sshd` (an
asyncssh server in its own process with the agent's process handler and server
options), with throwaway certificates both ways as ``qp ssh-config`` uses them
(``HostKeyAlias``, an ``@cert-authority`` known-hosts line) and strict host-key
checking on.

Also timed: ``python -c pass`` (the interpreter alone), a bare
``python -c "import console.cli"`` (interpreter + the imports
every ``qp`` command pays), the same plus ``console.remote`` (what ``qp exec`` imports
in total), and an in-process breakdown of the relayed setup by step.

Run: ``.venv/bin/python -m bench.session_setup [--runs 15]``
Ends with one JSON line of the figures (milliseconds).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import (
    AGENT_NAME,
    TECHNICIAN,
    Keys,
    Office,
    Stopwatch,
    json_line,
    median,
    ratio,
    relayed_connect,
    start_office,
    start_sshd,
    throwaway_keys,
)
from console.profile import Profile
from console.rpc import RelayClient
from harness import BIN, World

SSH = "/usr/bin/ssh"
GOAL = 2.0  # architecture.md §8: qp exec ≤ 2 × plain ssh
RUN_TIMEOUT = 30.0


def timed(argv: list[str], env: dict[str, str]) -> float:
    """Seconds from spawn to exit; the command must succeed."""
    start = time.perf_counter()
    proc = subprocess.run(
        argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=RUN_TIMEOUT
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.decode(errors='replace')}"
        )
    return elapsed


def ssh_argv(keys: Keys, port: int) -> list[str]:
    return [SSH, *keys.openssh_args(port), "-o", "BatchMode=yes", "127.0.0.1", "true"]


async def store_writes(world: World) -> int:
    """The relay's committed write transactions so far (``relay.status``, admin)."""
    async with RelayClient(Profile(world.url, world.admin_token)) as client:
        status = await client.call("relay.status")
    return int(status["store_write_transactions"])


async def breakdown(office: Office, runs: int) -> dict[str, float]:
    """Median seconds per step of the relayed setup, in this (warm) process."""
    profile = Profile(office.world.url, office.tech_token)
    samples: dict[str, list[float]] = {}
    for _ in range(runs):
        watch = Stopwatch()
        conn = await relayed_connect(profile, AGENT_NAME, mark=watch.mark)
        result = await conn.run("true", encoding=None)
        watch.mark("exec true")
        conn.close()
        await conn.wait_closed()
        watch.mark("close")
        if result.exit_status != 0:
            raise RuntimeError(f"true exited {result.exit_status}")
        for step, seconds in watch.steps.items():
            samples.setdefault(step, []).append(seconds)
    return {step: median(values) for step, values in samples.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description="session setup: qp exec vs plain ssh")
    parser.add_argument("--runs", type=int, default=15, help="runs per command (default 15)")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    runs: int = args.runs

    started = time.monotonic()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="qp-bench-setup-") as tmp:
        world = World(Path(tmp))
        try:
            print("starting relay + agent (harness.World) and the direct sshd…", flush=True)
            office = start_office(world)
            keys = throwaway_keys(Path(tmp) / "direct")
            _, port = start_sshd(world, keys)

            env = world.env(TECHNICIAN)
            commands: dict[str, list[str]] = {
                "ssh": ssh_argv(keys, port),
                "qp_exec": [str(BIN / "qp"), "exec", AGENT_NAME, "--", "true"],
                "python": [sys.executable, "-c", "pass"],
                "import_cli": [sys.executable, "-c", "import console.cli"],
                "import_exec": [sys.executable, "-c", "import console.cli, console.remote"],
            }
            for argv in commands.values():  # warm caches once, not counted
                timed(argv, env)
            times: dict[str, list[float]] = {name: [] for name in commands}
            writes_before = asyncio.run(store_writes(world))
            for i in range(runs):  # interleaved, so drift hits all alike
                for name, argv in commands.items():
                    times[name].append(timed(argv, env))
                print(
                    f"  run {i + 1:2}/{runs} "
                    + "  ".join(f"{n} {times[n][-1] * 1000:6.1f} ms" for n in commands),
                    flush=True,
                )
            writes = asyncio.run(store_writes(world)) - writes_before
            steps = asyncio.run(breakdown(office, min(runs, 10)))
        finally:
            world.close()

    ms = {name: median(values) * 1000 for name, values in times.items()}
    q = ratio(ms["qp_exec"], ms["ssh"])
    beyond = ms["qp_exec"] - ms["import_exec"]
    verdict = "meets" if q <= GOAL else "OVER"
    rows = [
        ("ssh 127.0.0.1 true (OpenSSH → asyncssh sshd)", f"{ms['ssh']:7.1f} ms"),
        (f"qp exec {AGENT_NAME} -- true (via relay)", f"{ms['qp_exec']:7.1f} ms"),
        ("ratio", f"{q:7.2f} x   ({verdict} the ≤ {GOAL:g}x goal)"),
        ('python -c "pass" (interpreter start)', f"{ms['python']:7.1f} ms"),
        ('python -c "import console.cli"', f"{ms['import_cli']:7.1f} ms"),
        ("… plus console.remote (all qp exec imports)", f"{ms['import_exec']:7.1f} ms"),
        ("qp exec beyond interpreter + imports", f"{beyond:7.1f} ms"),
        ("relay write transactions per qp exec", f"{writes / runs:7.1f}   (budget ≤ 5)"),
    ]
    print()
    print(f"Session setup from a fresh process, median of {runs} runs (load avg {load:.2f})")
    for label, value in rows:
        print(f"  {label:<46} {value}")
    print("In-process breakdown of the relayed setup (warm, medians):")
    for step, seconds in steps.items():
        print(f"  {step:<14} {seconds * 1000:7.1f} ms")

    figures: dict[str, object] = {
        "runs": runs,
        "ssh_ms": round(ms["ssh"], 1),
        "qp_exec_ms": round(ms["qp_exec"], 1),
        "ratio": round(q, 2),
        "goal_ratio": GOAL,
        "python_start_ms": round(ms["python"], 1),
        "import_console_cli_ms": round(ms["import_cli"], 1),
        "import_console_exec_ms": round(ms["import_exec"], 1),
        "qp_exec_beyond_imports_ms": round(beyond, 1),
        "relay_write_transactions_per_exec": round(writes / runs, 2),
        "inprocess_steps_ms": {step: round(s * 1000, 1) for step, s in steps.items()},
        "loadavg_1m": round(load, 2),
        "wall_s": round(time.monotonic() - started, 1),
    }
    print(f"\n(total {figures['wall_s']} s)")
    print(json_line(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
