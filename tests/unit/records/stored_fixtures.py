"""Customer records as versions of churnstream stored them, for the upgrade tests
(`tests/unit/test_stored_records_compat.py`, `tests/integration/test_upgrade_live.py`).

Run as a script, it prints, one JSON line each, the stored records of six simulated customers
as the churnstream on the import path writes them (`to_dict` through orjson, what
`streams.stored` stores). Run it against the version whose format you keep (from the
repository's root):

    root=$PWD; rm -rf /tmp/v; mkdir -p /tmp/v/churnstream
    git archive <commit> models schemas streams | tar -x -C /tmp/v/churnstream
    (cd /tmp && PYTHONPATH=/tmp/v "$root/.venv/bin/python" "$root/tests/unit/records/stored_fixtures.py") \\
        > tests/unit/records/<date>-<commit>.jsonl

(`PYTHONPATH` puts that version's packages before the checkout's editable install.)
"""

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from churnstream.models.replay import replay
from churnstream.schemas.events import parse_event_dict
from churnstream.streams.simulation import simulate

FIXTURES = sorted(Path(__file__).parent.glob("*.jsonl"))  # named <date>-<commit>: oldest first
DAY = 86_400.0


def fixture_records() -> list[Any]:
    """The six customers' records as the churnstream on the import path leaves them, in
    customer order (the lines of a fixture)."""
    events = [parse_event_dict(e) for e in simulate(customers=6, days=75, seed=11)]
    records = replay(events).records
    return [records[customer] for customer in sorted(records)]


def login_after(record: Any) -> dict[str, Any]:
    """A login of the record's customer a day after their latest event."""
    at = datetime.fromtimestamp(record.features.last_ts + DAY, tz=UTC).isoformat()
    customer = record.customer_id
    return {"event_id": f"up-{customer}", "customer_id": customer, "type": "login", "ts": at}


def main() -> None:
    for record in fixture_records():
        sys.stdout.write(orjson.dumps(record.to_dict()).decode() + "\n")


if __name__ == "__main__":
    main()
