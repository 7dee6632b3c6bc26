"""`churnstream trainer`: one global churn model, learning from every worker's snapshots.

A single process reads the one-partition `model-examples` topic (so the examples of all
partitions arrive in one order), labels snapshots as their horizon matures (event time: the
newest `at` seen), scores each example with the probability given when the snapshot was
taken (progressive validation), learns it, and publishes the model as JSON to the compacted
`models` topic every `trainer_publish_examples` examples or `trainer_publish_seconds`.

Each published model carries the offset it has read up to and the offset of its oldest
pending snapshot. A restarted trainer loads the newest model, re-reads the topic from that
oldest pending snapshot to rebuild its pending set without learning anything twice, and goes
on from the model's offset.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from prometheus_client import CollectorRegistry, Counter, Gauge

from churnstream.models.churn import ChurnModel
from churnstream.models.labels import DAY, ChurnLabeler, Snapshot
from churnstream.models.learning import ChurnLearner
from churnstream.streams.learning_messages import decode
from churnstream.streams.settings import Settings

log = logging.getLogger(__name__)
MODEL_KEY = b"churn"


@dataclass(frozen=True, slots=True)
class TrainerMetrics:
    registry: CollectorRegistry
    examples: Counter
    version: Gauge
    quality: Gauge
    drifts: Gauge
    pending: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> TrainerMetrics:
        return cls(
            registry,
            Counter(
                "churnstream_model_examples",
                "Matured examples learned",
                ["label"],
                registry=registry,
            ),
            Gauge(
                "churnstream_model_version", "Version of the newest churn model", registry=registry
            ),
            Gauge(
                "churnstream_model_quality",
                "Progressive validation: roc_auc, log_loss, brier, calibration_error",
                ["metric", "window"],
                registry=registry,
            ),
            Gauge(
                "churnstream_model_drifts",
                "ADWIN drifts detected on the log loss",
                registry=registry,
            ),
            Gauge(
                "churnstream_model_pending_snapshots",
                "Snapshots waiting for their label",
                registry=registry,
            ),
        )

    def observe(self, learner: ChurnLearner) -> None:
        report = learner.quality.report()
        for window in ("total", "window"):
            for metric in ("roc_auc", "log_loss", "brier", "calibration_error"):
                value = report[window][metric]
                if value is not None:
                    self.quality.labels(metric=metric, window=window).set(value)
        self.drifts.set(report["drifts_detected"])
        self.pending.set(len(learner.labeler))
        self.version.set(learner.model.version)


def new_learner(settings: Settings) -> ChurnLearner:
    return ChurnLearner(
        ChurnModel(min_examples=settings.churn_min_examples),
        ChurnLabeler(horizon=settings.churn_horizon_days * DAY),
    )


@dataclass
class Trainer:
    """The trainer's state between messages; `feed` is pure bookkeeping, no Kafka."""

    settings: Settings
    learner: ChurnLearner
    next_offset: int = 0
    offsets: dict[str, int] = field(default_factory=dict)  # pending snapshot id -> offset
    since_publish: int = 0

    def feed(self, offset: int, raw: bytes, learn: bool = True) -> int:
        """Apply one message; returns examples learned. With learn=False (rebuilding after a
        restart) matured examples are dropped: the loaded model has learned them."""
        msg = decode(raw)
        labeler = self.learner.labeler
        if isinstance(msg, Snapshot):
            if labeler.add(msg):
                self.offsets[msg.id] = offset
            at = msg.at
        else:
            _, customer_id, at = msg
            labeler.cancelled(customer_id, at)
        matured = labeler.advance(at)
        for e in matured:
            self.offsets.pop(e.id, None)
        self.next_offset = offset + 1
        if not learn:
            return 0
        self.learner.learn(matured)
        self.since_publish += len(matured)
        return len(matured)

    def replay_from(self) -> int:
        return min(self.offsets.values(), default=self.next_offset)

    def model_message(self) -> bytes:
        self.learner.model.version += 1
        return orjson.dumps(
            {
                "model": self.learner.model.to_json(),
                "offset": self.next_offset,
                "replay_from": self.replay_from(),
                "report": self.learner.report(),
                "suggested_weights": self.learner.model.suggested_weights(),
            }
        )


def latest_model(settings: Settings, timeout_ms: int = 5000) -> dict[str, Any] | None:
    """The newest message on the `models` topic, or None."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        **settings.kafka_python_security(),  # type: ignore[arg-type]
    )
    try:
        tp = TopicPartition(settings.topic("models"), 0)
        consumer.assign([tp])
        end = consumer.end_offsets([tp])[tp]
        if end == 0:
            return None
        consumer.seek(tp, end - 1)
        deadline = time.monotonic() + timeout_ms / 1000
        while time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                for r in records:
                    return dict(orjson.loads(r.value))
        return None
    finally:
        consumer.close()


def run_trainer(
    settings: Settings,
    metrics: TrainerMetrics,
    stopping: threading.Event,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    learner = new_learner(settings)
    trainer = Trainer(settings, learner)
    start = 0
    saved = latest_model(settings)
    security = settings.kafka_python_security()
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        **security,  # type: ignore[arg-type]
    )
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all", **security)  # type: ignore[arg-type]
    tp = TopicPartition(settings.topic("model-examples"), 0)
    consumer.assign([tp])
    try:
        if saved is not None:
            learner.model = ChurnModel.from_json(saved["model"])
            start = saved["offset"]
            log.info(
                "resuming model v%d: rebuilding pending snapshots from offset %d to %d",
                learner.model.version,
                saved["replay_from"],
                start,
            )
            consumer.seek(tp, saved["replay_from"])
            while consumer.position(tp) < start:
                for records in consumer.poll(timeout_ms=1000).values():
                    for r in records:
                        if r.offset < start:
                            trainer.feed(r.offset, r.value, learn=False)
            trainer.next_offset = start
        consumer.seek(tp, start)
        last_publish = clock()
        while not stopping.is_set():
            for records in consumer.poll(timeout_ms=500, max_records=2000).values():
                for r in records:
                    if r.offset < trainer.next_offset:
                        continue
                    trainer.feed(r.offset, r.value)
            due = trainer.since_publish >= settings.trainer_publish_examples or (
                trainer.since_publish and clock() - last_publish >= settings.trainer_publish_seconds
            )
            if due:
                producer.send(
                    settings.topic("models"), key=MODEL_KEY, value=trainer.model_message()
                ).get(timeout=30)
                metrics.examples.labels(label="total").inc(trainer.since_publish)
                trainer.since_publish = 0
                last_publish = clock()
                metrics.observe(learner)
                log.info(
                    "published %s (%d examples)", learner.model.version_name, learner.model.examples
                )
    finally:
        consumer.close()
        producer.close()
