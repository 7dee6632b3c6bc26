"""Faults on the real broker: a worker lost from a pair, a lost disk, a broker outage, a
worker killed while the broker does not answer."""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import orjson
from conftest import KAFKA

from churnstream.models.business import Month
from churnstream.models.peers import ALL
from churnstream.models.replay import replay
from churnstream.schemas.events import parse_event_dict
from churnstream.schemas.records import RiskChange
from churnstream.streams import peer_store
from churnstream.streams.app import STATE_TABLE
from churnstream.streams.bench import broker_pid
from churnstream.streams.producing import make_producer, produce_events
from churnstream.streams.settings import Settings
from churnstream.streams.simulation import simulate
from compare import alerts_missing, live_records, state_differences
from harness import free_port, http_json, read_topic, wait_for


def stream(customers: int = 60, days: int = 60, seed: int = 31) -> list[dict]:  # type: ignore[type-arg]
    return list(simulate(customers=customers, days=days, seed=seed))


def wait_state(url: str, expected, timeout: float = 240) -> None:  # type: ignore[no-untyped-def]
    ids = sorted(expected.records)

    differences: list[str] = []

    def equal() -> bool:
        differences[:] = state_differences(live_records(url, ids), expected)
        return differences == []

    try:
        wait_for(equal, timeout, "the live state to equal the replay's", every=2)
    except AssertionError as exc:
        shown = "\n".join(differences[:20])
        raise AssertionError(f"{exc}; {len(differences)} differences, first:\n{shown}") from None


def test_the_survivor_of_two_workers_takes_over_and_nothing_is_lost(  # type: ignore[no-untyped-def]
    settings, start_worker, tmp_path: Path
) -> None:
    events = stream()
    expected = replay([parse_event_dict(e) for e in events])
    other = Settings(
        **settings.model_dump(exclude_none=True)
        | {"web_port": free_port(), "data_dir": tmp_path / "second"}
    )
    survivor = start_worker(settings, name="survivor")
    victim = start_worker(other, name="victim")
    produce_events(settings, events)
    wait_for(
        lambda: victim.metric("churnstream_events_processed_total") > 0, 120, "the victim to work"
    )
    victim.kill()
    wait_state(survivor.url, expected)


def test_a_deleted_data_directory_is_rebuilt_from_the_changelog(  # type: ignore[no-untyped-def]
    settings, start_worker, tmp_path: Path
) -> None:
    events = stream(seed=32)
    expected = replay([parse_event_dict(e) for e in events])
    worker = start_worker(settings, name="first")
    produce_events(settings, events)
    wait_state(worker.url, expected)
    # Each record is the customer's state after more events than the one before it: a
    # changelog that goes backwards was written out of store order (five agents write).
    sent = int(worker.metric("churnstream_changelog_records_sent_total"))
    changelog_topic = f"{settings.app_id}-{STATE_TABLE}-changelog"
    changelog = read_topic(settings, changelog_topic, expect=sent)
    assert len(changelog) == sent >= len(expected.records)  # 1 GB segments: none compacted yet
    applied: dict[bytes, int] = {}
    baselines = 0
    for record in sorted(changelog, key=lambda r: (r.partition, r.offset)):
        value = orjson.loads(record.value)
        if peer_store.reserved(record.key):  # a partition's usage baseline: its peers seen
            assert record.key == peer_store.baseline_key(record.partition)
            total, baselines = int(value[ALL][0]), baselines + 1
        else:
            total = sum(value["counts"].values())
        assert total >= applied.get(record.key, 0), (record.key, record.partition, record.offset)
        applied[record.key] = total
    assert baselines > 0
    counted = customer_counts(worker.url)
    assert counted["customers"] == len(expected.records)
    # The current and the last month, derived from the customers' subscription histories.
    live = expected.business.live_months()
    months = {m: expected.business.months[m].report() for m in live}
    assert months[live[-1]]["start_customers"] > 0 and months[live[-1]]["start_mrr"] > 0
    assert {m: {k: counted["months"][m][k] for k in MONTH_SUMS} for m in live} == {
        m: {k: v[k] for k in MONTH_SUMS} for m, v in months.items()
    }
    scored = scores(worker.url, sorted(expected.records))
    worker.stop()
    shutil.rmtree(settings.data_dir)
    # One record in the changelog is not a customer record: the recount leaves it out, counts
    # it, and counts every other customer; that customer's next event is dead-lettered.
    with make_producer(settings) as producer:
        producer.send(changelog_topic, key=b"c-garbled", value=b"{not json").get(30)
    again = start_worker(settings, name="second")
    wait_state(again.url, expected, timeout=120)
    # Rebuilt from the changelog, not from the events again: nothing was reprocessed.
    assert again.metric("churnstream_events_processed_total") == 0
    # Its customers are counted from the rebuilt store, though none has sent an event since.
    wait_for(lambda: again.metric("churnstream_customer_recounts_total") >= 1, 30, "the recount")
    # The live months too: a restart no longer loses them (they were in memory only).
    assert customer_counts(again.url) == {
        **counted,
        "months": {m: counted["months"][m] for m in live},
    }
    assert again.metric("churnstream_customers") == len(expected.records)  # the gauge
    assert again.metric("churnstream_state_customers") == len(expected.records)
    assert again.metric("churnstream_state_records_unreadable") == 1
    # Scored as before the restart: each partition's usage baseline was rebuilt with it
    # (before, the new process judged usage on the absolute curve until 30 peers came back).
    assert scores(again.url, sorted(expected.records)) == scored
    status, body = http_json(f"{again.url}/customers/c-garbled")
    assert status == 500 and "stored record of c-garbled is unreadable" in body["error"]
    garbled = {"event_id": "g1", "customer_id": "c-garbled", "type": "login"}
    produce_events(settings, [garbled | {"ts": events[-1]["ts"]}])
    dead = [orjson.loads(r.value) for r in read_topic(settings, settings.topic("dead-letter"), 1)]
    key = base64.b64encode(b"c-garbled").decode()
    garbled_dead = [(d["error_code"], d["reason"]) for d in dead if d["key_b64"] == key]
    assert [code for code, _ in garbled_dead] == ["processing_error"]
    assert garbled_dead[0][1].startswith("UnreadableRecord: JSONDecodeError")

    # A second worker joins: each now counts the customers of its own partitions only.
    other = start_worker(
        settings.model_copy(update={"web_port": free_port(), "data_dir": tmp_path / "other"}),
        name="third",
    )

    def split() -> bool:
        a, b = customer_counts(again.url), customer_counts(other.url)
        both = merged(a, b)
        months = {m: counted["months"][m] for m in both["months"]}
        return (
            0 < a["customers"] < counted["customers"]
            and bool(both["months"])
            and both == {**counted, "months": months}
        )

    wait_for(split, 120, "the two workers to count their own customers")
    assert again.metric("churnstream_customer_recounts_total") >= 2  # started, then split


def scores(url: str, customer_ids: list[str]) -> dict[str, Any]:
    """The customers' health as a worker's API shows it (`GET /customers/{id}`)."""
    out = {}
    for cid in customer_ids:
        status, body = http_json(f"{url}/customers/{cid}")
        assert status == 200, (cid, body)
        out[cid] = {k: body[k] for k in ("health_score", "band", "components", "segment")}
    return out


def customer_counts(url: str) -> dict[str, Any]:
    """A worker's per-customer counts (`GET /metrics/summary`)."""
    status, summary = http_json(f"{url}/metrics/summary")
    assert status == 200
    out = {k: summary[k] for k in ("customers", "bands", "segments")}
    out["months"] = {m: {k: v[k] for k in MONTH_SUMS} for m, v in summary["months"].items()}
    return out


MONTH_SUMS = list(Month().report())  # a month's counts and sums, not its rates


def merged(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Two workers' counts added up (their months: the figures that are counts and sums)."""
    out: dict[str, Any] = {"customers": a["customers"] + b["customers"]}
    for key in ("bands", "segments"):
        names = sorted(a[key].keys() | b[key].keys())
        out[key] = {n: a[key].get(n, 0) + b[key].get(n, 0) for n in names}
    both = sorted(a["months"].keys() & b["months"].keys())  # counted by both from histories
    out["months"] = {
        m: {k: round(a["months"][m][k] + b["months"][m][k], 2) for k in MONTH_SUMS} for m in both
    }
    return out


def test_the_worker_resumes_after_the_broker_is_down_for_30_seconds(  # type: ignore[no-untyped-def]
    settings, start_worker
) -> None:
    events = stream(seed=33)
    expected = replay([parse_event_dict(e) for e in events])
    half = len(events) // 2
    worker = start_worker(settings)
    produce_events(settings, events[:half])
    wait_for(lambda: worker.metric("churnstream_events_processed_total") >= half, 120, "half")
    subprocess.run([KAFKA, "down"], check=True, capture_output=True, timeout=120)
    time.sleep(30)
    subprocess.run([KAFKA, "up"], check=True, capture_output=True, timeout=300)
    assert worker.proc is not None and worker.proc.poll() is None, "the worker stayed up"
    produce_events(settings, events[half:])
    wait_state(worker.url, expected, timeout=300)


FREEZES = 20  # tries to freeze the broker while the worker waits to publish something


def test_a_worker_killed_while_kafka_stalls_loses_no_alert(  # type: ignore[no-untyped-def]
    settings, start_worker
) -> None:
    """The broker is frozen (SIGSTOP) mid-stream: the worker's batches stop after storing
    their customers' new records and before Kafka has the records' changelog or their
    alerts. The worker is killed there, three times; each successor restarts with those
    records in its store (RocksDB) and their events redelivered as duplicates, and publishes
    the alerts from the records' outboxes. Every alert the final states raised is published.

    A freeze where no stored update had anything to publish proves nothing, so the broker is
    thawed and frozen again until the worker holds unconfirmed outbox messages
    (`churnstream_outbox_in_flight`); only then is it killed."""
    events = stream(seed=35)
    expected = replay([parse_event_dict(e) for e in events])
    pid = broker_pid()
    assert pid is not None, "the local broker is not running"
    worker = start_worker(settings, name="victim")
    produce_events(settings, events)
    republished = 0.0
    for kill in range(3):
        wait_for(
            lambda w=worker: w.metric("churnstream_events_processed_total") >= len(events) / 8,
            120,
            "progress before the freeze",
            every=0.05,
        )
        for _ in range(FREEZES):
            os.kill(pid, signal.SIGSTOP)
            try:
                time.sleep(1.5)  # every agent's batch reaches the changelog flush and waits
                if worker.metric("churnstream_outbox_in_flight") > 0:
                    republished += worker.metric("churnstream_outbox_republished_total")
                    worker.kill()
                    break
            finally:
                os.kill(pid, signal.SIGCONT)
            time.sleep(0.2)  # the stream moves on to other customers
        else:
            raise AssertionError(f"no freeze of {FREEZES} caught an alert unconfirmed")
        worker = start_worker(settings, name=f"restart{kill + 1}")
    wait_state(worker.url, expected)
    alerts = [
        RiskChange.model_validate_json(r.value)
        for r in read_topic(settings, settings.topic("risk-changes"), expect=1)
    ]
    live = live_records(worker.url, sorted(expected.records))
    assert alerts_missing(live, alerts) == {}
    republished += worker.metric("churnstream_outbox_republished_total")
    assert republished > 0  # the successors did publish alerts their predecessor had not
    # Kafka confirmed everything: nothing is left waiting (the gauge the kills relied on).
    wait_for(lambda: worker.metric("churnstream_outbox_in_flight") == 0, 30, "no unconfirmed alert")
