"""Thin agents: decode a batch of messages, run the scoring step per customer, send the results.

One agent per event topic, concurrency 1 (faust-streaming can commit past unprocessed
messages with more), at-least-once: a batch's offsets are acknowledged only after it was
processed, and the step itself is idempotent. Each customer's record is read and written
once per batch, and the changelog records go to Kafka in store order, a batch of them per
partition (`streams.changelog`), before the batch's offsets are acknowledged. Alerts and
cancellation labels are stored in the customer's record (its outbox, `models.outbox`) and
published after the changelog has the record; Kafka has them before the batch is
acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
from faust.streams import _current_event  # the context variable Faust's stores read

from churnstream.models.outbox import Message
from churnstream.models.peers import PeerBaseline
from churnstream.models.scoring import REDELIVERED, CustomerRecord, Outcome, step, tally
from churnstream.schemas.decoding import decode_event
from churnstream.schemas.errors import InvalidEvent
from churnstream.schemas.events import Event
from churnstream.schemas.records import DeadLetter
from churnstream.streams import peer_store
from churnstream.streams.app import Wiring
from churnstream.streams.changelog import ChangelogNotWritten
from churnstream.streams.continuity import Carrier
from churnstream.streams.learning_messages import cancel, snapshot_message
from churnstream.streams.stored import decode_record, encode_record

log = logging.getLogger(__name__)

CHECK_SECONDS = 5.0  # backlog gauge and stalled-partition check


@contextmanager
def acting_for(event: Any) -> Iterator[None]:
    """Make `event` Faust's current event.

    Table reads and writes go to the current event's partition (the RocksDB partition store
    and the changelog partition). In a batch, a customer's record must be handled with one of
    that customer's own events current; all topics are keyed by customer and co-partitioned.
    """
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


def load_record(wiring: Wiring, customer_id: str) -> CustomerRecord:
    raw = wiring.changelog.get(customer_id.encode())
    return decode_record(raw) if raw else CustomerRecord.new(customer_id)


def store_record(wiring: Wiring, record: CustomerRecord, message: Any) -> None:
    """Store `record` in the partition of `message` (Faust's current event); its changelog
    record is sent by the next `wiring.changelog.flush()`."""
    raw = encode_record(record)
    wiring.state_sizes[record.customer_id] = len(raw)
    wiring.changelog.put(message, record.customer_id.encode(), raw)


async def send_dead_letter(wiring: Wiring, message: Any, code: str, reason: str) -> None:
    ts = datetime.fromtimestamp(message.timestamp, tz=UTC) if message.timestamp else None
    record = DeadLetter.from_message(
        message.value,
        key=message.key,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        code=code,
        reason=reason,
        message_ts=ts,
    )
    await wiring.dead_letter.send(key=message.key, value=record.model_dump_json().encode())
    wiring.metrics.events_invalid.labels(reason=code).inc()
    wiring.metrics.dead_letters.inc()


async def handle_batch(wiring: Wiring, event_type: str, records: list[Any]) -> None:
    """Process one batch of raw messages from the `event_type` topic; never raises for bad
    input: every message ends applied, recognised as a duplicate, or dead-lettered."""
    metrics, settings = wiring.metrics, wiring.settings
    started = time.perf_counter()
    metrics.events_consumed.labels(type=event_type).inc(len(records))
    observe_delay(wiring, event_type, records)
    by_customer: dict[str, list[tuple[Any, Event]]] = {}
    for record in records:
        message = record.message
        try:
            event = decode_event(
                message.value,
                key=message.key,
                topic_type=event_type,
                max_bytes=settings.max_message_bytes,
                rating_labels=settings.rating_labels,
            )
        except InvalidEvent as exc:
            await send_dead_letter(wiring, message, exc.code, exc.reason)
            continue
        by_customer.setdefault(event.customer_id, []).append((record, event))

    processed = metrics.events_processed.labels(type=event_type)
    publish: list[tuple[str, Message]] = []  # after the changelog has the records
    # Sent once the batch's records and baselines are all put (`send_later`).
    dead: list[tuple[Any, str, str]] = []  # message, code, reason
    examples: list[tuple[str, bytes]] = []  # customer id, learning snapshot
    for customer_id, items in by_customer.items():
        outcomes: list[tuple[Any, Event, Outcome]] = []
        partition = wiring.context.peer_group(customer_id)  # Kafka's default partitioner's
        check_placement(wiring, event_type, customer_id, items, partition)
        before: PeerBaseline | None = None  # the partition's baseline before, for a failure
        try:
            current = items[-1][0]
            with acting_for(current):
                customer = load_record(wiring, customer_id)
                if event_type == "usage":  # the only events the baselines count
                    before = wiring.context.peers_for(customer_id).copy()
                again = customer.outbox.take_over(wiring.incarnation, wiring.in_flight)
                new: list[Message] = []
                for record, event in items:
                    m = record.message
                    outcome = step(
                        customer, event, (m.topic, m.partition, m.offset), wiring.context
                    )
                    outcomes.append((m, event, outcome))
                    new += publications(customer_id, outcome)
                customer.outbox.add(new)
                store_record(wiring, customer, current.message)
                sending = again + new
                wiring.in_flight.update(m.id for m in sending)
        except Exception as exc:  # a bug on one customer must not stop the worker
            log.exception("scoring customer %s failed", customer_id)
            if before is not None:  # the batch's usage must not count among the peers either
                wiring.context.peers[partition] = before
            # Nothing of this customer's batch was stored: dead-letter all of it.
            reason = f"{type(exc).__name__}: {exc}"
            dead += [(record.message, "processing_error", reason) for record, _ in items]
            continue
        # Counted only now that the record is stored: a customer that failed above has all
        # its batch dead-lettered, and none of it in the aggregates.
        count_applied(wiring, customer, [(e, o) for _, e, o in outcomes])
        metrics.republished.inc(len(again))
        publish += [(customer_id, m) for m in sending]
        for message, _, outcome in outcomes:
            if outcome.status == "duplicate":
                metrics.events_duplicate.labels(type=event_type, cause=outcome.reason).inc()
            elif outcome.status == "too_late":
                dead.append((message, "too_late", outcome.reason))
            else:
                processed.inc()
                if outcome.snapshot is not None:
                    examples.append((customer_id, snapshot_message(outcome.snapshot)))
    store_baselines(wiring, by_customer)
    await send_later(wiring, dead, examples)
    metrics.changelog_records.inc(await wiring.changelog.flush())
    await publish_outbox(wiring, publish)
    if records:
        per_event = (time.perf_counter() - started) / len(records)
        metrics.processing_seconds.labels(type=event_type).observe(per_event)


async def send_later(
    wiring: Wiring, dead: list[tuple[Any, str, str]], examples: list[tuple[str, bytes]]
) -> None:
    """A batch's dead letters and learning snapshots, sent after its customers' records and
    the usage baselines they were counted in are put. Each await lets another agent's batch
    run, and its flush sends every changelog record put so far: a customer's record sent
    while their partition's baseline waits unput would say they were counted among the
    peers, and a crash then would restart with a baseline that never counts them."""
    for message, code, reason in dead:
        await send_dead_letter(wiring, message, code, reason)
    for customer_id, snapshot in examples:
        await wiring.model_examples.send(key=customer_id.encode(), value=snapshot)


def check_placement(
    wiring: Wiring,
    event_type: str,
    customer_id: str,
    items: list[tuple[Any, Event]],
    expected: int,
) -> None:
    """Count a customer's messages that are not on the partition Kafka's default partitioner
    gives their id (`expected`), and log the first from each partition. They are applied
    all the same, but the customer is judged against the usage baseline of another
    partition, which this worker may not own (it then stays in memory, unstored), and the
    API looks for them elsewhere. The cause is a producer that partitions another way
    (librdkafka's default, CRC32) or topics with another partition count than the
    settings say."""
    misplaced = [record.message for record, _ in items if record.message.partition != expected]
    if not misplaced:
        return
    wiring.metrics.events_misplaced.labels(type=event_type).inc(len(misplaced))
    partition = misplaced[0].partition
    if partition not in wiring.misplaced_logged:
        wiring.misplaced_logged.add(partition)
        log.warning(
            "customer %s's %s event is on partition %d of %s, where Kafka's default "
            "partitioner gives partition %d of %d: the producer partitions another way, or "
            "the topic has another partition count (logged once per partition; counted in "
            "churnstream_events_misplaced_total)",
            customer_id,
            event_type,
            partition,
            misplaced[0].topic,
            expected,
            wiring.settings.topic_partitions,
        )


def store_baselines(wiring: Wiring, by_customer: dict[str, list[tuple[Any, Event]]]) -> None:
    """Store the partitions' usage baselines that changed (`streams.peer_store`), each in its
    partition, with one of the batch's messages from there current."""
    acting = {items[-1][0].message.partition: items[-1][0] for items in by_customer.values()}
    # A baseline changed in another partition stays marked: another agent's batch changed
    # it, or a producer that does not partition as Kafka's default; that batch, or the
    # partition's next one here, stores it.
    for partition, raw in peer_store.changed(wiring.context.peers, acting):
        current = acting[partition]
        with acting_for(current):
            wiring.changelog.put(current.message, peer_store.baseline_key(partition), raw)


def count_applied(
    wiring: Wiring, customer: CustomerRecord, applied: list[tuple[Event, Outcome]]
) -> None:
    """Count a stored customer's applied events in the customer-success aggregates; a bug
    here is logged, and leaves the events applied (the aggregates are derived from them)."""
    try:
        for event, outcome in applied:
            tally(wiring.business, customer, event, outcome, wiring.context)
    except Exception:
        log.exception("counting customer %s in the aggregates failed", customer.customer_id)


def observe_delay(wiring: Wiring, event_type: str, records: list[Any]) -> None:
    """How long the batch's oldest message waited (Kafka timestamp to now): the worker's
    share of event-to-alert latency before processing starts, a replay's age of history."""
    stamps = [r.message.timestamp for r in records if r.message.timestamp]
    if stamps:
        delay = max(0.0, time.time() - min(stamps))
        wiring.metrics.batch_delay_seconds.labels(type=event_type).observe(delay)


def publications(customer_id: str, outcome: Outcome) -> list[Message]:
    """What applying an event publishes through the customer's outbox: its alerts, and the
    cancellation label the trainer learns from."""
    out = [Message("risk-changes", a.alert_id, a.model_dump(mode="json")) for a in outcome.alerts]
    if outcome.cancelled_at is not None:
        at = outcome.cancelled_at
        out.append(Message("model-examples", f"cancel/{customer_id}/{at}", cancel(customer_id, at)))
    return out


async def publish_outbox(wiring: Wiring, publish: list[tuple[str, Message]]) -> None:
    """Publish outbox messages and wait until Kafka has them all; only then are their ids no
    longer in flight (a later update of the customer then drops them from its outbox)."""
    topics = {"risk-changes": wiring.risk_changes, "model-examples": wiring.model_examples}
    sent = []
    for customer_id, m in publish:
        sent.append(
            await topics[m.topic].send(key=customer_id.encode(), value=orjson.dumps(m.value))
        )
        if m.topic == "risk-changes":
            wiring.metrics.alerts.labels(kind=m.value["kind"]).inc()
    await asyncio.gather(*sent)
    for _, m in publish:
        wiring.in_flight[m.id] -= 1
        if not wiring.in_flight[m.id]:
            del wiring.in_flight[m.id]


async def handle_in_order(wiring: Wiring, event_type: str, records: list[Any]) -> None:
    """`handle_batch` after the continuity check: what Faust skipped is read and applied in
    its place; what this worker applied already is dropped (see `streams.continuity`)."""
    async with wiring.continuity.lock(event_type):
        ordered = await wiring.continuity.in_order(records)
        fetched = sum(isinstance(r, Carrier) for r in ordered)
        skipped = len(records) - (len(ordered) - fetched)
        if skipped:
            duplicate = wiring.metrics.events_duplicate.labels(type=event_type, cause=REDELIVERED)
            duplicate.inc(skipped)
        if fetched:
            wiring.metrics.events_recovered.labels(type=event_type).inc(fetched)
        await handle_batch(wiring, event_type, ordered)


async def read_stalled(wiring: Wiring, event_type: str, carriers: list[Any]) -> None:
    """Messages of a partition Faust left unfetched, read by the continuity check (which
    holds the type's lock)."""
    wiring.metrics.events_recovered.labels(type=event_type).inc(len(carriers))
    await handle_batch(wiring, event_type, carriers)


def register(wiring: Wiring) -> None:
    """Create one agent per event topic on the wiring's app, and the timer that measures
    each partition's backlog and reads the partitions Faust leaves unfetched."""
    for event_type, topic in wiring.event_topics.items():
        _register_one(wiring, event_type, topic)

    @wiring.app.timer(interval=CHECK_SECONDS)
    async def check_partitions() -> None:
        try:
            lag = await wiring.continuity.check(
                wiring.app.consumer.assignment(),
                lambda kind, carriers: read_stalled(wiring, kind, carriers),
                time.monotonic(),
            )
        except ChangelogNotWritten as exc:
            await stop_unacknowledged(wiring, exc)
            return
        except Exception:  # the check must never stop the worker
            log.exception("checking the source partitions failed")
            return
        for kind, n in lag.items():
            wiring.metrics.consumer_lag.labels(type=kind).set(n)

    @wiring.app.task
    async def connect_reader() -> None:
        """Before the first batches need it (`Reader.connect`)."""
        try:
            await asyncio.to_thread(wiring.continuity.reader.connect)
        except Exception:  # the reader connects on first use anyway
            log.exception("connecting the continuity reader failed")

    @wiring.app.on_partitions_revoked.connect
    async def _revoked(app: Any, revoked: Any, **_: Any) -> None:
        wiring.continuity.forget(revoked)

    @wiring.app.on_before_shutdown.connect
    async def _close_reader(app: Any, **_: Any) -> None:
        await asyncio.to_thread(wiring.continuity.reader.close)


async def finish_even_if_stopped(work: Coroutine[Any, Any, None]) -> None:
    """Run `work` to its end even if the agent is cancelled meanwhile (the worker stopping).

    Faust's `take_events` acknowledges a batch when the agent leaves it, cancelled or not, and
    the worker commits acknowledged offsets as it stops: a batch cut off half-way through its
    customers, or before its changelog records were sent, would be committed with part of it
    never applied or never in the changelog.
    """
    task = asyncio.ensure_future(work)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True  # wait on: the batch is nearly always a fraction of a second
    if cancelled:
        raise asyncio.CancelledError
    task.result()  # its own error, if any


async def stop_unacknowledged(wiring: Wiring, exc: ChangelogNotWritten) -> None:
    """Kafka refused customer state after aiokafka's own retries: crash the worker (it exits
    with the error, like Faust on a failed send) and never acknowledge this batch, so that its
    messages are delivered again after the restart instead of committed past."""
    log.critical("customer state not written to the changelog, stopping: %s", exc)
    wiring.metrics.changelog_failures.inc()
    await wiring.app.crash(exc)
    await asyncio.Future()  # until the worker's shutdown cancels this agent


def _register_one(wiring: Wiring, event_type: str, topic: Any) -> None:
    async def consume(stream: Any) -> None:
        settings = wiring.settings
        async for batch in stream.take_events(settings.batch_max, within=settings.batch_within):
            try:
                await finish_even_if_stopped(handle_in_order(wiring, event_type, list(batch)))
            except ChangelogNotWritten as exc:
                await stop_unacknowledged(wiring, exc)

    consume.__name__ = f"{event_type}_events"
    consume.__qualname__ = consume.__name__
    wiring.app.agent(topic, name=f"churnstream.{event_type}-events", concurrency=1)(consume)
