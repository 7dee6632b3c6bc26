"""Valid events are counted per customer; invalid ones land in the dead-letter topic."""

from __future__ import annotations

import itertools
from collections import Counter

import orjson
from kafka import KafkaProducer

from churnstream.schemas.records import DeadLetter
from churnstream.streams.malformed import malformed_messages
from churnstream.streams.peer_store import partitioner
from churnstream.streams.producing import produce_events
from churnstream.streams.simulation import simulate
from harness import http_json, read_topic, wait_for


def test_thousand_valid_and_fifty_invalid(settings, start_worker) -> None:  # type: ignore[no-untyped-def]
    # One message a batch: the batch setting reaches the worker (each batch is measured).
    worker = start_worker(settings.model_copy(update={"batch_max": 1}))
    valid = list(itertools.islice(simulate(customers=30, days=30, seed=3), 1000))
    bad = malformed_messages(50, seed=1)
    producer = KafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, max_request_size=2_000_000
    )
    for i, event in enumerate(valid):
        if i % 20 == 0:  # interleave the bad with the good
            m = bad[i // 20]
            producer.send(settings.topic(m.topic_type), key=m.key, value=m.value)
        produce_events(settings, [event], producer=producer)
    # One login on another partition than Kafka's default partitioner gives its customer (a
    # producer that partitions another way): applied, and counted as misplaced.
    stray = {"event_id": "stray-1", "customer_id": "cus_stray", "type": "login"}
    stray["ts"] = valid[-1]["ts"]
    right = partitioner(settings.topic_partitions)("cus_stray")
    producer.send(
        settings.topic("login"),
        key=b"cus_stray",
        value=orjson.dumps(stray),
        partition=(right + 1) % settings.topic_partitions,
    )
    producer.flush()
    producer.close()

    expected: dict[str, Counter[str]] = {"cus_stray": Counter(login=1)}
    for e in valid:
        expected.setdefault(e["customer_id"], Counter())[e["type"]] += 1

    def all_counted() -> bool:
        for cid, counts in expected.items():
            status, body = http_json(f"{worker.url}/customers/{cid}")
            if status != 200 or body["event_counts"] != dict(counts):
                return False
        return True

    wait_for(all_counted, 120, "every valid event to be counted")
    assert http_json(f"{worker.url}/customers/nobody")[0] == 404

    records = read_topic(settings, settings.topic("dead-letter"), expect=50)
    letters = [DeadLetter.model_validate_json(r.value) for r in records]
    assert len(letters) == 50
    assert sorted(d.original_bytes() for d in letters) == sorted(m.value for m in bad)
    by_value = {m.value: m.expected_code for m in bad}
    for d in letters:
        assert d.error_code == by_value[d.original_bytes()]
        assert d.reason and d.topic.startswith(settings.topic_prefix)
    assert worker.metric("churnstream_events_invalid_total") == 50
    assert worker.metric("churnstream_events_processed_total") == 1001
    assert worker.metric("churnstream_events_misplaced_total", {"type": "login"}) == 1
    assert worker.metric("churnstream_events_misplaced_total") == 1  # the stray alone
    assert worker.metric("churnstream_batch_delay_seconds_count") == 1051
    assert worker.metric("churnstream_batch_delay_seconds_sum") > 0
    # The default event loop is uvloop, and the worker runs on it.
    assert worker.metric("churnstream_worker_info", {"event_loop": "uvloop"}) == 1
    # Its start-up objects are out of the garbage collector's sight (tens of thousands).
    assert worker.metric("churnstream_worker_gc_frozen_objects") > 50_000
    # Its process's own series, as every Prometheus client exports them.
    assert worker.metric("process_cpu_seconds_total") > 0
    assert worker.metric("process_resident_memory_bytes") > 50 * 2**20
    assert worker.metric("python_gc_collections_total") > 0
