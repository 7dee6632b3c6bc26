"""A worker's per-customer aggregates, counted again from the stored records (what it does
after a rebalance), equal those its events counted."""

from __future__ import annotations

import orjson

from churnstream.models.replay import replay
from churnstream.models.scoring import CustomerRecord, ScoringContext, restore
from churnstream.schemas.events import parse_event_dict
from churnstream.streams.simulation import simulate


def stored(record: CustomerRecord) -> CustomerRecord:
    """The record as a worker reads it back from its store."""
    return CustomerRecord.from_dict(orjson.loads(orjson.dumps(record.to_dict())))


def test_recounting_the_stored_customers_gives_what_their_events_counted() -> None:
    ctx = ScoringContext()
    result = replay([parse_event_dict(e) for e in simulate(150, 120, seed=5)], ctx)
    business = result.business
    before = business.report()
    accounts = {c: list(a) for c, a in business.accounts.items()}
    assert before["customers"] == 150 and len(before["bands"]) >= 2 and accounts

    business.forget_customers()
    assert business.report()["customers"] == 0 and not business.accounts
    assert business.report()["nps_answers"] == before["nps_answers"] > 0  # kept
    for record in result.records.values():
        restore(business, stored(record), ctx)
    after = business.report()
    assert business.accounts == accounts
    assert after == before
