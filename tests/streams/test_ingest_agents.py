"""The event agents in Faust's test context with the in-memory store."""

from __future__ import annotations

import asyncio
import logging
import time
from unittest import mock

import orjson
import pytest
from aiokafka.errors import KafkaTimeoutError
from fake_producer import FakeProducer
from handled import handled, until

from churnstream.models.outbox import Message, Outbox
from churnstream.models.peers import PeerBaseline
from churnstream.models.scoring import CustomerRecord
from churnstream.schemas.records import DeadLetter
from churnstream.streams import agents, peer_store
from churnstream.streams.agents import finish_even_if_stopped
from churnstream.streams.app import create_app, faust_worker, running_loop_name, use_event_loop
from churnstream.streams.changelog import Changelog, ChangelogNotWritten
from churnstream.streams.continuity import Reader
from churnstream.streams.gauges import recount
from churnstream.streams.settings import Settings

PROCESSED = "churnstream_events_processed_total"
LOGIN = {"event_id": "e1", "customer_id": "c1", "type": "login", "ts": "2025-01-01T00:00:00Z"}


def _reader() -> Reader:
    """The test context's messages start at offset 0 and nothing was committed."""
    reader = mock.create_autospec(Reader, instance=True, spec_set=True)
    reader.first_offsets.side_effect = lambda tps: dict.fromkeys(tps, 0)
    return reader  # type: ignore[no-any-return]


def _wiring(producer: FakeProducer | None = None, **settings: object):  # type: ignore[no-untyped-def]
    conf = Settings(store="memory://", **settings)  # type: ignore[arg-type]
    wiring = create_app(conf, store="memory://", reader=_reader())
    # The test context starts no Kafka producer: the changelog goes to a stand-in.
    producer = producer if producer is not None else FakeProducer()
    wiring.changelog = Changelog(wiring.state, lambda: producer)
    send = mock.create_autospec(wiring.dead_letter.send, spec_set=True)
    wiring.dead_letter.send = send  # type: ignore[method-assign]
    examples = mock.create_autospec(wiring.model_examples.send, spec_set=True)
    wiring.model_examples.send = examples  # type: ignore[method-assign]
    return wiring, send


async def two_logins_in_two_batches(agent) -> None:  # type: ignore[no-untyped-def]
    """c1's logins e1 and e2 through `agent`'s test context, one batch each."""
    async with agent.test_context() as a:
        await handled(await a.put(orjson.dumps(LOGIN), key=b"c1"))
        await handled(await a.put(orjson.dumps({**LOGIN, "event_id": "e2"}), key=b"c1"))


def test_valid_event_counts_and_redelivery_changes_nothing() -> None:
    producer = FakeProducer()
    wiring, send = _wiring(producer)
    agent = wiring.app.agents["churnstream.login-events"]

    first_partition: list[int] = []

    async def run() -> None:
        async with agent.test_context() as a:
            first = await a.put(orjson.dumps(LOGIN), key=b"c1")
            first_partition.append(first.message.partition)
            second = await a.put(orjson.dumps({**LOGIN, "event_id": "e2"}), key=b"c1")
            await handled(first, second)
            # Redelivery: the same partition and offset again.
            a.sent_offset = first.message.offset
            again = await a.put(orjson.dumps(LOGIN), key=b"c1", partition=first.message.partition)
            assert again.message.offset == first.message.offset
            await handled(again)

    asyncio.run(run())
    state = orjson.loads(wiring.state[b"c1"])
    assert state["counts"] == {"login": 2}
    # Every stored record went to the changelog, to the partition of its messages.
    assert producer.latest() == {b"c1": wiring.state[b"c1"]}
    assert {p for _, p, _ in producer.sent} == {first_partition[0]}
    reg = wiring.metrics.registry
    sent = sum(len(records) for _, _, records in producer.sent)
    assert reg.get_sample_value("churnstream_changelog_records_sent_total") == sent >= 1
    assert reg.get_sample_value("churnstream_events_processed_total", {"type": "login"}) == 2
    redelivered = {"type": "login", "cause": "redelivery"}
    assert reg.get_sample_value("churnstream_events_duplicate_total", redelivered) == 1
    repeated = {"type": "login", "cause": "event_id"}
    assert reg.get_sample_value("churnstream_events_duplicate_total", repeated) is None
    # One feature snapshot for the churn model (at most one a day per customer).
    [call] = wiring.model_examples.send.await_args_list  # type: ignore[attr-defined]
    message = orjson.loads(call.kwargs["value"])
    assert call.kwargs["key"] == b"c1" and message["kind"] == "snapshot"
    assert message["customer_id"] == "c1" and "days_since_login" in message["features"]
    send.assert_not_called()


def test_an_outbox_another_incarnation_stored_is_published_again_once() -> None:
    """A worker died after storing c1's update and before publishing its alert: the next
    worker publishes it again on c1's next update (after a crash, the redelivered events,
    duplicates by then) and keeps it in the outbox until the send is confirmed; its own
    published messages it drops."""
    wiring, _ = _wiring()
    alert = {"alert_id": "a1", "customer_id": "c1", "kind": "band_change"}
    record = CustomerRecord.new("c1")
    record.outbox = Outbox("dead0000", [Message("risk-changes", "a1", alert)])
    wiring.state.data[b"c1"] = orjson.dumps(record.to_dict())
    stored: list[dict] = []  # type: ignore[type-arg]
    reg = wiring.metrics.registry
    in_flight: list[float | None] = []

    async def send(*, key: bytes, value: bytes) -> asyncio.Future[None]:
        stored.append(orjson.loads(wiring.state.data[b"c1"]))  # what was stored before
        in_flight.append(reg.get_sample_value("churnstream_outbox_in_flight"))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    wiring.risk_changes.send = mock.create_autospec(  # type: ignore[method-assign]
        wiring.risk_changes.send, spec_set=True, side_effect=send
    )
    agent = wiring.app.agents["churnstream.login-events"]

    asyncio.run(two_logins_in_two_batches(agent))
    [call] = wiring.risk_changes.send.await_args_list  # type: ignore[attr-defined]
    assert call.kwargs == {"key": b"c1", "value": orjson.dumps(alert)}
    # Stored under this worker before it was sent; dropped by the next update once sent.
    assert stored[0]["outbox"] == {
        "writer": wiring.incarnation,
        "messages": [["risk-changes", "a1", alert]],
    }
    assert "outbox" not in orjson.loads(wiring.state.data[b"c1"])
    assert orjson.loads(wiring.state.data[b"c1"])["counts"] == {"login": 2}
    assert not wiring.in_flight
    # The gauge showed the alert while its send was unconfirmed, and nothing after.
    assert in_flight == [1.0]
    assert reg.get_sample_value("churnstream_outbox_in_flight") == 0
    assert reg.get_sample_value("churnstream_outbox_republished_total") == 1
    assert reg.get_sample_value("churnstream_alerts_emitted_total", {"kind": "band_change"}) == 1


@pytest.mark.parametrize(("batch_max", "batches"), [(1, 3), (500, 1)])
def test_batches_follow_the_settings_and_their_wait_is_measured(
    batch_max: int, batches: int
) -> None:
    """Three messages an hour old, queued at once: taken one by one with `batch_max=1`,
    together within 0.3 s otherwise; each batch records how long its oldest had waited."""
    wiring, _ = _wiring(batch_max=batch_max, batch_within=0.3)
    agent = wiring.app.agents["churnstream.login-events"]
    reg = wiring.metrics.registry
    sent = time.time() - 3600

    async def run() -> None:
        async with agent.test_context() as a:
            events = [
                await a.put(
                    orjson.dumps({**LOGIN, "event_id": f"e{n}"}),
                    key=b"c1",
                    timestamp=sent,
                    wait=False,
                )
                for n in range(3)
            ]
            await handled(*events)

    asyncio.run(run())
    assert reg.get_sample_value(PROCESSED, {"type": "login"}) == 3
    labels = {"type": "login"}
    assert reg.get_sample_value("churnstream_batch_delay_seconds_count", labels) == batches
    waited = reg.get_sample_value("churnstream_batch_delay_seconds_sum", labels)
    assert 3600 * batches <= waited < 3660 * batches
    assert (
        reg.get_sample_value("churnstream_batch_delay_seconds_bucket", labels | {"le": "600.0"})
        == 0
    )


@pytest.mark.parametrize("dead_letter_takes", [0.0, 0.05])
def test_invalid_messages_go_to_dead_letter_and_the_agent_goes_on(dead_letter_takes: float) -> None:
    """Bad JSON and a login on the usage topic are dead-lettered with their reasons and the
    usage event after them is applied. Also when a dead letter's send is slow and batches are
    short, so that the next message is read while its batch is still being applied and waits
    outside the batch buffer (CI41 failed on that timing before the test waited for it)."""
    wiring, send = _wiring(batch_within=0.001)

    async def slow_send(**_: object) -> None:
        await asyncio.sleep(dead_letter_takes)

    send.side_effect = slow_send
    agent = wiring.app.agents["churnstream.usage-events"]
    usage = {**LOGIN, "type": "usage", "feature": "api"}

    async def run() -> None:
        async with agent.test_context() as a:
            await handled(
                await a.put(b"{not json", key=b"c1"),
                await a.put(orjson.dumps(LOGIN), key=b"c1"),  # a login on the usage topic
                await a.put(orjson.dumps(usage), key=b"c1"),
            )

    asyncio.run(run())
    assert send.call_count == 2
    letters = [DeadLetter.model_validate_json(c.kwargs["value"]) for c in send.call_args_list]
    assert [d.error_code for d in letters] == ["bad_json", "wrong_topic"]
    assert letters[0].original_bytes() == b"{not json"
    assert all(d.reason for d in letters)
    assert orjson.loads(wiring.state[b"c1"])["counts"] == {"usage": 1}
    reg = wiring.metrics.registry
    assert reg.get_sample_value("churnstream_events_invalid_total", {"reason": "wrong_topic"}) == 1


def step_failing_on(event_id: str):  # type: ignore[no-untyped-def]
    """The scoring step, raising on the event `event_id` (a bug on one customer)."""
    real_step = agents.step

    def step(record, event, source, ctx):  # type: ignore[no-untyped-def]
        if event.event_id == event_id:
            raise RuntimeError(f"a bug on {event_id}")
        return real_step(record, event, source, ctx)

    return step


def test_a_customer_that_fails_mid_batch_is_dead_lettered_and_counted_nowhere() -> None:
    """c1's second survey of a batch raises: both of c1's surveys are dead-lettered, its
    record is not stored, and neither is in the aggregates (its first was applied in memory
    before the second failed); c2's survey in the same batch is stored and counted."""
    wiring, send = _wiring(batch_within=0.3)
    agent = wiring.app.agents["churnstream.survey-events"]
    reg, business = wiring.metrics.registry, wiring.business
    survey = {**LOGIN, "type": "survey", "kind": "nps", "score": 10}

    async def run() -> None:
        async with agent.test_context() as a:
            events = []
            for event_id, customer in (("s1", "c1"), ("s2", "c1"), ("s3", "c2")):
                event = {**survey, "event_id": event_id, "customer_id": customer}
                events.append(await a.put(orjson.dumps(event), key=customer.encode(), wait=False))
            await handled(*events)

    with mock.patch.object(agents, "step", side_effect=step_failing_on("s2")):
        asyncio.run(run())
    letters = [DeadLetter.model_validate_json(c.kwargs["value"]) for c in send.call_args_list]
    assert [d.error_code for d in letters] == ["processing_error"] * 2
    assert {d.reason for d in letters} == {"RuntimeError: a bug on s2"}
    assert b"c1" not in wiring.state.data and b"c2" in wiring.state.data
    assert reg.get_sample_value(PROCESSED, {"type": "survey"}) == 1
    assert business.nps_answers == 1 and business.promoters == 1  # c2's alone
    assert set(business.segments) == set(business.bands) == {"c2"}


def test_a_bug_in_the_aggregates_leaves_the_event_applied() -> None:
    """Counting a stored customer's events raises, in two batches: logged; each event stays
    applied and is not dead-lettered, and the agent goes on to the next batch."""
    wiring, send = _wiring()
    agent = wiring.app.agents["churnstream.login-events"]

    with mock.patch.object(agents, "tally", side_effect=RuntimeError("a bug")) as tally:
        asyncio.run(two_logins_in_two_batches(agent))
    assert tally.call_count == 2
    send.assert_not_called()
    assert orjson.loads(wiring.state[b"c1"])["counts"] == {"login": 2}
    assert wiring.metrics.registry.get_sample_value(PROCESSED, {"type": "login"}) == 2
    assert not wiring.business.segments


def test_a_refused_changelog_batch_stops_the_worker_without_acknowledging() -> None:
    wiring, _ = _wiring(FakeProducer(fail=KafkaTimeoutError("no leader")))
    agent = wiring.app.agents["churnstream.login-events"]
    crash = mock.AsyncMock()
    wiring.app.crash = crash  # type: ignore[method-assign]

    async def run() -> None:
        async with agent.test_context() as a:
            event = await a.put(orjson.dumps(LOGIN), key=b"c1", wait=False)
            await until(lambda: crash.await_count, "the worker to crash")
            assert not event.message.acked  # delivered again after the restart

    asyncio.run(run())
    [call] = crash.await_args_list
    assert "no leader" in str(call.args[0])
    reg = wiring.metrics.registry
    assert reg.get_sample_value("churnstream_changelog_send_failures_total") == 1


def test_a_batch_in_hand_is_finished_when_the_agent_is_cancelled() -> None:
    done: list[str] = []

    async def batch() -> None:
        for customer in ("c1", "c2", "c3"):
            await asyncio.sleep(0.01)
            done.append(customer)

    async def run() -> None:
        agent = asyncio.ensure_future(finish_even_if_stopped(batch()))
        await asyncio.sleep(0.015)
        for _ in range(2):  # Faust may cancel more than once
            agent.cancel()
            await asyncio.sleep(0)
        with pytest.raises(asyncio.CancelledError):
            await agent
        assert done == ["c1", "c2", "c3"]

    asyncio.run(run())


def test_an_error_in_the_batch_still_reaches_the_agent() -> None:
    async def batch() -> None:
        raise ChangelogNotWritten("refused")

    with pytest.raises(ChangelogNotWritten, match="refused"):
        asyncio.run(finish_even_if_stopped(batch()))


def test_worker_logging_stays_at_its_level() -> None:
    """Faust's own worker turns a logger to DEBUG at the warning level (its spinner); ours
    must not, or every debug line in Faust and aiokafka costs a log record."""
    from faust.worker import Worker

    wiring, _ = _wiring()
    faust_default, ours = logging.getLogger("test.faust"), logging.getLogger("test.ours")
    for logger in (faust_default, ours):
        logger.setLevel(logging.WARNING)
        logger.addHandler(logging.NullHandler())
    Worker(wiring.app, loglevel="warning", quiet=True).on_setup_root_logger(
        faust_default, logging.WARNING
    )
    faust_worker(wiring.app, "warning").on_setup_root_logger(ours, logging.WARNING)
    assert faust_default.level == logging.DEBUG  # what the workaround is for
    assert ours.level == logging.WARNING and not ours.isEnabledFor(logging.DEBUG)


def test_the_event_loop_setting_picks_the_loop_coroutines_run_on() -> None:
    async def which() -> str:
        return running_loop_name()

    before = asyncio.get_event_loop_policy()
    try:
        asyncio.set_event_loop_policy(None)  # Python's own
        use_event_loop("aio")  # leaves Python's loop in place
        assert asyncio.run(which()) == "asyncio"
        use_event_loop("uvloop")
        assert asyncio.run(which()) == "uvloop"
    finally:
        asyncio.set_event_loop_policy(before)


def test_after_a_rebalance_the_worker_counts_the_customers_it_stores_and_only_them() -> None:
    """The per-customer gauges are counted again from the store when a rebalance completes:
    a customer of a partition given away (here one the store does not have) is no longer
    counted; every stored one is, whether or not an event of theirs came since."""
    wiring, _ = _wiring()
    agent = wiring.app.agents["churnstream.login-events"]
    reg = wiring.metrics.registry

    def customers(band: str) -> float:
        return reg.get_sample_value("churnstream_customers", {"band": band}) or 0.0

    async def run() -> None:
        async with agent.test_context() as a:
            for c in ("c1", "c2", "c3"):
                await handled(
                    await a.put(
                        orjson.dumps({**LOGIN, "customer_id": c, "event_id": c}), key=c.encode()
                    )
                )
        business = wiring.business
        bands, segments = dict(business.bands), dict(business.segments)
        assert len(bands) == len(segments) == 3
        business.observe_customer("gone", "red", "at_risk/smb", None)  # given away
        wiring.state_sizes["gone"] = 2000
        for kept in (business.bands, business.segments, wiring.state_sizes):
            del kept["c3"]  # assigned, no event of theirs since
        await wiring.app.on_rebalance_complete.send()
        assert (business.bands, business.segments) == (bands, segments)

    asyncio.run(run())
    assert reg.get_sample_value("churnstream_customer_recounts_total") == 1
    assert sum(customers(b) for b in ("green", "yellow", "red")) == 3
    assert reg.get_sample_value("churnstream_state_customers") == 3
    assert "gone" not in wiring.business.segments and "gone" not in wiring.state_sizes


def test_a_recount_waits_for_the_batch_being_applied() -> None:
    """No batch runs while the worker counts its customers again: one that set a customer's
    band between the recount's read of the store and its end would be undone."""
    wiring, _ = _wiring()
    order: list[str] = []

    async def run() -> None:
        async with wiring.continuity.lock("usage"):  # a usage batch is being applied
            task = asyncio.ensure_future(recount(wiring))
            await asyncio.sleep(0.05)
            assert not task.done()
            order.append("batch done")
        await task
        order.append("recounted")
        async with wiring.continuity.lock("usage"):  # and released again
            order.append("next batch")

    asyncio.run(run())
    assert order == ["batch done", "recounted", "next batch"]


def test_the_unreadable_gauge_holds_what_the_last_recount_found() -> None:
    """A record the worker cannot decode is left out of the counts and shown by a gauge; each
    recount sets it again (two recounts do not make it two), and one that finds the record
    replaced clears it."""
    wiring, _ = _wiring()
    agent = wiring.app.agents["churnstream.login-events"]
    reg = wiring.metrics.registry
    found: list[tuple[int, float | None]] = []

    async def run() -> None:
        async with agent.test_context() as a:
            await handled(await a.put(orjson.dumps(LOGIN), key=b"c1"))
        wiring.state.data[b"c-garbled"] = b"{not json"
        for _ in range(2):
            n = await recount(wiring)
            found.append((n, reg.get_sample_value("churnstream_state_records_unreadable")))
        wiring.state.data[b"c-garbled"] = wiring.state.data[b"c1"]  # replaced by a good one
        n = await recount(wiring)
        found.append((n, reg.get_sample_value("churnstream_state_records_unreadable")))

    asyncio.run(run())
    assert found == [(1, 1.0), (1, 1.0), (2, 0.0)]


def test_a_usage_event_stores_its_partitions_peer_baseline() -> None:
    """Beside the customer, in the customer's partition and its changelog: the usage
    baseline a restarted worker, or the partition's next owner, reads back."""
    producer = FakeProducer()
    wiring, _ = _wiring(producer)
    agent = wiring.app.agents["churnstream.usage-events"]
    partition = peer_store.partitioner(wiring.settings.topic_partitions)("c1")
    usage = {**LOGIN, "type": "usage", "feature": "api", "quantity": 3.0}

    async def run() -> None:
        async with agent.test_context() as a:
            await handled(await a.put(orjson.dumps(usage), key=b"c1", partition=partition))

    asyncio.run(run())
    key = peer_store.baseline_key(partition)
    stored = PeerBaseline.from_dict(orjson.loads(wiring.state.data[key]))
    assert stored.count(None) == 1 and stored.to_dict() == wiring.context.peers[partition].to_dict()
    assert {(p, k) for _, p, records in producer.sent for k, _ in records} == {
        (partition, b"c1"),
        (partition, key),
    }
    assert not wiring.context.peers[partition].changed
    # Not a customer: the recount leaves it out.
    assert asyncio.run(recount(wiring)) == 1


def test_events_on_another_partition_than_kafkas_default_are_counted_logged_and_applied() -> None:
    """A producer that partitions another way (librdkafka's default, CRC32) puts c1 where
    Kafka's default partitioner does not: each such event is counted, the first of the
    partition logged, and all are applied; an event where it belongs counts nothing."""
    wiring, send = _wiring()
    agent = wiring.app.agents["churnstream.login-events"]
    right = peer_store.partitioner(wiring.settings.topic_partitions)("c1")
    wrong = (right + 1) % wiring.settings.topic_partitions

    async def run() -> None:
        async with agent.test_context() as a:
            for event_id, partition in (("e1", right), ("e2", wrong), ("e3", wrong)):
                event = orjson.dumps({**LOGIN, "event_id": event_id})
                await handled(await a.put(event, key=b"c1", partition=partition))  # a batch each

    with mock.patch.object(agents.log, "warning") as warning:
        asyncio.run(run())
    reg = wiring.metrics.registry
    assert reg.get_sample_value("churnstream_events_misplaced_total", {"type": "login"}) == 2
    assert reg.get_sample_value(PROCESSED, {"type": "login"}) == 3
    [call] = warning.call_args_list  # once for the partition, not once an event
    assert call.args[1:4] == ("c1", "login", wrong) and call.args[5] == right
    send.assert_not_called()  # nothing dead-lettered


def test_a_customer_that_fails_leaves_the_usage_baseline_as_it_was() -> None:
    """c1's second usage event of a batch raises after its first was counted among c1's
    partition's peers: c1's batch is dead-lettered, and the baseline counts only the usage
    of c2, a customer of the same partition in the same batch."""
    wiring, send = _wiring(batch_within=0.3)
    agent = wiring.app.agents["churnstream.usage-events"]
    place = peer_store.partitioner(wiring.settings.topic_partitions)
    partition = place("c1")
    c2 = next(c for c in (f"c{i}" for i in range(2, 200)) if place(c) == partition)
    usage = {**LOGIN, "type": "usage", "feature": "api", "quantity": 3.0}

    async def run() -> None:
        async with agent.test_context() as a:
            events = []
            for event_id, customer in (("u1", "c1"), ("u2", "c1"), ("u3", c2)):
                event = {**usage, "event_id": event_id, "customer_id": customer}
                events.append(
                    await a.put(
                        orjson.dumps(event), key=customer.encode(), partition=partition, wait=False
                    )
                )
            await handled(*events)

    with mock.patch.object(agents, "step", side_effect=step_failing_on("u2")):
        asyncio.run(run())
    assert send.call_count == 2  # u1 and u2
    assert wiring.context.peers[partition].count(None) == 1  # c2's usage alone
    stored = orjson.loads(wiring.state.data[peer_store.baseline_key(partition)])
    assert PeerBaseline.from_dict(stored).count(None) == 1


def test_another_agents_flush_mid_batch_never_sends_a_customer_without_their_baseline() -> None:
    """The agents share the changelog, and a flush sends every record put so far. One that
    another agent's batch makes while this batch waits (here: on sending c1's learning
    snapshot) must not send c1's record, which says c1 counted among the peers today,
    without the partition's baseline that counts c1: a crash just after would restart with
    both, and c1's redelivered event, a duplicate, would never be counted."""
    producer = FakeProducer()
    wiring, _ = _wiring(producer)
    agent = wiring.app.agents["churnstream.usage-events"]
    partition = peer_store.partitioner(wiring.settings.topic_partitions)("c1")
    key = peer_store.baseline_key(partition)
    usage = {**LOGIN, "type": "usage", "feature": "api", "quantity": 3.0}
    kafka_had: list[dict[bytes, bytes]] = []  # the changelog's records at each snapshot sent

    async def flush_as_another_agent(*_args: object, **_kwargs: object) -> None:
        await wiring.changelog.flush()
        kafka_had.append(producer.latest())

    wiring.model_examples.send.side_effect = flush_as_another_agent  # type: ignore[attr-defined]

    async def run() -> None:
        async with agent.test_context() as a:
            await handled(await a.put(orjson.dumps(usage), key=b"c1", partition=partition))

    asyncio.run(run())
    [had] = kafka_had  # c1's first usage: one snapshot
    assert b"c1" in had and key in had
    assert PeerBaseline.from_dict(orjson.loads(had[key])).count(None) == 1
