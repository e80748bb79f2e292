"""File transfer throughput through the relay vs over direct TCP (architecture.md §8).

Relayed side: a real ``qp-relay`` process and an enrolled ``qp-agent`` process (the
:class:`harness.World` harness), the customer's ``sftp_root`` policy set to a
temp dir. Direct side: :mod:`bench.sshd` in its own process, serving SFTP with the
agent's :class:`agent.sftp.ConfinedSFTPServer` confined to another temp dir.

1. **SFTP** (what ``qp put`` / ``qp get`` do): one ``--mib`` MiB file uploaded and
   downloaded with ``sftp.put`` / ``sftp.get`` (``preserve=True``, asyncssh's default
   block size and request count, like :mod:`console.files`). Relayed: this process is the
   console and opens the connection with :func:`console.ssh_session.ssh_session` (kind
   ``files``). Direct: the same asyncssh SFTP client over plain TCP with the console's
   connect options and the cipher the relayed path negotiated. Only the put/get call is
   timed, on an SFTP client that is already open.
2. **OpenSSH through ``qp proxy``**: ``/usr/bin/ssh HOST 'cat > /dev/null' < FILE`` and
   ``/usr/bin/ssh HOST 'head -c N /dev/zero'`` (read to EOF by this script), not scp: these
   touch no disk at the far end and the local file is in the page cache, so they measure
   the transport. Relayed: ``ssh -F FILE`` where FILE is the stdout of ``qp ssh-config``
   (strict host-key checking on, the host CA in the ``known_hosts`` it writes). Direct:
   the same client to :mod:`bench.sshd` on its port with throwaway certificates both ways
   and ``StrictHostKeyChecking=yes``. Both pin ``-c aes128-gcm@openssh.com``
   (``--ssh-cipher``; ``default`` lets OpenSSH negotiate), and the cipher actually used
   is read from ``ssh -v``. Timed twice per run: *stream* — the transfer alone (remote
   ``date`` stamps around ``cat``; first byte → EOF for ``head``), the headline figure —
   and *wall* — spawn to exit, including session setup.

``--runs`` runs per path and direction (medians reported), interleaved direct/relay,
after one small warm-up transfer each that is not counted. Ratio = relay / direct.

Run: ``.venv/bin/python -m bench.files_throughput [--mib 256] [--runs 3]
[--sftp-cipher ALG] [--ssh-cipher ALG|default]``. Ends with one JSON line of the
figures. MB here is 10^6 bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import filecmp
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import asyncssh
import psutil  # type: ignore[import-untyped]

from bench.common import (
    CUSTOMER,
    TECHNICIAN,
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
from bench.cpu_accounting import Meter, cpu_now, cpu_since
from bench.throughput import Series, cipher_of, direct
from console.profile import Profile
from console.ssh_session import ssh_session
from harness import Proc, World

MIB = 1024 * 1024
GOAL = 0.6  # architecture.md §8: relayed ≥ 0.6 × direct (stated for bulk SSH)
SSH = "/usr/bin/ssh"
DEFAULT_SSH_CIPHER = "aes128-gcm@openssh.com"
#: Give up on a transfer slower than this floor (plus a fixed allowance).
SLOWEST_MBPS = 5.0
WARMUP_BYTES = 16 * MIB
READ_SIZE = 1024 * 1024
DIRECTIONS = ("upload", "download")
PATHS = ("direct", "relay")


@dataclass(frozen=True)
class Bed:
    """Everything both parts share: processes, keys, roots, files."""

    office: Office
    sshd: Proc
    port: int
    keys: Keys
    work: Path  # local files of the "technician"
    roots: dict[str, Path]  # path name -> SFTP root on the far side
    source: Path  # the file to upload, --mib MiB
    warmup: Path  # a small file for the warm-up transfers
    ssh_config: Path  # stdout of `qp ssh-config`
    env: dict[str, str]  # the technician's environment (QP_HOME)


def write_file(path: Path, nbytes: int) -> None:
    """``nbytes`` of a repeated random MiB (incompressible enough: compression is off)."""
    block = os.urandom(MIB)
    with path.open("wb") as f:
        left = nbytes
        while left > 0:
            f.write(block[: min(left, MIB)])
            left -= MIB


def timeout_for(nbytes: int) -> float:
    return 30 + nbytes / (SLOWEST_MBPS * 1e6)


def procs_for(bed: Bed, path: str, me: str) -> dict[str, psutil.Process]:
    """The long-lived processes whose CPU a transfer on ``path`` costs; this process
    is called ``me``."""
    this = psutil.Process()
    if path == "direct":
        return {"sshd": psutil.Process(bed.sshd.popen.pid), me: this}
    return {
        "relay": psutil.Process(bed.office.relay.popen.pid),
        "agent": psutil.Process(bed.office.agent.popen.pid),
        me: this,
    }


def mbps(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / 1e6


# -- part 1: SFTP -----------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def relayed_sftp(
    office: Office, cipher: str | None
) -> AsyncIterator[tuple[asyncssh.SFTPClient, str]]:
    """The console's own SFTP path: ``ssh_session(…, "files")`` + ``start_sftp_client``
    (with ``cipher``: the same steps and options through bench.common.relayed_connect)."""
    profile = Profile(office.world.url, office.tech_token)
    if cipher is None:
        async with ssh_session(profile, office.agent_id, "files") as (conn, _):
            async with conn.start_sftp_client() as sftp:
                yield sftp, cipher_of(conn)
        return
    conn = await relayed_connect(profile, office.agent_id, kind="files", encryption_algs=[cipher])
    try:
        async with conn.start_sftp_client() as sftp:
            yield sftp, cipher_of(conn)
    finally:
        conn.close()
        with contextlib.suppress(Exception):
            await conn.wait_closed()


@contextlib.asynccontextmanager
async def direct_sftp(bed: Bed, cipher: str) -> AsyncIterator[tuple[asyncssh.SFTPClient, str]]:
    async with direct(bed.port, bed.keys, cipher) as conn:
        async with conn.start_sftp_client() as sftp:
            yield sftp, cipher_of(conn)


async def sftp_transfer(
    sftp: asyncssh.SFTPClient, bed: Bed, path: str, direction: str, source: Path, check: bool
) -> float:
    """Seconds for one put (local → root/up.bin) or get (root/down.bin → local)."""
    root = bed.roots[path]
    nbytes = source.stat().st_size
    if direction == "upload":
        remote, local = root / "up.bin", source
        target = remote
    else:
        remote, local = root / f"down-{source.name}", bed.work / "down.bin"
        target = local
        if not remote.exists():  # same inode as the source: shares its page cache
            os.link(source, remote)
    target.unlink(missing_ok=True)
    start = time.perf_counter()
    if direction == "upload":
        run = sftp.put(str(local), str(remote), preserve=True)
    else:
        run = sftp.get(str(remote), str(local), preserve=True)
    await asyncio.wait_for(run, timeout_for(nbytes))
    seconds = time.perf_counter() - start
    size = target.stat().st_size
    if size != nbytes:
        raise RuntimeError(f"{direction} via {path}: {size} of {nbytes} bytes")
    if check and not filecmp.cmp(source, target, shallow=False):
        raise RuntimeError(f"{direction} via {path}: the copy differs from the source")
    target.unlink()
    return seconds


async def bench_sftp(
    bed: Bed, nbytes: int, runs: int, cipher: str | None
) -> tuple[dict[tuple[str, str], Series], dict[str, str]]:
    results = {(p, d): Series() for p in PATHS for d in DIRECTIONS}
    async with relayed_sftp(bed.office, cipher) as (rsftp, rcipher):
        print(f"  cipher through the relay: {rcipher}", flush=True)
        async with direct_sftp(bed, cipher or rcipher.split("/")[0]) as (dsftp, dcipher):
            print(f"  cipher over direct TCP:   {dcipher}", flush=True)
            clients = {"direct": dsftp, "relay": rsftp}
            for direction in DIRECTIONS:  # warm up both paths, not counted
                for path in PATHS:
                    await sftp_transfer(clients[path], bed, path, direction, bed.warmup, False)
            for i in range(runs):
                for direction in DIRECTIONS:
                    for path in PATHS:
                        procs = procs_for(bed, path, "console")
                        before = cpu_now(procs)
                        secs = await sftp_transfer(
                            clients[path], bed, path, direction, bed.source, i == 0
                        )
                        results[(path, direction)].add(secs, cpu_since(procs, before))
                        print(
                            f"  run {i + 1}/{runs} sftp {direction:<8} {path:<6} "
                            f"{mbps(nbytes, secs):8.1f} MB/s",
                            flush=True,
                        )
    return results, {"relay": rcipher, "direct": dcipher}


# -- part 2: OpenSSH --------------------------------------------------------------------------
def ssh_argv(bed: Bed, path: str, cipher: str | None) -> list[str]:
    """OpenSSH to the agent through ``qp proxy`` (relay) or to bench.sshd (direct)."""
    common = ["-v", "-o", "BatchMode=yes", *(["-c", cipher] if cipher else [])]
    if path == "relay":
        return [SSH, "-F", str(bed.ssh_config), *common, bed.office.agent_id]
    return [SSH, *bed.keys.openssh_args(bed.port), *common, "127.0.0.1"]


CIPHER_LINE = re.compile(r"kex: (server->client|client->server) cipher: (\S+)")


def ciphers_in(debug: str) -> str:
    found = {m.group(2) for m in CIPHER_LINE.finditer(debug)}
    return "/".join(sorted(found)) or "?"


@dataclass
class SshRun:
    stream_s: float  # the transfer alone, scaled to the full size
    wall_s: float  # spawn to exit, session setup included
    cpu: dict[str, float]  # per process, during the stream only
    cipher: str


@contextlib.contextmanager
def watchdog(proc: subprocess.Popen[bytes], seconds: float) -> Iterator[None]:
    timer = threading.Timer(seconds, proc.kill)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def ssh_upload(
    argv: list[str], bed: Bed, procs: dict[str, psutil.Process], nbytes: int, debug: BinaryIO
) -> tuple[float, float, dict[str, float]]:
    """``ssh HOST 'cat > /dev/null' < file``; the far side's ``date`` (our clock: all on
    127.0.0.1) brackets the cat, and each stamp's arrival brackets the CPU figures."""
    command = "date +%s.%N; cat > /dev/null; date +%s.%N"
    with bed.source.open("rb") as stdin:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [*argv, command], stdin=stdin, stdout=subprocess.PIPE, stderr=debug, env=bed.env
        )
    assert proc.stdout is not None
    meter = Meter(procs, proc.pid)
    try:
        with watchdog(proc, timeout_for(nbytes)):
            first = proc.stdout.readline()
            meter.start()
            last = proc.stdout.readline()
            meter.end()
            rest = proc.stdout.read()
            proc.wait()
    finally:
        cpu = meter.result()
    wall = time.perf_counter() - start
    try:
        stream = float(last) - float(first)
    except ValueError:
        stream = -1.0
    if proc.returncode != 0 or rest or stream <= 0:
        raise RuntimeError(f"exit {proc.returncode}, stdout {first!r} {last!r} {rest[:200]!r}")
    return stream, wall, cpu


def ssh_download(
    argv: list[str], bed: Bed, procs: dict[str, psutil.Process], nbytes: int, debug: BinaryIO
) -> tuple[float, float, dict[str, float]]:
    """``ssh HOST 'head -c N /dev/zero'`` read to EOF here, timed first byte → EOF."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [*argv, f"head -c {nbytes} /dev/zero"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=debug,
        env=bed.env,
        bufsize=0,
    )
    assert proc.stdout is not None
    meter = Meter(procs, proc.pid)
    buffer = bytearray(READ_SIZE)
    got = first = 0
    first_at = end = 0.0
    try:
        with watchdog(proc, timeout_for(nbytes)):
            while n := proc.stdout.readinto(buffer):  # type: ignore[attr-defined]
                if not got:
                    first, first_at = n, time.perf_counter()
                    meter.start()
                got += n
            end = time.perf_counter()
            meter.end()
            proc.wait()
    finally:
        cpu = meter.result()
    wall = time.perf_counter() - start
    if proc.returncode != 0 or got != nbytes:
        raise RuntimeError(f"exit {proc.returncode}, {got} of {nbytes} bytes")
    # First byte → EOF, scaled to the whole size.
    return (end - first_at) * nbytes / max(nbytes - first, 1), wall, cpu


def ssh_transfer(bed: Bed, path: str, direction: str, nbytes: int, cipher: str | None) -> SshRun:
    procs = procs_for(bed, path, "bench")
    run = ssh_upload if direction == "upload" else ssh_download
    with tempfile.TemporaryFile(dir=bed.work) as debug:  # ssh -v, read for the cipher
        try:
            stream, wall, cpu = run(ssh_argv(bed, path, cipher), bed, procs, nbytes, debug)
        except RuntimeError as exc:
            debug.seek(0)
            tail = debug.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"ssh {direction} via {path}: {exc}\n{tail}") from exc
        debug.seek(0)
        used = ciphers_in(debug.read().decode(errors="replace"))
    return SshRun(stream, wall, cpu, used)


def bench_openssh(
    bed: Bed, nbytes: int, runs: int, cipher: str | None
) -> tuple[dict[tuple[str, str], Series], dict[tuple[str, str], list[float]], dict[str, str]]:
    stream = {(p, d): Series() for p in PATHS for d in DIRECTIONS}
    wall: dict[tuple[str, str], list[float]] = {(p, d): [] for p in PATHS for d in DIRECTIONS}
    used: dict[str, set[str]] = {p: set() for p in PATHS}
    for direction in DIRECTIONS:  # warm up both paths, not counted
        for path in PATHS:
            used[path].add(ssh_transfer(bed, path, direction, WARMUP_BYTES, cipher).cipher)
    for i in range(runs):
        for direction in DIRECTIONS:
            for path in PATHS:
                run = ssh_transfer(bed, path, direction, nbytes, cipher)
                stream[(path, direction)].add(run.stream_s, run.cpu)
                wall[(path, direction)].append(run.wall_s)
                used[path].add(run.cipher)
                print(
                    f"  run {i + 1}/{runs} ssh  {direction:<8} {path:<6} "
                    f"{mbps(nbytes, run.stream_s):8.1f} MB/s stream, "
                    f"{mbps(nbytes, run.wall_s):8.1f} MB/s wall   ({run.cipher})",
                    flush=True,
                )
    return stream, wall, {p: ",".join(sorted(c)) for p, c in used.items()}


# -- report -----------------------------------------------------------------------------------
def summarize(
    part: str,
    results: dict[tuple[str, str], Series],
    nbytes: int,
    figures: dict[str, object],
    labels: dict[str, str],
) -> None:
    for direction in DIRECTIONS:
        d, r = results[("direct", direction)], results[("relay", direction)]
        d_mbps, r_mbps = d.mbps(nbytes), r.mbps(nbytes)
        q = ratio(r_mbps, d_mbps)
        paired = median([ratio(ds, rs) for ds, rs in zip(d.seconds, r.seconds, strict=True)])
        cpu_r = {name: r.cpu_per_gib(name, nbytes) for name in sorted(r.cpu)}
        cpu_d = {name: d.cpu_per_gib(name, nbytes) for name in sorted(d.cpu)}
        verdict = "meets" if q >= GOAL else "BELOW"
        print(f"\n{part} {direction}: {labels[direction]}")
        print(f"  direct TCP   {d_mbps:8.1f} MB/s   runs {d.runs_mbps(nbytes)}")
        print(f"  via relay    {r_mbps:8.1f} MB/s   runs {r.runs_mbps(nbytes)}")
        print(f"  ratio        {q:8.2f}        ({verdict} the ≥ {GOAL} goal for bulk SSH)")
        print(f"  paired ratio {paired:8.2f}        (median of run-by-run ratios)")
        print(
            "  CPU s/GiB    via relay: "
            + ", ".join(f"{n} {v:.2f}" for n, v in cpu_r.items())
            + "; direct: "
            + ", ".join(f"{n} {v:.2f}" for n, v in cpu_d.items())
        )
        key = f"{part}_{direction}"
        figures[f"{key}_direct_mbps"] = round(d_mbps, 1)
        figures[f"{key}_relay_mbps"] = round(r_mbps, 1)
        figures[f"{key}_ratio"] = round(q, 3)
        figures[f"{key}_paired_ratio"] = round(paired, 3)
        for name, value in cpu_r.items():
            figures[f"{key}_relay_{name}_cpu_s_per_gib"] = round(value, 2)
        for name, value in cpu_d.items():
            figures[f"{key}_direct_{name}_cpu_s_per_gib"] = round(value, 2)


def set_up(world: World, tmp: Path, nbytes: int) -> Bed:
    office = start_office(world)
    roots = {"relay": tmp / "agent-root", "direct": tmp / "direct-root"}
    for root in roots.values():
        root.mkdir()
    # Confine the agent's SFTP like the direct server's (the default is all of "/").
    world.qp("customer", "policy", CUSTOMER, "--sftp-root", str(roots["relay"]))
    keys = throwaway_keys(tmp / "direct")
    sshd, port = start_sshd(world, keys, sftp_root=roots["direct"])
    ssh_config = tmp / "ssh_config"
    ssh_config.write_bytes(world.qp("ssh-config", home=TECHNICIAN).stdout)
    work = tmp / "technician"
    work.mkdir()
    source, warmup = work / "source.bin", work / "warmup.bin"
    write_file(source, nbytes)
    write_file(warmup, WARMUP_BYTES)
    env = world.env(TECHNICIAN)
    return Bed(office, sshd, port, keys, work, roots, source, warmup, ssh_config, env)


def main() -> int:
    parser = argparse.ArgumentParser(description="file transfer throughput: relay vs direct")
    parser.add_argument("--mib", type=int, default=256, help="MiB per transfer (default 256)")
    parser.add_argument("--runs", type=int, default=3, help="runs per direction (default 3)")
    parser.add_argument(
        "--sftp-cipher",
        default=None,
        help="force this cipher on both SFTP connections (default: what the console "
        "negotiates through the relay, then the same over direct TCP)",
    )
    parser.add_argument(
        "--ssh-cipher",
        default=DEFAULT_SSH_CIPHER,
        help=f"OpenSSH -c on both paths (default {DEFAULT_SSH_CIPHER}; 'default': negotiate)",
    )
    args = parser.parse_args()
    if args.mib < 1 or args.runs < 1:
        parser.error("--mib and --runs must be at least 1")
    nbytes: int = args.mib * MIB
    runs: int = args.runs
    ssh_cipher: str | None = None if args.ssh_cipher == "default" else args.ssh_cipher

    started = time.monotonic()
    load = os.getloadavg()[0]
    figures: dict[str, object] = {"mib": args.mib, "runs": runs, "goal_ratio": GOAL}
    with tempfile.TemporaryDirectory(prefix="qp-bench-files-") as tmp:
        world = World(Path(tmp))
        try:
            print("starting relay + agent (harness.World) and the direct sshd…", flush=True)
            bed = set_up(world, Path(tmp), nbytes)
            print(f"\n1. SFTP put/get of {args.mib} MiB (asyncssh client, as qp put/get)")
            sftp, sftp_ciphers = asyncio.run(bench_sftp(bed, nbytes, runs, args.sftp_cipher))
            how = f"-c {ssh_cipher}" if ssh_cipher else "cipher negotiated"
            print(f"\n2. OpenSSH {SSH}: 'cat > /dev/null' < file and 'head -c N /dev/zero' ({how})")
            ssh_stream, ssh_wall, ssh_ciphers = bench_openssh(bed, nbytes, runs, ssh_cipher)
        finally:
            world.close()

    print(f"\nResults: {args.mib} MiB per transfer, median of {runs} runs (MB = 10^6 bytes)")
    print(f"SFTP cipher: relay {sftp_ciphers['relay']}, direct {sftp_ciphers['direct']}")
    summarize(
        "sftp",
        sftp,
        nbytes,
        figures,
        {"upload": "sftp.put, technician → agent", "download": "sftp.get, agent → technician"},
    )
    print(
        f"\nOpenSSH cipher (from ssh -v): relay {ssh_ciphers['relay']}, "
        f"direct {ssh_ciphers['direct']} (-c {ssh_cipher or 'not given'})"
    )
    summarize(
        "ssh",
        ssh_stream,
        nbytes,
        figures,
        {
            "upload": "ssh HOST 'cat > /dev/null' < file, stream time (remote date stamps)",
            "download": "ssh HOST 'head -c N /dev/zero', stream time (first byte → EOF)",
        },
    )
    print("\nOpenSSH wall time (spawn → exit, session setup included):")
    for direction in DIRECTIONS:
        d_wall = mbps(nbytes, median(ssh_wall[("direct", direction)]))
        r_wall = mbps(nbytes, median(ssh_wall[("relay", direction)]))
        print(
            f"  {direction:<8} direct {d_wall:8.1f} MB/s   via relay {r_wall:8.1f} MB/s   "
            f"ratio {ratio(r_wall, d_wall):.2f}"
        )
        figures[f"ssh_{direction}_wall_direct_mbps"] = round(d_wall, 1)
        figures[f"ssh_{direction}_wall_relay_mbps"] = round(r_wall, 1)
        figures[f"ssh_{direction}_wall_ratio"] = round(ratio(r_wall, d_wall), 3)
    figures["sftp_cipher_relay"] = sftp_ciphers["relay"]
    figures["sftp_cipher_direct"] = sftp_ciphers["direct"]
    figures["ssh_method"] = "ssh cat>/dev/null <file; ssh head -c N /dev/zero"
    figures["ssh_cipher_requested"] = ssh_cipher or "negotiated"
    figures["ssh_cipher_relay"] = ssh_ciphers["relay"]
    figures["ssh_cipher_direct"] = ssh_ciphers["direct"]
    figures["loadavg_1m"] = round(load, 2)
    figures["wall_s"] = round(time.monotonic() - started, 1)
    print(f"\n(total {figures['wall_s']} s; 1-minute load average at start {load:.2f})")
    print(json_line(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
