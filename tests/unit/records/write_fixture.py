"""Print, one JSON line each, the stored records of six simulated customers as the churnstream
on the import path writes them (`to_dict` through orjson, what `streams.stored` stores).

Run it against the version whose format you keep (from the repository's root):

    root=$PWD; rm -rf /tmp/v; mkdir -p /tmp/v/churnstream
    git archive <commit> models schemas streams | tar -x -C /tmp/v/churnstream
    (cd /tmp && PYTHONPATH=/tmp/v "$root/.venv/bin/python" "$root/tests/unit/records/write_fixture.py") \\
        > tests/unit/records/<date>-<commit>.jsonl

(`PYTHONPATH` puts that version's packages before the checkout's editable install.)
"""

import sys

import orjson

from churnstream.models.replay import replay
from churnstream.schemas.events import parse_event_dict
from churnstream.streams.simulation import simulate


def main() -> None:
    events = [parse_event_dict(e) for e in simulate(customers=6, days=75, seed=11)]
    records = replay(events).records
    for customer in sorted(records):
        sys.stdout.write(orjson.dumps(records[customer].to_dict()).decode() + "\n")


if __name__ == "__main__":
    main()
