"""The messages a customer's update publishes, kept in the customer's record until published.

A worker stores a customer's new record and then publishes what the update produced (risk
alerts, cancellation labels for the trainer); the two are not atomic. A worker that dies
in between restarts with the update in its store, recognises the redelivered events as
duplicates, and would never publish those messages. So the record carries them (a
transactional outbox): an update stores its messages with the record, under the writing
worker's incarnation, and the worker publishes them once the changelog has the record. A
worker that loads a record another incarnation wrote publishes that record's messages again
(same ids, same content; consumers drop repeated ids); its own messages it keeps only while
they are still in flight.

>>> box = Outbox()
>>> box.add([Message("risk-changes", "a1", {"kind": "band_change"})])
>>> box.take_over("w1", in_flight=set())  # written by no one yet: publish everything
[Message(topic='risk-changes', id='a1', value={'kind': 'band_change'})]
>>> box.take_over("w1", in_flight={"a1"}), len(box.messages)  # ours, still being sent
([], 1)
>>> box.take_over("w1", in_flight=set()), len(box.messages)  # ours, published: forget it
([], 0)
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

Destination = Literal["risk-changes", "model-examples"]


@dataclass(frozen=True, slots=True)
class Message:
    """One message to publish, keyed by the customer; `id` is unique per message."""

    topic: Destination
    id: str
    value: dict[str, Any]


@dataclass(slots=True)
class Outbox:
    """Messages not yet known to be published, and which worker incarnation wrote them."""

    writer: str = ""
    messages: list[Message] = field(default_factory=list)

    def take_over(self, writer: str, in_flight: Container[str]) -> list[Message]:
        """Make `writer` the outbox's writer; returns the messages it must publish.

        Another incarnation's messages are all returned and kept (they may never have
        reached Kafka); `writer`'s own are kept while their ids are `in_flight` and dropped
        once published.
        """
        if self.writer != writer:
            self.writer = writer
            return list(self.messages)
        self.messages = [m for m in self.messages if m.id in in_flight]
        return []

    def add(self, messages: Iterable[Message]) -> None:
        self.messages.extend(messages)

    def to_dict(self) -> dict[str, Any] | None:
        if not self.messages:
            return None  # most records: nothing stored
        return {
            "writer": self.writer,
            "messages": [[m.topic, m.id, m.value] for m in self.messages],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Outbox:
        if not d:
            return cls()
        return cls(d["writer"], [Message(t, i, v) for t, i, v in d["messages"]])
