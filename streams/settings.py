"""The one settings object: every knob, from `CHURNSTREAM_*` environment variables.

Nested values use `__`: `CHURNSTREAM_HEALTH__WEIGHTS__SUPPORT=0.3`.

>>> s = Settings(broker="kafka://10.0.0.5:9092;10.0.0.6:9092", topic_prefix="acme")
>>> s.bootstrap_servers, s.topic("login"), s.topic("dead-letter")
(['10.0.0.5:9092', '10.0.0.6:9092'], 'acme.events.login', 'acme.dead-letter')
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from churnstream.models.health import HealthConfig
from churnstream.schemas.events import DEFAULT_RATING_LABELS, EVENT_TYPES

OUTPUT_TOPICS = ("risk-changes", "dead-letter", "model-examples", "models")
Severity = Literal["info", "warning", "critical"]


class SlackRoute(BaseModel):
    """Alerts of these bands / segments / kinds (empty: any) go to `webhook_url`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    webhook_url: SecretStr
    bands: list[Literal["green", "yellow", "red"]] = Field(default_factory=list)
    segments: list[str] = Field(default_factory=list, description="behaviour or size segment")
    kinds: list[str] = Field(default_factory=list)


class Settings(BaseSettings):
    """Frozen: build one at start-up and pass it down; nothing reads the environment later."""

    model_config = SettingsConfigDict(
        env_prefix="CHURNSTREAM_", env_nested_delimiter="__", frozen=True, extra="ignore"
    )

    broker: str = Field(
        default="kafka://127.0.0.1:19092",
        description="Kafka bootstrap servers, Faust URL form; several separated by ';'",
    )
    app_id: str = Field(default="churnstream", description="consumer group and table prefix")
    topic_prefix: str = Field(default="churnstream", description="prefix of every topic name")
    topic_partitions: int = Field(default=8, ge=1, description="partitions of every topic")
    topic_replication: int = Field(default=1, ge=1, description="replication factor")
    web_host: str = Field(default="127.0.0.1", description="address the HTTP API binds to")
    web_port: int = Field(default=6066, ge=1, le=65535, description="HTTP API and /metrics port")
    data_dir: Path = Field(default=Path("var/churnstream"), description="local state (RocksDB)")
    store: str = Field(
        default="rocksdb-nowal://",
        description="Faust table store URL: rocksdb-nowal:// (RocksDB without its write-ahead "
        "log: the changelog topic is the log), rocksdb://, or memory://",
    )
    broker_session_timeout: float = Field(
        default=30.0,
        ge=6,
        le=300,
        description="seconds a silent worker keeps its partitions; lower fails over faster",
    )
    partition_stall_seconds: float = Field(
        default=30.0,
        gt=0,
        description="a source partition whose backlog has not moved this long is read by the "
        "worker itself (faust-streaming can leave assigned partitions unfetched)",
    )
    batch_max: int = Field(
        default=500, ge=1, le=10_000, description="most messages an agent takes in one batch"
    )
    batch_within: float = Field(
        default=0.02,
        gt=0,
        le=5,
        description="seconds an agent waits for a batch to fill once it is free: longer "
        "batches cost latency, shorter ones throughput (docs/BENCHMARKS.md)",
    )
    rocksdb_write_buffer_mb: int = Field(
        default=8, ge=1, description="RocksDB write buffer per table partition (two at most)"
    )
    rocksdb_block_cache_mb: int = Field(
        default=32, ge=1, description="RocksDB block cache per table partition"
    )
    max_message_bytes: int = Field(default=256 * 1024, ge=1024, description="larger is invalid")
    event_loop: Literal["uvloop", "aio"] = Field(
        default="uvloop",
        description="the worker's asyncio event loop: uvloop, or aio for Python's own "
        "(uvloop was faster in most runs, docs/BENCHMARKS.md)",
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    rating_labels: dict[str, dict[str, float]] = Field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_RATING_LABELS.items()},
        description="survey rating label (lower case) to score, per kind",
    )
    health: HealthConfig = Field(
        default_factory=HealthConfig,
        description="health weights, bands, alert rules (CHURNSTREAM_HEALTH__WEIGHTS__SUPPORT=...)",
    )
    health_config: Path | None = Field(
        default=None, description="YAML file with the health settings; replaces `health`"
    )
    api_token: SecretStr | None = Field(
        default=None, description="bearer token the HTTP API requires when set"
    )
    broker_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = (
        "PLAINTEXT"
    )
    broker_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    broker_sasl_username: str | None = None
    broker_sasl_password: SecretStr | None = None
    broker_ssl_cafile: Path | None = None

    # -- the churn model ----------------------------------------------------------------------
    churn_horizon_days: float = Field(
        default=30.0, gt=0, description="churn_probability: cancelling within this many days"
    )
    churn_snapshot_days: float = Field(
        default=1.0, gt=0, description="a feature snapshot per customer at most this often"
    )
    churn_min_examples: int = Field(
        default=200, ge=1, description="matured examples before the model replaces the prior"
    )
    trainer_publish_examples: int = Field(
        default=500, ge=1, description="publish the model after this many new examples ..."
    )
    trainer_publish_seconds: float = Field(
        default=30.0, gt=0, description="... or after this long with new examples"
    )
    trainer_metrics_port: int = Field(default=6068, ge=0, le=65535, description="0: none")

    # -- the Slack relay ---------------------------------------------------------------------
    slack_webhook_url: SecretStr | None = Field(
        default=None, description="Slack incoming webhook; unset: print alerts to the console"
    )
    slack_routes: list[SlackRoute] = Field(
        default_factory=list,
        description="alerts matching a route go to its webhook instead (first match wins)",
    )
    slack_min_severity: Severity = Field(
        default="info", description="alerts below this severity are not posted"
    )
    slack_crm_url: str | None = Field(
        default=None,
        description="link to a customer in the CRM, {customer_id} filled in",
        examples=["https://acme.my.salesforce.com/lightning/r/Account/{customer_id}/view"],
    )
    slack_max_rejections: int = Field(
        default=3, ge=1, description="Slack 4xx answers before an alert is dead-lettered"
    )
    relay_group: str = Field(default="churnstream-slack-relay", description="consumer group")
    relay_metrics_port: int = Field(default=6067, ge=0, le=65535, description="0: no /metrics")
    relay_journal: Path = Field(
        default=Path("var/slack-relay/posted.sqlite3"),
        description="alert ids already posted, so a restart does not post them twice",
    )

    @field_validator("slack_webhook_url", "slack_crm_url", "api_token", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """`VAR=` (as compose and Kubernetes secrets write it) means not set."""
        return None if value == "" else value

    @model_validator(mode="after")
    def _token_beyond_loopback(self) -> Settings:
        loopback = self.web_host in ("localhost", "::1") or self.web_host.startswith("127.")
        if not loopback and self.api_token is None:
            msg = (
                f"the HTTP API would listen on {self.web_host}, beyond this machine: "
                "set CHURNSTREAM_API_TOKEN (clients send Authorization: Bearer <token>)"
            )
            raise ValueError(msg)
        return self

    def child_env(self, base: Mapping[str, str]) -> dict[str, str]:
        """`base` (say, os.environ) without its CHURNSTREAM_ variables, plus these settings
        as CHURNSTREAM_ variables: a child process started with it builds the same settings."""
        secrets = ("api_token", "slack_webhook_url", "broker_sasl_password")
        env = {k: v for k, v in base.items() if not k.startswith("CHURNSTREAM_")}
        for name, value in self.model_dump(mode="json", exclude=set(secrets)).items():
            if value is not None:
                text = json.dumps(value) if isinstance(value, dict | list) else str(value)
                env[f"CHURNSTREAM_{name.upper()}"] = text
        for name in secrets:
            secret = getattr(self, name)
            if secret is not None:
                env[f"CHURNSTREAM_{name.upper()}"] = secret.get_secret_value()
        return env

    def health_settings(self) -> HealthConfig:
        """The health configuration: the YAML file when one is named, else `health`."""
        if self.health_config is not None:
            return HealthConfig.from_yaml(self.health_config)
        return self.health

    @property
    def bootstrap_servers(self) -> list[str]:
        """The broker URL as host:port pairs, for kafka-python and aiokafka."""
        servers = []
        for part in self.broker.replace(",", ";").split(";"):
            part = part.strip()
            if "://" in part:
                part = part.split("://", 1)[1]
            if part:
                servers.append(part)
        return servers

    def topic(self, name: str) -> str:
        """Full topic name for an event type ("login") or an output ("risk-changes")."""
        if name in EVENT_TYPES:
            return f"{self.topic_prefix}.events.{name}"
        if name in OUTPUT_TOPICS:
            return f"{self.topic_prefix}.{name}"
        msg = f"unknown topic {name!r}"
        raise KeyError(msg)

    def event_topics(self) -> dict[str, str]:
        """Event type -> topic name."""
        return {t: self.topic(t) for t in EVENT_TYPES}

    def kafka_python_security(self) -> dict[str, object]:
        """Security options in kafka-python's spelling (the relay, producers, admin)."""
        opts: dict[str, object] = {"security_protocol": self.broker_security_protocol}
        if self.broker_sasl_mechanism:
            opts["sasl_mechanism"] = self.broker_sasl_mechanism
            opts["sasl_plain_username"] = self.broker_sasl_username
            if self.broker_sasl_password is not None:
                opts["sasl_plain_password"] = self.broker_sasl_password.get_secret_value()
        if self.broker_ssl_cafile:
            opts["ssl_cafile"] = str(self.broker_ssl_cafile)
        return opts
