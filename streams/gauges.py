"""Gauges refreshed on a timer: state size, bands, segments, business metrics (the backlog
gauge is set by the partition check in `streams.agents`), and the outbox's in-flight count,
read at each scrape.

The per-customer ones (customers by band and segment, state size, lifetime value, and the
current and last month's figures, derived from subscription histories) count the customers whose records this
worker owns. The agents keep them up to date event by event; after every rebalance the
worker counts them again from its store (`recount`): otherwise a worker would go on counting
the customers of partitions it gave away (which the new owner counts too, so that the sums
over workers count them twice), and a restarted worker, or the new owner, would count a
customer only from their next event on (a churned customer, who sends none, never).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from typing import Any

from churnstream.models.scoring import advance_month, restore
from churnstream.streams import peer_store
from churnstream.streams.app import Wiring, running_loop_name
from churnstream.streams.stored import UnreadableRecord, decode_record

log = logging.getLogger(__name__)

REFRESH_SECONDS = 5.0
RECOUNT_CHUNK = 500  # records between two turns of the event loop


def refresh(wiring: Wiring) -> None:
    m = wiring.metrics
    m.state_customers.set(len(wiring.state_sizes))
    m.state_bytes.set(sum(wiring.state_sizes.values()))
    m.observe_business(wiring.business.report())


async def recount(wiring: Wiring) -> int:
    """Count again, from the store, the customers of the partitions this worker owns now (as
    of each one's latest event); returns how many.

    It holds every event type's batch lock (`Continuity.lock`) meanwhile: no batch is
    applied while it runs, so none can update a customer that the recount then sets back
    to the record it read before (its store iterator reads a snapshot)."""
    async with contextlib.AsyncExitStack() as locks:
        for kind in sorted(wiring.event_topics):  # one order everywhere: no deadlock
            await locks.enter_async_context(wiring.continuity.lock(kind))
        wiring.business.forget_customers()
        wiring.state_sizes.clear()
        # Read again from the store: another worker may have owned a partition meanwhile.
        wiring.context.peers.clear()
        n = unreadable = 0
        latest: float | None = None
        for key, raw in wiring.state.data.items():  # the active partitions' records
            if not raw or peer_store.reserved(key):
                continue
            try:
                record = decode_record(raw)
            except UnreadableRecord as exc:
                # Count the others: one record must not leave the gauges at a part count.
                unreadable += 1
                log.error("stored record of %r is unreadable, not counted: %r", key, exc)
                continue
            at = restore(wiring.business, record, wiring.context)
            if at is not None:
                latest = at if latest is None else max(latest, at)
            wiring.state_sizes[record.customer_id] = len(raw)
            n += 1
            if n % RECOUNT_CHUNK == 0:
                await asyncio.sleep(0)  # let heartbeats and /metrics through
        if latest is not None:  # a restarted worker's months, from its customers' histories
            advance_month(wiring.business, wiring.context, latest)
        wiring.metrics.unreadable_records.set(unreadable)
        refresh(wiring)
    return n


def register(wiring: Wiring) -> None:
    # Read at every scrape: the outbox messages sent and not yet confirmed (`streams.agents`).
    wiring.metrics.outbox_in_flight.set_function(lambda: len(wiring.in_flight))

    @wiring.app.task
    async def describe_runtime() -> None:
        wiring.metrics.runtime.info({"event_loop": running_loop_name()})
        wiring.metrics.gc_frozen_objects.set(gc.get_freeze_count())

    @wiring.app.timer(interval=REFRESH_SECONDS)
    async def refresh_gauges() -> None:
        refresh(wiring)

    @wiring.app.on_rebalance_complete.connect
    async def _recount(app: Any, **_: Any) -> None:
        started = time.monotonic()
        try:
            n = await recount(wiring)
        except Exception:  # e.g. a partition revoked meanwhile: the next rebalance recounts
            log.exception("counting the owned customers again failed")
            return
        wiring.metrics.recounts.inc()
        seconds = time.monotonic() - started
        log.info("counted the %d customers of this worker's partitions in %.1f s", n, seconds)
