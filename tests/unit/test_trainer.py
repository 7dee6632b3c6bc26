"""The trainer's bookkeeping: a restart from a published model learns nothing twice."""

from __future__ import annotations

import orjson

from churnstream.models.churn import ChurnModel
from churnstream.models.scoring import CustomerRecord, ScoringContext, step
from churnstream.schemas.events import parse_event_dict
from churnstream.streams.learning_messages import cancel_message, snapshot_message
from churnstream.streams.settings import Settings
from churnstream.streams.simulation import simulate
from churnstream.streams.trainer import Trainer, new_learner


def messages() -> list[bytes]:
    """What the workers would publish for a simulated history (the step the worker and the
    replay share), in event-time order."""
    out: list[bytes] = []
    events = sorted(
        (parse_event_dict(e) for e in simulate(customers=80, days=150, seed=12)),
        key=lambda e: (e.ts, e.event_id),
    )
    ctx = ScoringContext()
    records: dict[str, CustomerRecord] = {}
    for e in events:
        rec = records.setdefault(e.customer_id, CustomerRecord.new(e.customer_id))
        outcome = step(rec, e, None, ctx)
        if outcome.snapshot is not None:
            out.append(snapshot_message(outcome.snapshot))
        if outcome.cancelled_at is not None:
            out.append(cancel_message(e.customer_id, outcome.cancelled_at))
    return out


def test_a_restarted_trainer_ends_with_the_uninterrupted_model() -> None:
    settings = Settings(churn_min_examples=50)
    msgs = messages()
    assert len(msgs) > 3000
    cut = len(msgs) // 2

    whole = Trainer(settings, new_learner(settings))
    for offset, raw in enumerate(msgs):
        whole.feed(offset, raw)
        if offset == cut:
            saved = orjson.loads(whole.model_message())

    # The restart: the saved model, pending snapshots rebuilt from `replay_from`, then on.
    restarted = Trainer(settings, new_learner(settings))
    restarted.learner.model = ChurnModel.from_json(saved["model"])
    assert saved["replay_from"] < saved["offset"] == cut + 1
    for offset in range(saved["replay_from"], saved["offset"]):
        assert restarted.feed(offset, msgs[offset], learn=False) == 0
    for offset in range(saved["offset"], len(msgs)):
        restarted.feed(offset, msgs[offset])

    assert whole.learner.model.examples > 1000
    assert restarted.learner.model.to_json() == whole.learner.model.to_json()
    assert len(restarted.learner.labeler) == len(whole.learner.labeler)


def test_a_snapshot_delivered_twice_is_learned_once() -> None:
    settings = Settings(churn_min_examples=1)
    msgs = messages()[:2000]
    once, twice = (Trainer(settings, new_learner(settings)) for _ in range(2))
    for offset, raw in enumerate(msgs):
        once.feed(offset, raw)
    for offset, raw in enumerate(msgs):
        twice.feed(2 * offset, raw)
        twice.feed(2 * offset + 1, raw)  # a worker redelivered it
    assert once.learner.model.examples == twice.learner.model.examples > 0
    assert once.learner.model.to_json() == twice.learner.model.to_json()
