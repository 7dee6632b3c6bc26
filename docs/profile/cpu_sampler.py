"""CPU per thread of the broker and the worker, and the machine's busy and stolen CPU, sampled
every 50 ms from /proc while a probe runs (`busy_second.py --cpu`).

Each line of the output file is `<unix time> <what> <cumulative ticks>`, where `<what>` is
`machine-busy`, `machine-steal`, `broker` (all its threads), `broker:<name>` (its threads
of one name, numbers dropped: `data-plane-kafk` for the request handlers, `C2_CompilerThre`
for the JIT compiler; Linux keeps 15 characters of a name), `probe` (the process sampling,
which also produces the events and reads the alerts), `worker-main` (the thread that runs
the event loop), or `worker-<tid>-<name>` (its other threads, such as the consumer thread
Faust's aiokafka consumer runs in). A tick is 1/`SC_CLK_TCK` s (10 ms here), so a
50 ms window holds 0-5 ticks of one thread: `Samples.cores` sums the windows that overlap a
span.
"""

from __future__ import annotations

import collections
import itertools
import os
import re
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from churnstream.streams.bench import TICK, broker_pid, machine_ticks, parse_stat


def _thread_ticks(pid: int) -> dict[int, tuple[str, int]]:
    """{tid: (name, utime + stime ticks)} of the process `pid`'s threads."""
    out: dict[int, tuple[str, int]] = {}
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:  # the process ended (the worker, once the phase stops it)
        return out
    for task in tasks:
        try:
            stat = parse_stat((task / "stat").read_text())
        except OSError:  # the thread ended
            continue
        out[int(task.name)] = (stat.name.replace(" ", "_"), stat.ticks)
    return out


def _workers() -> list[int]:
    """This process's children that run a churnstream worker."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = parse_stat((entry / "stat").read_text())
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if stat.ppid == os.getpid() and b"churnstream.streams.cli\0worker" in cmdline:
            pids.append(int(entry.name))
    return pids


@contextmanager
def sampling(path: Path, interval: float = 0.05) -> Iterator[None]:
    """Sample into `path` in a thread until the block ends."""
    broker = broker_pid()
    if broker is None:
        msg = "no local broker (deploy/local/kafka up)"
        raise SystemExit(msg)
    stop = threading.Event()

    def run() -> None:
        workers: list[int] = []  # found once: scanning /proc every 50 ms costs the probe CPU
        with path.open("w") as out:
            while not stop.wait(interval):
                now = time.time()
                busy, steal = machine_ticks()
                lines = [f"{now:.4f} machine-busy {busy}", f"{now:.4f} machine-steal {steal}"]
                groups: dict[str, int] = collections.Counter()
                for name, ticks in _thread_ticks(broker).values():
                    groups[re.sub(r"[-#]?\d+$", "", name)] += ticks  # handler-0, -1... as one
                lines.append(f"{now:.4f} broker {sum(groups.values())}")
                lines += [f"{now:.4f} broker:{name} {ticks}" for name, ticks in groups.items()]
                probe = sum(t for _, t in _thread_ticks(os.getpid()).values())
                lines.append(f"{now:.4f} probe {probe}")
                workers = workers or _workers()
                for pid in workers:
                    for tid, (name, ticks) in _thread_ticks(pid).items():
                        what = "worker-main" if tid == pid else f"worker-{tid}-{name}"
                        lines.append(f"{now:.4f} {what} {ticks}")
                out.write("\n".join(lines) + "\n")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


class Samples:
    """The windows of a sampling file: for each `<what>`, (start, end, CPU seconds) between
    consecutive samples."""

    def __init__(self, path: Path) -> None:
        series: dict[str, list[tuple[float, int]]] = collections.defaultdict(list)
        for line in path.read_text().splitlines():
            at, what, ticks = line.split()
            series[what].append((float(at), int(ticks)))
        self.windows = {
            what: [(a, b, (tb - ta) * TICK) for (a, ta), (b, tb) in itertools.pairwise(points)]
            for what, points in series.items()
        }

    def cores(self, what: str, start: float, end: float) -> float:
        """The CPU of `what` in cores over the windows that overlap start..end."""
        inside = [w for w in self.windows.get(what, []) if w[1] > start and w[0] < end]
        seconds = sum(b - a for a, b, _ in inside)
        return sum(used for *_, used in inside) / seconds if seconds else 0.0

    def median_cores(self, what: str, start: float, end: float) -> float:
        """The median over the windows within start..end of `what`'s CPU in cores."""
        inside = [u / (b - a) for a, b, u in self.windows.get(what, []) if start <= a and b <= end]
        return statistics.median(inside) if inside else 0.0
