"""Usage baselines per partition, stored with the partition's customers: a worker that reads
them back scores as one that never stopped; each customer counts in their own partition's."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from churnstream.models.peers import PeerBaseline
from churnstream.models.scoring import CustomerRecord, ScoringContext, step, view
from churnstream.schemas.events import Event, parse_event_dict
from churnstream.streams import peer_store
from churnstream.streams.simulation import simulate
from churnstream.streams.stored import decode_record, encode_record

GROUPS = peer_store.partitioner(4)


def ordered_stream() -> list[Event]:
    events = [parse_event_dict(e) for e in simulate(customers=80, days=60, seed=11)]
    return sorted(events, key=lambda e: (e.ts, e.event_id))


def run(
    events: list[Event], ctx: ScoringContext, records: dict[str, CustomerRecord]
) -> list[dict[str, Any]]:
    alerts = []
    for event in events:
        record = records.setdefault(event.customer_id, CustomerRecord.new(event.customer_id))
        outcome = step(record, event, None, ctx)
        alerts += [a.model_dump(mode="json") for a in outcome.alerts]
    return alerts


def scores(records: dict[str, CustomerRecord], ctx: ScoringContext) -> dict[str, float]:
    return {c: view(r, ctx).health.score for c, r in sorted(records.items())}


def restarted(
    events: list[Event], stored: dict[int, bytes] | None
) -> tuple[dict[str, CustomerRecord], ScoringContext, list[dict[str, Any]]]:
    """The stream's first half on one context, its records stored, the second half on a
    new context that reads the baselines from `stored` (None: starts empty, as before)."""
    half = len(events) // 2
    first, records = ScoringContext(peer_group=GROUPS), {}
    alerts = run(events[:half], first, records)
    # A batch stores the baselines of its own partitions only; the others stay marked.
    some = peer_store.changed(first.peers, [1, 3, 5])
    rest = peer_store.changed(first.peers, range(4))
    assert [p for p, _ in some] == [1, 3] and [p for p, _ in rest] == [0, 2]
    assert not peer_store.changed(first.peers, range(4))
    written = dict(some + rest)
    if stored is not None:
        stored.update(written)

    def load(group: int) -> PeerBaseline:
        raw = (stored or {}).get(group)
        return PeerBaseline.from_dict(orjson.loads(raw)) if raw else PeerBaseline()

    second = ScoringContext(peer_group=GROUPS, load_peers=load)
    records = {c: decode_record(encode_record(r)) for c, r in records.items()}
    alerts += run(events[half:], second, records)
    return records, second, alerts


def test_a_worker_that_reads_the_stored_baselines_back_scores_as_if_it_never_stopped() -> None:
    events = ordered_stream()
    ctx, records = ScoringContext(peer_group=GROUPS), {}
    alerts = run(events, ctx, records)
    again, again_ctx, again_alerts = restarted(events, {})
    assert scores(again, again_ctx) == scores(records, ctx)
    assert again_alerts == alerts
    assert {g: b.to_dict() for g, b in again_ctx.peers.items()} == {
        g: b.to_dict() for g, b in ctx.peers.items()
    }
    # Starting empty, as every worker did before, scores differently.
    empty, empty_ctx, empty_alerts = restarted(events, None)
    differ = [c for c, s in scores(empty, empty_ctx).items() if s != scores(records, ctx)[c]]
    assert differ and empty_alerts != alerts


def test_each_customer_counts_in_their_own_partitions_baseline() -> None:
    events = ordered_stream()
    one, grouped = ScoringContext(), ScoringContext(peer_group=GROUPS)
    run(events, one, {})
    run(events, grouped, {})
    assert set(one.peers) == {0} and set(grouped.peers) == {0, 1, 2, 3}
    counts = {g: b.count(None) for g, b in grouped.peers.items()}
    assert all(counts.values()) and sum(counts.values()) == one.peers[0].count(None)
    # Alone in a partition of its own, a customer's peers are only those of that partition.
    usage = [e for e in events if e.type == "usage"]
    customers = {e.customer_id for e in usage}
    assert {GROUPS(c) for c in customers} == {0, 1, 2, 3}


def test_an_unreadable_stored_baseline_is_logged_and_scoring_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    table = SimpleNamespace(
        data={peer_store.baseline_key(2): b"{not json", peer_store.baseline_key(1): b"{}"}
    )
    load = peer_store.loader(table)
    with caplog.at_level(logging.ERROR):
        assert load(2).to_dict() == {} and load(1).to_dict() == {} and load(0).to_dict() == {}
    assert "stored peer baseline of partition 2 is unreadable" in caplog.text


def test_no_customer_id_is_a_reserved_key() -> None:
    login = {"event_id": "e1", "type": "login", "ts": "2025-01-01T00:00:00Z"}
    key = peer_store.baseline_key(3).decode()
    with pytest.raises(ValueError, match="String should match pattern"):
        parse_event_dict(login | {"customer_id": key})
    assert parse_event_dict(login | {"customer_id": "c\x00"}).customer_id == "c\x00"
