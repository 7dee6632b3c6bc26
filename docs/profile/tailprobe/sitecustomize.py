"""A probe for the worker's latency tail, loaded by every Python started with this folder
on PYTHONPATH and TAILPROBE_OUT set to an output file (see docs/profile/latency_tail.py).

It writes two kinds of line:
- `gc <unix time> <generation> <ms> <collected>`: a garbage collection of 2 ms or longer;
- `s <unix time> <late ms> <stack>`: every 5 ms, the main thread's innermost frames
  (`-` when it waits in the event loop), and how late the sample came (a thread holding the
  GIL delays it).
"""

import gc
import os
import sys
import threading
import time

_OUT = os.environ.get("TAILPROBE_OUT")
PERIOD = 0.005


def _stack(frame, depth=6):
    names = []
    while frame is not None and len(names) < depth:
        code = frame.f_code
        names.append(f"{os.path.basename(code.co_filename)}:{code.co_name}")
        frame = frame.f_back
    return ";".join(names)


def _start(path: str) -> None:
    out = open(path, "a", buffering=1 << 16)  # noqa: SIM115
    started = [0.0]

    def on_gc(phase, info):
        if phase == "start":
            started[0] = time.perf_counter()
            return
        ms = (time.perf_counter() - started[0]) * 1000
        if ms >= 2:
            out.write(f"gc {time.time():.4f} {info['generation']} {ms:.1f} {info['collected']}\n")

    gc.callbacks.append(on_gc)
    main = threading.main_thread().ident

    def sample():
        while True:
            due = time.perf_counter() + PERIOD
            time.sleep(PERIOD)
            late = (time.perf_counter() - due) * 1000
            frame = sys._current_frames().get(main)
            out.write(f"s {time.time():.4f} {late:.1f} {_stack(frame)}\n")

    threading.Thread(target=sample, daemon=True, name="tailprobe").start()

    def census():
        time.sleep(float(os.environ.get("TAILPROBE_CENSUS_AFTER", "40")))
        objects = gc.get_objects()
        kinds = {}
        for o in objects:
            kinds[type(o).__qualname__] = kinds.get(type(o).__qualname__, 0) + 1
        top = sorted(kinds.items(), key=lambda kv: -kv[1])[:25]
        out.write(
            f"census {time.time():.4f} {len(objects)} {gc.get_count()} {gc.get_threshold()}\n"
        )
        out.write("".join(f"census-type {n} {k}\n" for k, n in top))
        out.write(f"census-frozen {gc.get_freeze_count()}\n")

    threading.Thread(target=census, daemon=True, name="tailcensus").start()


if _OUT:
    _start(_OUT)
