"""Workers follow the `models` topic in the background and score with the newest model.

A plain kafka-python consumer without a group (sturdier than Faust's GlobalTable with several
workers) reads the compacted topic from the start and keeps following it; each model it
reads replaces the scoring context's churn predictor in one assignment, so an event is
scored wholly by one version, which the prediction names.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import orjson
from kafka import KafkaConsumer, TopicPartition

from churnstream.models.churn import ChurnModel
from churnstream.models.learning import predictor_for
from churnstream.streams.app import Wiring

log = logging.getLogger(__name__)


def install(wiring: Wiring, message: dict[str, Any]) -> None:
    model = ChurnModel.from_json(message["model"])
    wiring.context.churn = predictor_for(model)
    wiring.model_info = {**message["report"], "model_version": model.version_name}
    wiring.suggested_weights = message["suggested_weights"]
    wiring.metrics.model_version.set(model.version)


def follow(wiring: Wiring, stopping: threading.Event) -> None:
    settings = wiring.settings
    while not stopping.is_set():
        try:
            consumer = KafkaConsumer(
                bootstrap_servers=settings.bootstrap_servers,
                group_id=None,
                enable_auto_commit=False,
                **settings.kafka_python_security(),  # type: ignore[arg-type]
            )
            tp = TopicPartition(settings.topic("models"), 0)
            consumer.assign([tp])
            consumer.seek_to_beginning(tp)
            while not stopping.is_set():
                newest = None
                for records in consumer.poll(timeout_ms=1000).values():
                    newest = records[-1]
                if newest is not None:
                    install(wiring, orjson.loads(newest.value))
                    log.info("scoring with %s", wiring.model_info["model_version"])
        except Exception:  # the worker goes on with the model it has
            log.exception("following the models topic failed; retrying")
            stopping.wait(5)


def register(wiring: Wiring) -> None:
    stopping = threading.Event()

    @wiring.app.task
    async def follow_models() -> None:
        threading.Thread(
            target=follow, args=(wiring, stopping), daemon=True, name="churnstream-model-loader"
        ).start()

    @wiring.app.on_before_shutdown.connect
    async def _stop(app: Any, **_: Any) -> None:
        stopping.set()
