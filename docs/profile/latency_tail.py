"""Where the latency tail comes from: the latency phase (as `latency_at.py`) with probes,
then what was going on while the slowest 2 % of alerts were in flight.

Probes:
- in the worker, `tailprobe/sitecustomize.py`: its garbage collections, the main thread's
  stack every 5 ms, and a census of the objects the collector tracks after 40 s;
- each alert record's own timestamp (the worker's producer stamps it when the worker sends
  it), which splits a latency into before and after the worker sent the alert;
- the broker JVM's garbage-collection pauses (`jcmd <pid> VM.log`, if jcmd is on PATH).

Run from the repository root with the local broker up (`deploy/local/kafka up`):

    .venv/bin/python docs/profile/latency_tail.py 875 60      # events/s, seconds

Prints the latency summary and the analysis; writes var/profile/tail-samples.json, the
probe's var/profile/probe.txt and var/profile/broker-gc.log.
"""

import bisect
import collections
import json
import re
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from latency_probe import fresh_phase, percentiles

from churnstream.streams.bench import broker_pid, measure_latency

rate, seconds = float(sys.argv[1]), float(sys.argv[2])
out = Path("var/profile").resolve()
out.mkdir(parents=True, exist_ok=True)
probe, broker_log = out / "probe.txt", out / "broker-gc.log"
probe.unlink(missing_ok=True)
broker_log.unlink(missing_ok=True)
pid, jcmd = broker_pid(), shutil.which("jcmd")
broker_gc = [jcmd, str(pid), "VM.log", f"output={broker_log}"] if jcmd and pid else None
if broker_gc:
    subprocess.run([*broker_gc, "what=gc", "decorators=time"], check=True, capture_output=True)  # noqa: S603

samples: list[tuple[float, float, float]] = []
try:
    with fresh_phase(out, "tailprobe", TAILPROBE_OUT=str(probe)) as (s, model):
        summary = measure_latency(s, model, out, rate, seconds, samples=samples)
finally:
    if broker_gc:  # this file's logging off again
        subprocess.run([*broker_gc, "what=all=off"], check=False, capture_output=True)  # noqa: S603
print(json.dumps(summary), flush=True)
alerts = [(at - lat, lat, stamped) for at, lat, stamped in samples]  # (sent, latency, stamped)
(out / "tail-samples.json").write_text(json.dumps(alerts))

# --- what happened meanwhile ---------------------------------------------------------------
t0 = min(sent for sent, _, _ in alerts)
gcs, stacks = [], []
for line in probe.read_text().splitlines():
    kind, rest = line.split(" ", 1)
    if kind == "gc":
        at, generation, ms, _ = rest.split(" ")
        gcs.append((float(at), int(generation), float(ms)))
    elif kind == "s":
        at, late, *stack = rest.split(" ", 2)
        stacks.append((float(at), stack[0] if stack else ""))
    elif kind.startswith("census"):
        print(line)
pauses = []  # the broker's: (end, seconds)
if broker_log.exists():
    for line in broker_log.read_text().splitlines():
        if m := re.match(r"\[(.+?)\].*Pause.* ([\d.]+)ms$", line):
            end = datetime.strptime(m[1], "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
            pauses.append((end, float(m[2]) / 1000))
times = [t for t, _ in stacks]
idle = "worker.py:execute_from_commandline"  # the innermost frame while the loop waits


def meanwhile(sent, lat):
    i, j = bisect.bisect(times, sent), bisect.bisect(times, sent + lat)
    busy = [st for _, st in stacks[i:j] if not st.startswith(idle)]
    return {
        "busy": f"{len(busy)}/{j - i}",
        "worker_gc_ms": [ms for at, _, ms in gcs if sent <= at <= sent + lat],
        "broker_gc_ms": [
            round(d * 1000) for end, d in pauses if end - d <= sent + lat and end >= sent
        ],
        "top": collections.Counter(st.split(";")[0] for st in busy).most_common(2),
    }


steady = [g for g in gcs if g[1] == 2 and g[0] >= t0]
print("worker full (generation 2) collections while events flowed, ms:", [ms for *_, ms in steady])
run_pauses = [round(d * 1000, 1) for end, d in pauses if end >= t0]
print("broker GC pauses while events flowed, ms:", run_pauses)
before = [(stamp - sent) * 1000 for sent, _, stamp in alerts]
after = [(sent + lat - stamp) * 1000 for sent, lat, stamp in alerts]
for name, xs in (("before the worker sent the alert", before), ("after", after)):
    print(f"{name}:", percentiles(xs))
per_second = collections.Counter(int(sent - t0) for sent, _, _ in alerts)
print("alerts per second of sending, busiest:", per_second.most_common(5))
print("slowest 2 %: seconds after the first send, latency ms, before/after split, meanwhile")
for sent, lat, stamp in sorted(alerts, key=lambda a: -a[1])[: max(1, len(alerts) // 50)]:
    split = f"{(stamp - sent) * 1000:.0f}/{(sent + lat - stamp) * 1000:.0f}"
    print(f"{sent - t0:6.1f} {lat * 1000:6.1f} {split:>8} {meanwhile(sent, lat)}")
