"""Customer records stored by earlier versions of churnstream still decode and go on being
scored, so an upgrade keeps every customer's state (a record that fails to decode sends that
customer's events to the dead-letter topic until it is replaced).

`records/` holds records as each version wrote them (`records/stored_fixtures.py` says how to
write one). A change to the record's format makes the last test fail: add a fixture of the
new format then, and keep the old ones decoding (`from_dict` reads a missing field as its
default, as `outbox` is read)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from churnstream.models.scoring import ScoringContext, step
from churnstream.schemas.events import parse_event_dict
from churnstream.streams.stored import decode_record, encode_record
from stored_fixtures import DAY, FIXTURES, fixture_records, login_after


def test_there_is_a_fixture_older_than_the_current_format() -> None:
    assert len(FIXTURES) >= 2


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_a_stored_record_decodes_and_takes_new_events(path: Path) -> None:
    lines = path.read_bytes().splitlines()
    assert len(lines) == 6
    for line in lines:
        stored = orjson.loads(line)
        record = decode_record(line)
        assert record.customer_id == stored["customer_id"]
        assert record.counts == stored["counts"]
        assert record.risk.band == stored["risk"]["band"]
        # Records before 2026-11-25's outbox did not count their alerts: they start at 0.
        assert record.risk.alerts == stored["risk"].get("alerts", 0)
        # A login a day after the customer's latest event, read from a partition's offset.
        at = record.features.last_ts + DAY
        login = parse_event_dict(login_after(record))
        outcome = step(record, login, ("login", 0, 10**9), ScoringContext())
        assert outcome.status == "applied", outcome
        assert record.counts["login"] == stored["counts"]["login"] + 1
        assert record.features.last_login == at
        again = decode_record(encode_record(record))
        assert again.to_dict() == record.to_dict()


def shape(value: Any) -> Any:
    """The format of a decoded JSON value: keys of objects (those of customer ids, event types,
    features and tickets stand for all) and types of the rest."""
    if isinstance(value, dict):
        if all(isinstance(v, (int, float)) for v in value.values()):
            return {"<name>": "number"} if value else {}
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return "number" if isinstance(value, (int, float)) else type(value).__name__


def test_the_newest_fixture_has_the_format_the_code_writes_now() -> None:
    now = [orjson.loads(encode_record(record)) for record in fixture_records()]
    newest = [orjson.loads(line) for line in FIXTURES[-1].read_bytes().splitlines()]
    assert [shape(r) for r in now] == [shape(r) for r in newest], (
        f"the stored record's format changed since {FIXTURES[-1].name}: add a fixture of the "
        "new one (records/stored_fixtures.py) and keep the old ones decoding"
    )
