"""The latency phase as the probe scripts here run it (`latency_at.py`, `latency_tail.py`,
`first_events.py`, `busy_second.py`): a fresh worker on new topics, optionally with one of
the probe folders beside this file on its PYTHONPATH.

Import it from a script in this folder (run as a file, the folder is on `sys.path`).
"""

import json
import os
import shutil
import statistics
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from churnstream.streams.bench import free_port, measure_latency, trained_model_message
from churnstream.streams.settings import Settings
from churnstream.streams.topics import delete_topics


def percentiles(ms: list[float]) -> str:
    """p50, p99 and max of values in milliseconds, and their count; the values themselves when
    there are fewer than two (`statistics.quantiles` needs two; a short run may have one).

    >>> percentiles([1.0, 2.0, 3.0])
    'p50    2.0, p99    3.0, max    3.0 ms (3)'
    >>> percentiles([4.25])
    'too few for percentiles: [4.2] ms'
    """
    if len(ms) < 2:
        return f"too few for percentiles: {[round(x, 1) for x in ms]} ms"
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return f"p50 {cuts[49]:6.1f}, p99 {cuts[98]:6.1f}, max {max(ms):6.1f} ms ({len(ms)})"


@contextmanager
def fresh_phase(out: Path, probe: str = "", **probe_env: str) -> Iterator[tuple[Settings, bytes]]:
    """Settings for new topics (`lat<hex>`, 8 partitions), with the worker's data under
    `out` and a free web port, and the trained model message; the topics are deleted when
    the block ends. With `probe` (a folder beside this file), every process started inside
    the block (the worker) loads that folder's `sitecustomize.py`, with `probe_env` set."""
    ns = f"lat{uuid.uuid4().hex[:6]}"
    settings = Settings(
        topic_prefix=ns, app_id=ns, topic_partitions=8, data_dir=out / ns, web_port=free_port()
    )
    model = trained_model_message(settings)
    if probe:  # only after the model: the worker alone carries the probe
        os.environ["PYTHONPATH"] = str(Path(__file__).resolve().parent / probe)
        os.environ.update(probe_env)
    try:
        yield settings, model
    finally:
        delete_topics(settings, ns)


def batch_probed_alerts(out: Path, rate: float, seconds: float) -> list[tuple[float, float, float]]:
    """Run the latency phase at `rate` events/s for `seconds` with `batchprobe/` in the
    worker, writing to `out` (emptied first; the probe's files are `out/batches.txt*`);
    print its summary. Returns the alerts as (event sent, latency, alert's record
    timestamp) in seconds, by send time, also written to `out/samples.json`."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    samples: list[tuple[float, float, float]] = []
    with fresh_phase(out, "batchprobe", BATCHPROBE_OUT=str(out / "batches.txt")) as (s, model):
        summary = measure_latency(s, model, out, rate, seconds, samples=samples)
    print(json.dumps({k: summary[k] for k in ("events", "alerts", "p50_ms", "p99_ms", "max_ms")}))
    alerts = sorted((at - lat, lat, stamped) for at, lat, stamped in samples)
    (out / "samples.json").write_text(json.dumps(alerts))
    return alerts
