"""Diagnostics snapshot cost: time of a full snapshot, and memory over many.

1. ``--runs`` full snapshots with the default options (CPU/counter sample 0.5 s,
   which dominates the time), every collector on: median, min, max wall time.
2. ``--leak-runs`` more snapshots with a short sample, the process RSS (psutil)
   measured before and after, and the thread count: growth should be noise.

Network checks stay on 127.0.0.1: the "relay" is a listener this script opens, the
only name resolved is ``localhost``, and the gateway probe is off.

Run: ``.venv/bin/python -m bench.diagnostics [--runs 15] [--leak-runs 200]``
Ends with one JSON line of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import threading
import time

import psutil  # type: ignore[import-untyped]

from agent.diagnostics.options import DiagnosticsOptions, TcpTarget
from agent.diagnostics.runner import take_snapshot
from bench.common import json_line, median
from shared.clock import SystemClock
from shared.diagnostics import SECTION_NAMES, Snapshot, encoded_size

KIB = 1024


def rss_kib() -> int:
    gc.collect()
    return int(psutil.Process().memory_info().rss) // KIB


def statuses(snapshot: Snapshot) -> dict[str, str]:
    return {name: getattr(snapshot, name).status for name in SECTION_NAMES}


async def timed_runs(options: DiagnosticsOptions, runs: int) -> tuple[list[float], Snapshot]:
    clock = SystemClock()
    times = []
    snapshot = None
    for _ in range(runs):
        start = time.perf_counter()
        snapshot = await take_snapshot(options, clock)
        times.append(time.perf_counter() - start)
    assert snapshot is not None
    return times, snapshot


async def _hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


async def main(runs: int, leak_runs: int, leak_sample: float) -> None:
    began = time.perf_counter()
    # The stand-in relay must accept: an unaccepted backlog fills after ~128 probes
    # and every later probe would wait out its timeout.
    relay = await asyncio.start_server(_hang_up, "127.0.0.1", 0)
    async with relay:
        port = relay.sockets[0].getsockname()[1]
        base = DiagnosticsOptions(
            resolve_names=("localhost",),
            relay=TcpTarget("127.0.0.1", port),
            probe_gateway=False,
        )
        times, last = await timed_runs(base, runs)
        print(f"full snapshot ({runs} runs, sample {base.sample:g} s):")
        print(f"  median {median(times):.3f} s, min {min(times):.3f} s, max {max(times):.3f} s")
        print(f"  encoded size {encoded_size(last)} bytes; sections {statuses(last)}")
        assert last.reachability.data is not None
        print(f"  relay probe: {last.reachability.data.probes[0].outcome}")

        quick = DiagnosticsOptions(
            resolve_names=base.resolve_names,
            relay=base.relay,
            probe_gateway=False,
            sample=leak_sample,
        )
        rss_before, threads_before = rss_kib(), threading.active_count()
        leak_times, final = await timed_runs(quick, leak_runs)
        rss_after, threads_after = rss_kib(), threading.active_count()
        assert final.reachability.data is not None
        outcome = final.reachability.data.probes[0].outcome
    print(f"{leak_runs} snapshots (sample {leak_sample:g} s, median {median(leak_times):.3f} s):")
    print(f"  RSS {rss_before} KiB -> {rss_after} KiB ({rss_after - rss_before:+d} KiB)")
    print(f"  threads {threads_before} -> {threads_after}; last relay probe: {outcome}")
    print(
        json_line(
            {
                "runs": runs,
                "sample_s": base.sample,
                "snapshot_median_s": round(median(times), 4),
                "snapshot_min_s": round(min(times), 4),
                "snapshot_max_s": round(max(times), 4),
                "encoded_bytes": encoded_size(last),
                "leak_runs": leak_runs,
                "leak_sample_s": leak_sample,
                "leak_snapshot_median_s": round(median(leak_times), 4),
                "rss_before_kib": rss_before,
                "rss_after_kib": rss_after,
                "rss_growth_kib": rss_after - rss_before,
                "threads_before": threads_before,
                "threads_after": threads_after,
                "elapsed_s": round(time.perf_counter() - began, 1),
            }
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--leak-runs", type=int, default=200)
    parser.add_argument("--leak-sample", type=float, default=0.05)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.leak_runs, args.leak_sample))
