from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from churnstream.streams.settings import Settings


def test_defaults() -> None:
    s = Settings()
    assert s.broker == "kafka://127.0.0.1:19092"
    assert (s.app_id, s.web_port, s.topic_partitions) == ("churnstream", 6066, 8)
    assert s.store.startswith("rocksdb")
    assert s.web_host == "127.0.0.1"


def test_environment_with_prefix_and_nesting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURNSTREAM_TOPIC_PARTITIONS", "3")
    monkeypatch.setenv("CHURNSTREAM_RATING_LABELS__CSAT__MEH", "3")
    monkeypatch.setenv("CHURNSTREAM_API_TOKEN", "s3cret")
    s = Settings()
    assert s.topic_partitions == 3
    assert s.rating_labels["csat"]["meh"] == 3
    assert "s3cret" not in repr(s)


def test_frozen() -> None:
    with pytest.raises(ValidationError):
        Settings().web_port = 1  # type: ignore[misc]


def test_sasl_options_pass_through() -> None:
    s = Settings(
        broker_security_protocol="SASL_SSL",
        broker_sasl_mechanism="SCRAM-SHA-512",
        broker_sasl_username="u",
        broker_sasl_password="p",
    )
    opts = s.kafka_python_security()
    assert opts == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "u",
        "sasl_plain_password": "p",
    }


def test_the_api_beyond_loopback_needs_a_token() -> None:
    with pytest.raises(ValidationError, match="CHURNSTREAM_API_TOKEN"):
        Settings(web_host="0.0.0.0")  # noqa: S104
    assert Settings(web_host="0.0.0.0", api_token="s3cret").web_host == "0.0.0.0"  # noqa: S104
    assert Settings(web_host="127.0.0.2").api_token is None


def test_an_empty_variable_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURNSTREAM_SLACK_WEBHOOK_URL", "")
    monkeypatch.setenv("CHURNSTREAM_SLACK_CRM_URL", "")
    s = Settings()
    assert s.slack_webhook_url is None and s.slack_crm_url is None


def test_a_child_process_environment_rebuilds_the_same_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = Settings(
        app_id="a1",
        web_host="0.0.0.0",  # noqa: S104 (needs the token, which must travel too)
        api_token="t0ken",
        slack_webhook_url="https://hooks.example/services/X",
        broker_sasl_mechanism="PLAIN",
        broker_sasl_username="u",
        broker_sasl_password="p4ss",
        rating_labels={"nps": {"great": 10.0}},
        partition_stall_seconds=12.5,
    )
    env = s.child_env({"PATH": "/bin", "CHURNSTREAM_APP_ID": "stale"})
    assert env["PATH"] == "/bin" and env["CHURNSTREAM_APP_ID"] == "a1"
    for key in list(os.environ):
        if key.startswith("CHURNSTREAM_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    again = Settings()
    assert again.model_dump() == s.model_dump()
    assert again.api_token and again.api_token.get_secret_value() == "t0ken"
    assert again.broker_sasl_password and again.broker_sasl_password.get_secret_value() == "p4ss"
    url = again.slack_webhook_url
    assert url and url.get_secret_value() == "https://hooks.example/services/X"


def test_event_loop_is_uvloop_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().event_loop == "uvloop"
    monkeypatch.setenv("CHURNSTREAM_EVENT_LOOP", "aio")
    assert Settings().event_loop == "aio"
    monkeypatch.setenv("CHURNSTREAM_EVENT_LOOP", "tokio")
    with pytest.raises(ValidationError, match="event_loop"):
        Settings()
