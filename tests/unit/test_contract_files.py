"""The committed JSON Schema files and the AsyncAPI document match the code."""

from __future__ import annotations

from pathlib import Path

import yaml

from churnstream.schemas.jsonschema import SCHEMA_DIR, all_schemas, render
from churnstream.streams.settings import Settings

ASYNCAPI = Path(__file__).parents[2] / "schemas" / "asyncapi.yaml"


def test_json_schema_files_are_current() -> None:
    stale = [
        name
        for name, schema in all_schemas().items()
        if not (SCHEMA_DIR / name).exists() or (SCHEMA_DIR / name).read_text() != render(schema)
    ]
    assert not stale, f"run `python -m churnstream.schemas.jsonschema`; stale: {stale}"


def test_asyncapi_describes_every_topic_with_an_existing_schema() -> None:
    doc = yaml.safe_load(ASYNCAPI.read_text())
    assert doc["asyncapi"].startswith("3.")
    addresses = {ch["address"] for ch in doc["channels"].values()}
    s = Settings()
    wanted = set(s.event_topics().values()) | {s.topic("risk-changes"), s.topic("dead-letter")}
    assert wanted <= addresses
    for message in doc["components"]["messages"].values():
        ref = message["payload"]["$ref"]
        assert (ASYNCAPI.parent / ref).exists(), ref
