"""Create churnstream's topics on the broker (idempotent), and delete a namespace's, with
kafka-python's admin client."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from churnstream.streams.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str]


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """The event topics, the outputs and the worker's changelog, all co-partitioned."""
    n = settings.topic_partitions
    specs = [TopicSpec(t, n, {}) for t in settings.event_topics().values()]
    specs.append(TopicSpec(settings.topic("risk-changes"), n, {}))
    specs.append(
        TopicSpec(settings.topic("dead-letter"), n, {"retention.ms": str(30 * 86_400_000)})
    )
    # The trainer reads every worker's snapshots and cancellations in one order: one partition.
    specs.append(
        TopicSpec(settings.topic("model-examples"), 1, {"retention.ms": str(90 * 86_400_000)})
    )
    specs.append(TopicSpec(settings.topic("models"), 1, {"cleanup.policy": "compact"}))
    # Faust names a table's changelog <app id>-<table>-changelog; it must be compacted.
    specs.append(
        TopicSpec(f"{settings.app_id}-customer-state-changelog", n, {"cleanup.policy": "compact"})
    )
    return specs


def _admin(settings: Settings, timeout_ms: int) -> KafkaAdminClient:
    return KafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        client_id=f"{settings.app_id}-admin",
        request_timeout_ms=timeout_ms,
        **settings.kafka_python_security(),
    )


def create_topics(settings: Settings, timeout_ms: int = 30_000) -> list[str]:
    """Create every missing topic; return the names created now (existing ones are kept)."""
    admin = _admin(settings, timeout_ms)
    try:
        existing = set(admin.list_topics())
        missing = [s for s in topic_specs(settings) if s.name not in existing]
        created = []
        for spec in missing:
            try:
                admin.create_topics(
                    [
                        NewTopic(
                            spec.name,
                            spec.partitions,
                            settings.topic_replication,
                            topic_configs=spec.config,
                        )
                    ],
                    timeout_ms=timeout_ms,
                )
                created.append(spec.name)
            except TopicAlreadyExistsError:
                log.info("topic %s was created meanwhile", spec.name)
        return created
    finally:
        admin.close()


def _names(admin: KafkaAdminClient) -> set[str]:
    return {t for t in admin.list_topics() if not t.startswith("__")}


def topic_names(settings: Settings, timeout_ms: int = 30_000) -> set[str]:
    """The broker's topics, without Kafka's own (`__consumer_offsets`, ...)."""
    admin = _admin(settings, timeout_ms)
    try:
        return _names(admin)
    finally:
        admin.close()


def delete_topics(settings: Settings, prefix: str, timeout_ms: int = 30_000) -> list[str]:
    """Delete every topic whose name starts with `prefix` (a benchmark's own namespace: its
    events, outputs, changelogs and Faust's internal topics); return their names."""
    admin = _admin(settings, timeout_ms)
    try:
        names = sorted(t for t in _names(admin) if t.startswith(prefix))
        if names:
            admin.delete_topics(names, timeout_ms=timeout_ms)
        return names
    finally:
        admin.close()
