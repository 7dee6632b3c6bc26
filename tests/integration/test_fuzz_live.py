"""Fuzz runs on the real broker: bad messages mixed into good ones, a reduced run and the
full one (100,000 good events; under a minute here, so every CI run has it)."""

from __future__ import annotations

import random
from collections import Counter

import orjson
from kafka import KafkaProducer

from churnstream.schemas.records import DeadLetter
from churnstream.streams.malformed import malformed_messages
from churnstream.streams.simulation import simulate
from harness import http_json, read_topic, wait_for


def test_bad_input_is_dead_lettered_good_input_processed_once(settings, start_worker) -> None:  # type: ignore[no-untyped-def]
    fuzz(settings, start_worker, good_n=6000, corpus=300, blobs=200, duplicates=100)


def test_a_hundred_thousand_good_events_with_bad_ones_mixed_in(settings, start_worker) -> None:  # type: ignore[no-untyped-def]
    # A partition Faust leaves waiting for 3 s is read by the worker itself, and Faust then
    # delivers those messages again: the run must count each once all the same.
    fuzz(
        settings.model_copy(update={"partition_stall_seconds": 3}),
        start_worker,
        good_n=100_000,
        corpus=3000,
        blobs=2000,
        duplicates=1000,
        customers=600,
        timeout=1800,
        reads_itself=True,
    )


def fuzz(  # type: ignore[no-untyped-def]
    settings,
    start_worker,
    good_n: int,
    corpus: int,
    blobs: int,
    duplicates: int,
    customers: int = 60,
    timeout: float = 300,
    reads_itself: bool = False,
) -> None:
    rng = random.Random(17)
    worker = start_worker(settings)
    good = list(simulate(customers=customers, days=60, seed=17))[:good_n]
    assert len(good) == good_n
    duplicated = rng.sample(good, duplicates)  # sent twice: the same event id again
    bad = [(m.topic_type, m.key, m.value) for m in malformed_messages(corpus, seed=17)]
    types = sorted({e["type"] for e in good})
    for _ in range(blobs):  # random bytes, on a random topic, under a random key
        blob = rng.randbytes(rng.randint(0, 400))
        bad.append((rng.choice(types), rng.randbytes(rng.randint(0, 12)) or None, blob))
    outgoing = [(e["type"], e["customer_id"].encode(), orjson.dumps(e)) for e in good]
    outgoing += [(e["type"], e["customer_id"].encode(), orjson.dumps(e)) for e in duplicated]
    # Good events of one customer keep their order (as a producer keyed by customer would);
    # the bad ones land anywhere.
    for item in bad:
        outgoing.insert(rng.randrange(len(outgoing) + 1), item)
    producer = KafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, max_request_size=2_000_000
    )
    for etype, key, value in outgoing:
        producer.send(settings.topic(etype), key=key, value=value)
    producer.flush()
    producer.close()

    # Each message is handled once as applied, a copy of an event id or dead-lettered; a
    # message the worker gets again (Faust redelivering what the continuity check read
    # itself, say) is counted apart, as a redelivery.
    def copies_recognised() -> float:
        return worker.metric("churnstream_events_duplicate_total", {"cause": "event_id"})

    wait_for(
        lambda: (
            worker.metric("churnstream_events_processed_total")
            + copies_recognised()
            + worker.metric("churnstream_events_invalid_total")
            >= len(outgoing)
        ),
        timeout,
        "every message to be handled",
    )
    assert worker.proc is not None and worker.proc.poll() is None, "the worker never crashed"
    assert worker.metric("churnstream_events_processed_total") == good_n
    too_late = int(duplicates - copies_recognised())
    letters = [
        DeadLetter.model_validate_json(r.value)
        for r in read_topic(settings, settings.topic("dead-letter"), expect=len(bad) + too_late)
    ]
    # A copy sent again within the lateness bound is recognised; one sent later than that
    # is dead-lettered as too late. Either way it is not counted twice.
    late = [d for d in letters if d.error_code == "too_late"]
    assert copies_recognised() + len(late) == duplicates
    read_itself = worker.metric("churnstream_events_recovered_total")
    redelivered = worker.metric("churnstream_events_duplicate_total", {"cause": "redelivery"})
    assert redelivered <= read_itself  # no restart: only what it read itself came again
    assert read_itself > 0 or not reads_itself
    copies = {orjson.dumps(e) for e in duplicated}
    assert all(d.original_bytes() in copies for d in late)
    rest = sorted(d.original_bytes() for d in letters if d.error_code != "too_late")
    assert rest == sorted(v for _, _, v in bad)
    assert all(d.reason and d.error_code for d in letters)
    assert "processing_error" not in {d.error_code for d in letters}
    expected = Counter(e["customer_id"] for e in good)
    for cid, n in list(expected.items())[:20]:
        status, body = http_json(f"{worker.url}/customers/{cid}")
        assert status == 200 and sum(body["event_counts"].values()) == n
