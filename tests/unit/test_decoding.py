"""Raw Kafka messages to events or to a dead-letter reason."""

from __future__ import annotations

import orjson
import pytest

from churnstream.schemas.decoding import decode_event
from churnstream.schemas.errors import InvalidEvent
from churnstream.schemas.records import DeadLetter
from churnstream.streams.malformed import EXPECTED_CODES, malformed_messages

GOOD = {"event_id": "e", "customer_id": "c1", "type": "login", "ts": "2025-01-01T00:00:00Z"}


def test_good_message_decodes() -> None:
    assert decode_event(orjson.dumps(GOOD), key=b"c1", topic_type="login").event_id == "e"


@pytest.mark.parametrize("item", malformed_messages(len(EXPECTED_CODES) * 3), ids=lambda m: m.what)
def test_every_malformed_kind_gets_its_code_and_a_reason(item) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidEvent) as err:
        decode_event(item.value, key=item.key, topic_type=item.topic_type)
    assert err.value.code == item.expected_code
    assert len(err.value.reason) > 5


def test_key_must_match_customer() -> None:
    with pytest.raises(InvalidEvent) as err:
        decode_event(orjson.dumps(GOOD), key=b"someone-else", topic_type="login")
    assert err.value.code == "key_mismatch"


def test_schema_reason_names_the_field() -> None:
    with pytest.raises(InvalidEvent) as err:
        decode_event(
            orjson.dumps({**GOOD, "ts": "2025-01-01T00:00:00"}), key=b"c1", topic_type="login"
        )
    assert err.value.reason.startswith("ts:")
    assert "naive" in err.value.reason


def test_oversize_is_checked_before_parsing() -> None:
    with pytest.raises(InvalidEvent) as err:
        decode_event(b"{" + b" " * 2000 + b"}", key=None, topic_type="login", max_bytes=1024)
    assert err.value.code == "oversize"


def test_unknown_code_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown"):
        InvalidEvent("whatever", "x")


def test_dead_letter_keeps_the_original_bytes() -> None:
    raw = b"\xff\x00binary"
    dl = DeadLetter.from_message(
        raw, key=None, topic="t", partition=1, offset=2, code="bad_json", reason="r"
    )
    back = DeadLetter.model_validate_json(dl.model_dump_json())
    assert back.original_bytes() == raw and back.key_b64 is None and back.offset == 2
