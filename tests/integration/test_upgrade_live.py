"""An upgrade on the real broker: a worker of today's version starts on a changelog that an
earlier version wrote (the records of `tests/unit/records/`), rebuilds its store from it,
counts those customers and goes on scoring them as it would have."""

from __future__ import annotations

import orjson

from churnstream.models.scoring import ScoringContext, step
from churnstream.schemas.events import parse_event_dict
from churnstream.streams.app import STATE_TABLE
from churnstream.streams.producing import make_producer, produce_events
from churnstream.streams.stored import decode_record
from compare import close, live_records
from harness import read_topic, wait_for
from stored_fixtures import FIXTURES, login_after

OLDEST = FIXTURES[0]


def test_a_worker_rebuilds_and_scores_records_an_earlier_version_stored(  # type: ignore[no-untyped-def]
    settings, start_worker
) -> None:
    lines = OLDEST.read_bytes().splitlines()
    old = {orjson.loads(line)["customer_id"]: line for line in lines}
    # The earlier version's changelog, keyed and partitioned as its worker wrote it.
    with make_producer(settings) as producer:
        for customer, line in old.items():
            producer.send(
                f"{settings.app_id}-{STATE_TABLE}-changelog", key=customer.encode(), value=line
            ).get(30)
    worker = start_worker(settings, name="upgraded")
    wait_for(lambda: worker.metric("churnstream_state_customers") == len(old), 60, "the recount")
    assert worker.metric("churnstream_state_records_unreadable") == 0

    # A login a day after each customer's latest event; the same login applied here to the
    # decoded record gives what the worker stores.
    logins, expected = [], {}
    for customer, line in old.items():
        record = decode_record(line)
        login = login_after(record)
        logins.append(login)
        assert step(record, parse_event_dict(login), None, ScoringContext()).status == "applied"
        expected[customer] = record.to_dict()
    produce_events(settings, logins)
    wait_for(
        lambda: worker.metric("churnstream_events_processed_total") == len(old), 60, "the logins"
    )
    live = live_records(worker.url, sorted(old))
    assert sorted(live) == sorted(old)
    for customer, body in live.items():
        for part in ("features", "risk", "counts", "seen"):
            assert close(body[part], expected[customer][part], f"{customer}.{part}") == []
        assert body["counts"]["login"] == orjson.loads(old[customer])["counts"]["login"] + 1
    assert worker.metric("churnstream_events_invalid_total") == 0
    assert read_topic(settings, settings.topic("dead-letter"), expect=0) == []
