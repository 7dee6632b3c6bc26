"""Build the Faust app from settings: topics, the customer-state table, agents and views."""

from __future__ import annotations

import asyncio
import collections
import gc
import secrets
from dataclasses import dataclass, field
from typing import Any

import faust
from prometheus_client import CollectorRegistry

from churnstream.models.business import BusinessMetrics
from churnstream.models.labels import DAY
from churnstream.models.scoring import ScoringContext
from churnstream.streams import peer_store
from churnstream.streams.changelog import Changelog
from churnstream.streams.continuity import Continuity, Reader
from churnstream.streams.metrics import WorkerMetrics
from churnstream.streams.settings import Settings

STATE_TABLE = "customer-state"
CHANGELOG_BATCH_BYTES = 262_144


@dataclass(slots=True)
class Wiring:
    """Everything the agents and views share; one per app."""

    settings: Settings
    app: faust.App
    state: Any  # faust.Table of customer_id bytes -> orjson-encoded state bytes
    dead_letter: faust.types.TopicT
    risk_changes: faust.types.TopicT
    model_examples: faust.types.TopicT
    event_topics: dict[str, faust.types.TopicT]
    metrics: WorkerMetrics
    context: ScoringContext
    business: BusinessMetrics
    continuity: Continuity  # every source message applied, in order (see its module)
    changelog: Changelog  # writes to `state` with batched changelog records
    state_sizes: dict[str, int] = field(default_factory=dict)  # customer -> bytes stored
    # This process's name in the records' outboxes, and the ids of the outbox messages it is
    # publishing (`churnstream.models.outbox`).
    incarnation: str = field(default_factory=lambda: secrets.token_hex(4))
    in_flight: collections.Counter[str] = field(default_factory=collections.Counter)
    model_info: dict[str, Any] = field(default_factory=dict)  # the loaded churn model's report
    suggested_weights: dict[str, Any] = field(default_factory=dict)
    misplaced_logged: set[int] = field(default_factory=set)  # partitions (`check_placement`)


def _credentials(settings: Settings) -> Any:
    if settings.broker_sasl_mechanism:
        password = settings.broker_sasl_password
        return faust.SASLCredentials(
            username=settings.broker_sasl_username,
            password=password.get_secret_value() if password else None,
            mechanism=settings.broker_sasl_mechanism,
            ssl_context=_ssl_context(settings),
        )
    if settings.broker_security_protocol in ("SSL", "SASL_SSL"):
        return faust.SSLCredentials(_ssl_context(settings))
    return None


def _ssl_context(settings: Settings) -> Any:
    if settings.broker_security_protocol not in ("SSL", "SASL_SSL"):
        return None
    import ssl

    cafile = str(settings.broker_ssl_cafile) if settings.broker_ssl_cafile else None
    return ssl.create_default_context(cafile=cafile)


def _raw_topic(app: faust.App, name: str, partitions: int) -> faust.types.TopicT:
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
    )


def rocksdb_options(settings: Settings) -> dict[str, int]:
    """RocksDB options for the customer-state table: Faust's defaults (64 MB write buffers x 3
    and a 2 GB block cache, per partition) held 550 MB after 200k events where these hold
    317 MB, same speed (docs/BENCHMARKS.md)."""
    return {
        "write_buffer_size": settings.rocksdb_write_buffer_mb << 20,
        "max_write_buffer_number": 2,
        "block_cache_size": settings.rocksdb_block_cache_mb << 20,
    }


def create_app(
    settings: Settings,
    *,
    registry: CollectorRegistry | None = None,
    reader: Reader | None = None,
    **overrides: Any,
) -> Wiring:
    """A configured Faust app with every agent and view registered.

    `reader` reads source partitions beside Faust (`streams.continuity`); `overrides` go to
    `faust.App` (tests pass `store="memory://"`, for instance).
    """
    options: dict[str, Any] = {
        "broker": settings.broker,
        "broker_credentials": _credentials(settings),
        "store": settings.store,
        "datadir": str(settings.data_dir),
        "broker_session_timeout": settings.broker_session_timeout,
        "broker_heartbeat_interval": min(3.0, settings.broker_session_timeout / 3),
        "topic_partitions": settings.topic_partitions,
        "topic_replication_factor": settings.topic_replication,
        "web_host": settings.web_host,
        "web_bind": settings.web_host,
        "web_port": settings.web_port,
        "web_enabled": True,
        # At-least-once: faust-streaming's exactly-once mode is not reliable; state updates
        # are idempotent instead (see churnstream.models.delivery).
        "processing_guarantee": "at_least_once",
        "topic_allow_declare": True,
        "consumer_auto_offset_reset": "earliest",
        "table_cleanup_interval": 3600.0,
        "producer_max_request_size": max(1_048_576, settings.max_message_bytes * 2),
        "consumer_max_fetch_size": max(4_194_304, settings.max_message_bytes * 4),
        # Room for a batch's changelog records of one partition in one record batch
        # (`streams.changelog`); aiokafka's default is 16 KB, eight customers' state.
        "producer_max_batch_size": CHANGELOG_BATCH_BYTES,
        # churnstream encodes every key and value itself (orjson); Faust moves bytes.
        "key_serializer": "raw",
        "value_serializer": "raw",
    }
    options.update(overrides)
    app = faust.App(settings.app_id, **options)
    registry = registry if registry is not None else CollectorRegistry()
    state = app.Table(
        STATE_TABLE,
        default=None,
        key_type=bytes,
        value_type=bytes,
        partitions=settings.topic_partitions,
        options=rocksdb_options(settings),
    )
    wiring = Wiring(
        settings=settings,
        app=app,
        state=state,
        changelog=Changelog.of(state),
        dead_letter=_raw_topic(app, settings.topic("dead-letter"), settings.topic_partitions),
        risk_changes=_raw_topic(app, settings.topic("risk-changes"), settings.topic_partitions),
        model_examples=_raw_topic(app, settings.topic("model-examples"), 1),
        event_topics={
            t: _raw_topic(app, name, settings.topic_partitions)
            for t, name in settings.event_topics().items()
        },
        metrics=WorkerMetrics.create(registry),
        context=ScoringContext(
            config=settings.health_settings(),
            snapshot_period=settings.churn_snapshot_days * DAY,
            peer_group=peer_store.partitioner(settings.topic_partitions),
            load_peers=peer_store.loader(state),
        ),
        business=BusinessMetrics(),
        continuity=Continuity(
            reader=reader if reader is not None else Reader(settings),
            kinds={name: kind for kind, name in settings.event_topics().items()},
            stall_seconds=settings.partition_stall_seconds,
        ),
    )
    # Imported here: both modules register against this app's wiring.
    from churnstream.streams import agents, gauges, model_loader, views

    agents.register(wiring)
    views.register(wiring)
    gauges.register(wiring)
    model_loader.register(wiring)
    return wiring


def use_event_loop(name: str) -> None:
    """Make `name` this process's asyncio event loop: "uvloop" or "aio" (Python's own), as
    `mode` names them. Call it before the app is built: Faust keeps the loop it first finds.
    """
    import mode.loop

    mode.loop.use(name)


def running_loop_name() -> str:
    """The package of the running event loop's class: "uvloop" or "asyncio".

    >>> async def which() -> str:
    ...     return running_loop_name()
    >>> asyncio.run(which())
    'asyncio'
    """
    return type(asyncio.get_running_loop()).__module__.partition(".")[0]


def freeze_startup_objects() -> int:
    """Move every object alive now (modules, classes, functions: the imports, and the app
    built) out of the garbage collector's sight, and return how many there are.

    A full (generation 2) collection visits every tracked object. A worker 40 s into a
    latency run tracked about 183,000, nearly all from start-up, and each full collection
    paused its event loop for 105–128 ms, every 10–32 s, delaying every event in flight;
    frozen (169,000), they took 3.6–7.7 ms (docs/BENCHMARKS.md, "Where the latency tail comes
    from"). Frozen objects are still freed when their last reference goes; only a reference
    cycle among them never would be.

    >>> import gc
    >>> freeze_startup_objects() > 1000  # every module, class and function imported so far
    True
    >>> gc.unfreeze()  # this process collects them again
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def faust_worker(app: faust.App, loglevel: str) -> Any:
    """Faust's worker for `app`, without its terminal spinner.

    At log levels of warning and above the spinner sets the root logger to DEBUG (so that it
    spins on every record), and every debug line in Faust and aiokafka then builds a log
    record that no handler prints: a Faust agent writing one table key per event ran at
    3,260 events/s with it and 4,079 without (docs/BENCHMARKS.md, "What Faust itself costs").
    """
    from faust.worker import Worker

    worker = Worker(app, loglevel=loglevel, quiet=True)
    worker.spinner = None
    return worker
