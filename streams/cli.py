"""The `churnstream` command line."""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from tqdm import tqdm

from churnstream.streams import peer_store
from churnstream.streams.settings import Settings

cli = typer.Typer(
    help="churnstream: real-time customer health and churn risk on Apache Kafka.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
topics_cli = typer.Typer(help="Manage churnstream's Kafka topics.", no_args_is_help=True)
cli.add_typer(topics_cli, name="topics")

BrokerOpt = Annotated[
    str | None,
    typer.Option(
        "--broker", envvar="CHURNSTREAM_BROKER", help="Kafka bootstrap, kafka://host:port"
    ),
]
PrefixOpt = Annotated[
    str | None,
    typer.Option("--topic-prefix", envvar="CHURNSTREAM_TOPIC_PREFIX", help="prefix of topic names"),
]


def build_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with the command line's explicit values on top."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


@cli.command()
def worker(
    broker: BrokerOpt = None,
    topic_prefix: PrefixOpt = None,
    web_port: Annotated[
        int | None, typer.Option(envvar="CHURNSTREAM_WEB_PORT", help="HTTP API and /metrics port")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(envvar="CHURNSTREAM_DATA_DIR", help="local state directory")
    ] = None,
    log_level: Annotated[
        str | None, typer.Option(envvar="CHURNSTREAM_LOG_LEVEL", help="debug, info, warning")
    ] = None,
) -> None:
    """Run a stream worker: consume events, keep customer state, publish risk changes."""
    from churnstream.streams.app import (
        create_app,
        faust_worker,
        freeze_startup_objects,
        use_event_loop,
    )
    from churnstream.streams.metrics import process_registry

    settings = build_settings(
        broker=broker,
        topic_prefix=topic_prefix,
        web_port=web_port,
        data_dir=data_dir,
        log_level=log_level,
    )
    use_event_loop(settings.event_loop)  # before the app exists: it takes the loop it finds
    wiring = create_app(settings, registry=process_registry())
    runner = faust_worker(wiring.app, settings.log_level)
    freeze_startup_objects()  # the latency tail: see its docstring
    runner.execute_from_commandline()


@cli.command("slack-relay")
def slack_relay(
    broker: BrokerOpt = None,
    topic_prefix: PrefixOpt = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(envvar="CHURNSTREAM_RELAY_METRICS_PORT", help="relay /metrics port (0: none)"),
    ] = None,
) -> None:
    """Post risk-change alerts to Slack (CHURNSTREAM_SLACK_WEBHOOK_URL), or print them."""
    import signal

    from prometheus_client import start_http_server

    from churnstream.streams.metrics import RelayMetrics, process_registry
    from churnstream.streams.slack_relay import (
        PostedJournal,
        SlackRelay,
        WebhookPoster,
        dead_letter_sender,
        run_relay,
    )

    settings = build_settings(
        broker=broker, topic_prefix=topic_prefix, relay_metrics_port=metrics_port
    )
    logging.basicConfig(
        level=settings.log_level.upper(), format="[%(asctime)s] [%(levelname)s] %(message)s"
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)
    logging.getLogger("slack_sdk").setLevel(logging.WARNING)  # its debug lines name the URL
    registry = process_registry()
    metrics = RelayMetrics.create(registry)
    if settings.relay_metrics_port:
        start_http_server(settings.relay_metrics_port, addr=settings.web_host, registry=registry)
    producer, send = dead_letter_sender(settings)
    journal = PostedJournal(settings.relay_journal)
    relay = SlackRelay(settings, WebhookPoster(), journal, metrics, send, echo=_echo)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: relay.stopping.set())
    mode = (
        "console" if settings.slack_webhook_url is None and not settings.slack_routes else "Slack"
    )
    logging.getLogger(__name__).info("slack relay: %s -> %s", settings.topic("risk-changes"), mode)
    try:
        run_relay(settings, relay)
    finally:
        journal.close()
        producer.close()


def _echo(line: str) -> None:
    typer.echo(line)
    sys.stdout.flush()


@cli.command()
def trainer(
    broker: BrokerOpt = None,
    topic_prefix: PrefixOpt = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            envvar="CHURNSTREAM_TRAINER_METRICS_PORT", help="trainer /metrics port (0: none)"
        ),
    ] = None,
) -> None:
    """Learn the global churn model from the workers' snapshots; publish it to the workers."""
    import signal
    import threading

    from prometheus_client import start_http_server

    from churnstream.streams.metrics import process_registry
    from churnstream.streams.trainer import TrainerMetrics, run_trainer

    settings = build_settings(
        broker=broker, topic_prefix=topic_prefix, trainer_metrics_port=metrics_port
    )
    registry = process_registry()
    metrics = TrainerMetrics.create(registry)
    if settings.trainer_metrics_port:
        start_http_server(settings.trainer_metrics_port, addr=settings.web_host, registry=registry)
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    run_trainer(settings, metrics, stopping)


@cli.command()
def bench(
    events: Annotated[int, typer.Option(help="simulated events to load")] = 1_000_000,
    customers: Annotated[int, typer.Option(help="simulated customers")] = 20_000,
    workdir: Annotated[Path, typer.Option(help="worker state and logs")] = Path("var/bench"),
    latency_seconds: Annotated[
        float, typer.Option(help="how long to feed events at half load for the latency")
    ] = 60.0,
    repeat: Annotated[
        int,
        typer.Option(min=1, help="rounds of the throughput and latency phases (medians)"),
    ] = 1,
) -> None:
    """Throughput: raw consumer vs one worker vs two; memory, state size, recovery time;
    event-to-alert latency at half load."""
    import orjson

    from churnstream.streams.bench import run_bench

    workdir.mkdir(parents=True, exist_ok=True)
    result = run_bench(build_settings(), events, customers, workdir, latency_seconds, repeat)
    typer.echo(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


@cli.command()
def evaluate(
    customers: Annotated[int, typer.Option(help="simulated customers per seed")] = 2000,
    days: Annotated[int, typer.Option(help="days of history")] = 180,
    seeds: Annotated[str, typer.Option(help="comma-separated random seeds")] = "1,2,3",
    split_day: Annotated[int, typer.Option(help="the batch model trains before this day")] = 90,
) -> None:
    """Backtest: online churn model vs health score vs a batch gradient-boosted model."""
    import platform

    import orjson

    from churnstream.streams.evaluation import evaluate_seed, summarise

    results = []
    typer.echo(
        f"{customers} customers, {days} days, split at day {split_day}; "
        f"Python {platform.python_version()} on {platform.machine()}"
    )
    typer.echo("seed  events    train   test  positives  AUC online  AUC health  AUC batch  ECE")
    for seed in (int(x) for x in seeds.split(",")):
        r = evaluate_seed(customers, days, seed, split_day)
        results.append(r)
        typer.echo(
            f"{r.seed:>4} {r.events:>8} {r.train_examples:>7} {r.test_examples:>6} "
            f"{r.test_positives:>9} {r.auc_online:>11.3f} {r.auc_health:>11.3f} "
            f"{r.auc_batch:>10.3f} {r.calibration_error_online or 0:>5.3f}  ({r.seconds:.0f} s)"
        )
    typer.echo(orjson.dumps(summarise(results)).decode())


@topics_cli.command("create")
def topics_create(broker: BrokerOpt = None, topic_prefix: PrefixOpt = None) -> None:
    """Create the event, output and internal topics (existing ones are kept)."""
    from churnstream.streams.topics import create_topics, topic_specs

    settings = build_settings(broker=broker, topic_prefix=topic_prefix)
    created = set(create_topics(settings))
    for spec in topic_specs(settings):
        state = "created" if spec.name in created else "exists"
        typer.echo(f"{state:8} {spec.name} ({spec.partitions} partitions)")


@cli.command()
def simulate(
    customers: Annotated[
        int, typer.Option(envvar="CHURNSTREAM_SIM_CUSTOMERS", help="number of customers")
    ] = 500,
    days: Annotated[
        int, typer.Option(envvar="CHURNSTREAM_SIM_DAYS", help="days of event time")
    ] = 90,
    seed: Annotated[int, typer.Option(envvar="CHURNSTREAM_SIM_SEED", help="random seed")] = 1,
    start: Annotated[
        datetime | None,
        typer.Option(envvar="CHURNSTREAM_SIM_START", help="first day (UTC), default 2025-01-01"),
    ] = None,
    churn_share: Annotated[
        float, typer.Option(envvar="CHURNSTREAM_SIM_CHURN_SHARE", help="share who drift and churn")
    ] = 0.25,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", envvar="CHURNSTREAM_SIM_OUT", help="write JSON Lines here, not Kafka"
        ),
    ] = None,
    broker: BrokerOpt = None,
    topic_prefix: PrefixOpt = None,
    progress: Annotated[
        bool, typer.Option(envvar="CHURNSTREAM_SIM_PROGRESS", help="show a progress bar")
    ] = True,
) -> None:
    """Write a realistic, seeded sample stream to the topics or to a JSON Lines file."""
    from datetime import UTC

    from churnstream.streams.producing import produce_events, write_jsonl
    from churnstream.streams.simulation import DEFAULT_START
    from churnstream.streams.simulation import simulate as generate

    first = DEFAULT_START if start is None else start.replace(tzinfo=start.tzinfo or UTC)
    events = generate(
        customers=customers, days=days, seed=seed, start=first, churn_share=churn_share
    )
    bar = tqdm(events, unit=" events", disable=not progress, file=sys.stderr)
    if out is not None:
        with out.open("wb") as f:
            n = write_jsonl(bar, f)
        typer.echo(f"wrote {n} events for {customers} customers over {days} days to {out}")
    else:
        settings = build_settings(broker=broker, topic_prefix=topic_prefix)
        n = produce_events(settings, bar)
        typer.echo(f"produced {n} events for {customers} customers over {days} days")


@cli.command()
def replay(
    input_file: Annotated[Path, typer.Argument(help="JSON Lines of events (the event contract)")],
    alerts: Annotated[
        Path | None, typer.Option(envvar="CHURNSTREAM_REPLAY_ALERTS", help="write alerts here")
    ] = None,
    snapshots: Annotated[
        Path | None,
        typer.Option(envvar="CHURNSTREAM_REPLAY_SNAPSHOTS", help="write snapshots here"),
    ] = None,
    snapshot_every: Annotated[
        str | None,
        typer.Option(envvar="CHURNSTREAM_REPLAY_SNAPSHOT_EVERY", help="period, e.g. 7d, 12h"),
    ] = None,
    summary_out: Annotated[
        Path | None,
        typer.Option("--summary", envvar="CHURNSTREAM_REPLAY_SUMMARY", help="aggregates as JSON"),
    ] = None,
) -> None:
    """Run the scoring step over a file of events with no broker, in event time."""
    import orjson

    from churnstream.models.replay import parse_period
    from churnstream.models.replay import replay as run_replay
    from churnstream.models.scoring import ScoringContext
    from churnstream.schemas.decoding import decode_event
    from churnstream.schemas.errors import InvalidEvent

    settings = build_settings()
    if snapshots is not None and snapshot_every is None:
        msg = "--snapshots needs --snapshot-every"
        raise typer.BadParameter(msg)
    period = parse_period(snapshot_every) if snapshot_every else None
    events, invalid = [], 0
    with input_file.open("rb") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                events.append(
                    decode_event(
                        line.rstrip(b"\n"),
                        key=None,
                        topic_type=None,
                        max_bytes=settings.max_message_bytes,
                        rating_labels=settings.rating_labels,
                    )
                )
            except InvalidEvent as exc:
                invalid += 1
                typer.echo(f"{input_file}:{n}: skipped: {exc}", err=True)
    alert_out = alerts.open("wb") if alerts else None
    snap_out = snapshots.open("wb") if snapshots else None
    try:
        result = run_replay(
            events,
            ScoringContext(
                config=settings.health_settings(),
                peer_group=peer_store.partitioner(settings.topic_partitions),
            ),
            snapshot_every=period,
            on_alert=(lambda a: alert_out.write(a.model_dump_json().encode() + b"\n"))
            if alert_out
            else None,
            on_snapshot=(lambda s: snap_out.write(orjson.dumps(s) + b"\n")) if snap_out else None,
        )
    finally:
        for out in (alert_out, snap_out):
            if out is not None:
                out.close()
    if summary_out is not None:
        summary_out.write_bytes(orjson.dumps(result.business.report(), option=orjson.OPT_INDENT_2))
    typer.echo(
        f"replayed {len(events) - result.duplicates - result.too_late} events for "
        f"{len(result.records)} customers ({result.duplicates} repeated, {result.too_late} too "
        f"late, {invalid} invalid); alerts: {len(result.alerts) if alert_out is None else 'written'}"
    )


@cli.command()
def demo(
    customers: Annotated[
        int, typer.Option(envvar="CHURNSTREAM_DEMO_CUSTOMERS", help="simulated customers")
    ] = 1000,
    days: Annotated[
        int, typer.Option(envvar="CHURNSTREAM_DEMO_DAYS", help="days of event time")
    ] = 90,
    seed: Annotated[int, typer.Option(envvar="CHURNSTREAM_DEMO_SEED", help="random seed")] = 7,
    keep_broker: Annotated[
        bool, typer.Option(envvar="CHURNSTREAM_KEEP_BROKER", help="leave the broker running")
    ] = False,
) -> None:
    """The whole pipeline on the local broker: worker, simulated customers, summary."""
    import time

    from churnstream.streams.demo import run_demo

    # A namespace of its own per run, so an earlier run's events are not counted again.
    ns = f"demo{int(time.time())}"
    settings = build_settings(topic_prefix=ns, app_id=ns, data_dir=Path("var") / ns / "data")
    run_demo(settings, customers, days, seed, keep_broker)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    cli()


if __name__ == "__main__":
    main()
