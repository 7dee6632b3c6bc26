"""Gauges refreshed on a timer: state size, bands, segments, business metrics (the backlog
gauge is set by the partition check in `streams.agents`)."""

from __future__ import annotations

from churnstream.streams.app import Wiring, running_loop_name

REFRESH_SECONDS = 5.0


def refresh(wiring: Wiring) -> None:
    m = wiring.metrics
    m.state_customers.set(len(wiring.state_sizes))
    m.state_bytes.set(sum(wiring.state_sizes.values()))
    m.observe_business(wiring.business.report())


def register(wiring: Wiring) -> None:
    @wiring.app.task
    async def describe_runtime() -> None:
        wiring.metrics.runtime.info({"event_loop": running_loop_name()})

    @wiring.app.timer(interval=REFRESH_SECONDS)
    async def refresh_gauges() -> None:
        refresh(wiring)
