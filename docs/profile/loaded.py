"""Fresh topics holding N simulated events and a trained churn model, as `churnstream bench`
loads them: the shared set-up of `profile_worker.py` and `metrics_cost.py`."""

import uuid
from pathlib import Path

from churnstream.streams.bench import (
    events,
    free_port,
    make_producer,
    publish_model,
    trained_model_message,
)
from churnstream.streams.producing import produce_events
from churnstream.streams.settings import Settings
from churnstream.streams.topics import create_topics


def loaded(out: Path, prefix: str, total: int, customers: int) -> tuple[Settings, int]:
    """A worker's settings on new topics named `prefix` and six random hex digits (8
    partitions; its data directory under `out`), after `total` events of `customers`
    simulated customers and a churn model trained on a separate history were put on them;
    and how many events were sent. Delete them with `delete_topics(settings,
    settings.topic_prefix)`."""
    ns = f"{prefix}{uuid.uuid4().hex[:6]}"
    s = Settings(
        topic_prefix=ns, app_id=ns, topic_partitions=8, data_dir=out / ns, web_port=free_port()
    )
    create_topics(s)
    p = make_producer(s)
    sent = produce_events(s, events(total, customers, seed=1), producer=p)
    p.close()
    publish_model(s, trained_model_message(s))
    return s, sent
