"""Generate the JSON Schema files in `schemas/json/` from the pydantic models.

Run `python -m churnstream.schemas.jsonschema` after changing a model; a test fails while
the committed files are stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter

from churnstream.schemas.events import EVENT_MODELS, Event
from churnstream.schemas.records import DeadLetter, RiskChange

SCHEMA_DIR = Path(__file__).parent / "json"


def _schema(model: type[BaseModel] | TypeAdapter[Any], title: str) -> dict[str, Any]:
    if isinstance(model, TypeAdapter):
        schema = model.json_schema(mode="validation")
    else:
        schema = model.model_json_schema(mode="validation")
    schema["title"] = title
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def all_schemas() -> dict[str, dict[str, Any]]:
    """File name -> schema, for every event type, the event union and the output records."""
    out = {
        f"{name}.schema.json": _schema(model, model.__name__)
        for name, model in EVENT_MODELS.items()
    }
    out["event.schema.json"] = _schema(TypeAdapter(Event), "Event")
    out["risk-change.schema.json"] = _schema(RiskChange, "RiskChange")
    out["dead-letter.schema.json"] = _schema(DeadLetter, "DeadLetter")
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in all_schemas().items():
        path = directory / name
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else SCHEMA_DIR
    for p in write(target):
        print(p)
