"""Where the slowest alerts' time goes inside the worker: the latency phase with the probe
in `batchprobe/`, then, for each of the slowest 2 % of alerts, the `handle_batch` call that
published it, split into its awaits, and the produce requests the worker sent meanwhile.

Run from the repository root with the local broker up (`deploy/local/kafka up`):

    .venv/bin/python docs/profile/busy_second.py 2200 60      # events/s, seconds
    .venv/bin/python docs/profile/busy_second.py 2200 60 --cpu

Writes var/probe-busy/ (the worker's log, the probe's files, samples.json). With `--cpu` it
also samples the CPU of the broker's and the worker's threads and the machine's busy and
stolen CPU every 50 ms (`cpu_sampler.py`, into var/probe-busy.cpu.txt), and shows them
during each produce request of over 30 ms against the run's median.
"""

import collections
import statistics
import sys
from contextlib import nullcontext
from pathlib import Path

from cpu_sampler import Samples, sampling
from latency_probe import batch_probed_alerts, percentiles

out = Path("var/probe-busy").resolve()
cpu = out.with_suffix(".cpu.txt")
with sampling(cpu) if "--cpu" in sys.argv else nullcontext():
    alerts = batch_probed_alerts(out, float(sys.argv[1]), float(sys.argv[2]))
t0 = alerts[0][0]

calls = collections.defaultdict(list)  # kind: [(task, start, end, extra)]
produce = []  # (start, end, batches, records, oldest wait)
for line in (out / "batches.txt.awaits").read_text().splitlines():
    kind, task, start, end, *extra = line.split()
    if kind == "produce":
        produce.append((float(start), float(end), int(extra[0]), int(extra[1]), float(extra[2])))
    elif kind == "confirm":  # logged as start, own acks, end: kept as start, end, own acks
        calls[kind].append((task, float(start), float(extra[0]), float(end)))
    else:
        calls[kind].append((task, float(start), float(end), extra))
ordered = collections.defaultdict(list)  # type: starts of handle_in_order calls
for line in (out / "batches.txt").read_text().splitlines():
    kind, start, _, event_type, *_ = line.split()
    if kind == "o":
        ordered[event_type].append(float(start))


def ms(seconds: float) -> str:
    return f"{seconds * 1000:6.1f}"


def quantiles(seconds: list[float]) -> str:
    return percentiles([x * 1000 for x in seconds])


def within(kind: str, task: str, start: float, end: float) -> list[tuple]:
    return [c for c in calls[kind] if c[0] == task and start <= c[1] and c[2] <= end + 1e-4]


print("produce requests: duration", quantiles([e - b for b, e, *_ in produce]))
print("  oldest record batch's wait in the accumulator", quantiles([p[4] for p in produce]))
for kind in ("batch", "send_later", "flush", "publish"):
    print(f"{kind}: duration", quantiles([c[2] - c[1] for c in calls[kind]]))
print(
    "confirm: own acks",
    quantiles([c[3] - c[1] for c in calls["confirm"]]),
    "\n  then the earlier flushes",
    quantiles([c[2] - c[3] for c in calls["confirm"]]),
)

print(
    "slowest 2 %: s after the first send, latency; then the batch that published it: "
    "waited before handle_batch (of which after handle_in_order began), sync part, "
    "send_later, flush (lock and hand, own acks, earlier flushes), publish, after publish; "
    "produce requests during the batch (count, ms each)"
)
for sent, lat, stamped in sorted(alerts, key=lambda a: -a[1])[: max(1, len(alerts) // 50)]:
    # The stamp is the record's timestamp, in whole milliseconds.
    pubs = [c for c in calls["publish"] if c[1] - 0.001 <= stamped <= c[2] + 0.001]
    if not pubs:
        print(f"{sent - t0:6.2f} {ms(lat)}  (no publish call holds its stamp)")
        continue
    task, p_start, p_end, _ = pubs[0]
    batch = next(c for c in calls["batch"] if c[0] == task and c[1] <= p_start <= c[2])
    _, b_start, b_end, (event_type, n) = batch
    sl = within("send_later", task, b_start, b_end)
    fl = within("flush", task, b_start, b_end)
    conf = [c for c in calls["confirm"] if c[0] == task and fl and fl[0][1] <= c[1] <= fl[0][2]]
    # None from handle_in_order: a stalled partition's records (`read_stalled`)
    o_start = max((o for o in ordered[event_type] if sent <= o <= b_start), default=None)
    parts = [ms(b_start - sent), ms(b_start - o_start) if o_start else "     -"]
    parts.append(ms((sl[0][1] if sl else p_start) - b_start))
    parts.append(ms(sl[0][2] - sl[0][1]) if sl else "     -")
    if fl and conf:
        f, c = fl[0], conf[0]
        parts += [ms(c[1] - f[1]), ms(c[3] - c[1]), ms(f[2] - c[3])]
    else:
        parts += ["     -"] * 3
    parts += [ms(p_end - p_start), ms(sent + lat - p_end)]
    during = [e - b for b, e, *_ in produce if b < b_end and e > b_start]
    print(
        f"{sent - t0:6.2f} {ms(lat)} | {event_type}:{n} |",
        " ".join(parts),
        f"| {len(during)}: {' '.join(ms(d).strip() for d in during[:8])}",
    )

if "--cpu" in sys.argv:
    cpus = Samples(cpu)
    threads = sorted(w for w in cpus.windows if w.startswith("worker-") and w != "worker-main")
    broker_threads = sorted(w for w in cpus.windows if w.startswith("broker:"))
    whats = ["machine-busy", "machine-steal", "probe", "broker", "worker-main", *threads]
    medians = {w: cpus.median_cores(w, t0, alerts[-1][0]) for w in whats + broker_threads}
    print("CPU in cores, median of the 50 ms windows while events flowed:")
    print("  " + ", ".join(f"{w} {c:.2f}" for w, c in medians.items() if c > 0))
    print(
        "produce requests over 30 ms: s after the first send, ms, records; cores meanwhile "
        "(and the broker's three busiest thread names)"
    )
    slow = [p for p in produce if p[1] - p[0] > 0.03]
    for name, spans in (("all", produce), ("over 30 ms", slow)):
        typical = {
            w: statistics.median(cpus.cores(w, b, e) for b, e, *_ in spans) if spans else 0.0
            for w in ("machine-busy", "probe", "broker", "worker-main")
        }
        print(
            f"produce requests, {name} ({len(spans)}): median cores meanwhile",
            ", ".join(f"{w} {c:.2f}" for w, c in typical.items()),
        )
    for b, e, _, records, _ in slow:
        meanwhile = {w: cpus.cores(w, b, e) for w in whats}
        busy = ", ".join(f"{w} {c:.2f}" for w, c in meanwhile.items() if c > 0)
        top = sorted(((cpus.cores(w, b, e), w) for w in broker_threads), reverse=True)[:3]
        names = ", ".join(f"{w.removeprefix('broker:')} {c:.2f}" for c, w in top if c > 0)
        print(f"{b - t0:6.2f} {ms(e - b)} {records:4d} | {busy} | {names}")
