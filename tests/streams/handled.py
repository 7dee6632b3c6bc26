"""Waiting, in Faust's test context, until an agent has finished with what a test put.

`AgentTestWrapper.put(wait=True)` returns once the stream has *read* a message, not once the
agent handled it: the agents take batches (`Stream.take_events`), and a message read while the
previous batch is still being applied waits outside the buffer. Leaving the test context then
stops the agent with that message never handled (never acknowledged either, so a real worker
would read it again after a restart), and the test's assertions would see the state before it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

TIMEOUT = 10.0  # a guard against hanging, far above what any of these tests needs


async def until(predicate: Callable[[], object], what: str, timeout: float = TIMEOUT) -> None:
    """Return once `predicate()` is true; fail the test after `timeout` seconds.

    >>> asyncio.run(until(lambda: True, "nothing"))
    >>> asyncio.run(until(lambda: False, "the impossible", timeout=0.05))
    Traceback (most recent call last):
    AssertionError: timed out after 0.05 s waiting for the impossible
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)


async def handled(*events: Any) -> None:
    """Return once the agent acknowledged every one of `events` (the values `put` returned):
    `take_events` acknowledges a batch's messages after the agent applied or dead-lettered
    them."""
    await until(
        lambda: all(event.message.acked for event in events),
        f"the agent to acknowledge {len(events)} message(s)",
    )
