"""Where a measured transfer spends CPU: seconds per process, from psutil.

The benchmarks compare CPU-s/GiB of the relayed and direct paths, so every process
on a path (relay, agent, console, sshd, and OpenSSH's ssh with its ``qp proxy``
child) is read the same way here.
"""

from __future__ import annotations

import threading

import psutil  # type: ignore[import-untyped]

#: How often the ssh client and its ProxyCommand are sampled for CPU time.
SAMPLE_S = 0.05


def cpu_seconds(proc: psutil.Process) -> float:
    """User + system CPU seconds ``proc`` has used so far."""
    times = proc.cpu_times()
    return float(times.user + times.system)


def cpu_now(procs: dict[str, psutil.Process]) -> dict[str, float]:
    """CPU seconds so far, by name: the ``before`` of :func:`cpu_since`."""
    return {name: cpu_seconds(p) for name, p in procs.items()}


def cpu_since(procs: dict[str, psutil.Process], before: dict[str, float]) -> dict[str, float]:
    """CPU seconds each process used since :func:`cpu_now` returned ``before``."""
    return {name: cpu_seconds(p) - before[name] for name, p in procs.items()}


class TreeCPU:
    """CPU seconds of a process and its descendants (ssh and its ProxyCommand).

    :meth:`mark` takes a snapshot when the stream starts; a thread samples every
    :data:`SAMPLE_S` after that, and :meth:`stop` returns each process's CPU since the
    mark — so a process that exits before the last sample loses at most that much."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self._last: dict[tuple[int, float], tuple[str, float]] = {}
        self._marked: dict[tuple[int, float], float] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            self.sample()

    def sample(self) -> None:
        """Read the CPU time of every process in the tree now."""
        try:
            root = psutil.Process(self._pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            return
        for proc in tree:
            try:
                with proc.oneshot():
                    key = (proc.pid, proc.create_time())
                    name = "ssh" if proc.pid == self._pid else "qp_proxy"
                    with self._lock:
                        self._last[key] = (name, cpu_seconds(proc))
            except psutil.Error:
                continue

    def mark(self) -> None:
        """Start counting from now."""
        self.sample()
        with self._lock:
            self._marked = {key: seconds for key, (_, seconds) in self._last.items()}

    def stop(self) -> dict[str, float]:
        """Stop sampling; CPU seconds since :meth:`mark`, by process name."""
        self._stop.set()
        self._thread.join()
        totals: dict[str, float] = {}
        for key, (name, seconds) in self._last.items():
            since = seconds - self._marked.get(key, 0.0)
            totals[name] = totals.get(name, 0.0) + since
        return totals


class Meter:
    """CPU of the long-lived processes and of ssh's process tree, from :meth:`start`
    (the stream's first byte) to :meth:`end`."""

    def __init__(self, procs: dict[str, psutil.Process], ssh_pid: int) -> None:
        self._procs = procs
        self._tree = TreeCPU(ssh_pid)
        self._before: dict[str, float] = {}
        self._cpu: dict[str, float] = {}

    def start(self) -> None:
        """The stream starts now."""
        self._before = cpu_now(self._procs)
        self._tree.mark()

    def end(self) -> None:
        """The stream ended now."""
        self._cpu = cpu_since(self._procs, self._before)
        self._tree.sample()

    def result(self) -> dict[str, float]:
        """The figures; also stops the sampling thread (call it exactly once)."""
        return {**self._cpu, **self._tree.stop()}
