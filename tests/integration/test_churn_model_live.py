"""Two workers and the trainer on the real broker: the model learns, is published, and both
workers score with its version; the customer-success counts the two export add up to the
whole stream's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from churnstream.models.replay import replay
from churnstream.schemas.events import parse_event_dict
from churnstream.streams.demo import samples, scrape, total
from churnstream.streams.metrics import MONTH_SUMS
from churnstream.streams.producing import produce_events
from churnstream.streams.settings import Settings
from churnstream.streams.simulation import simulate
from churnstream.streams.topics import create_topics
from churnstream.streams.trainer import latest_model
from harness import REPO, free_port, http_json, settings_env, wait_for


def start_trainer(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "churnstream.streams.cli", "trainer"],
        env=settings_env(settings),
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )


def test_two_workers_and_the_trainer_learn_publish_and_score(  # type: ignore[no-untyped-def]
    make_settings, start_worker, tmp_path: Path
) -> None:
    common = {
        "churn_min_examples": 100,
        "trainer_publish_examples": 300,
        "trainer_publish_seconds": 2.0,
        "trainer_metrics_port": free_port(),
    }
    first = make_settings(**common, data_dir=tmp_path / "w1")
    create_topics(first)
    second = Settings(
        **first.model_dump(exclude_none=True)
        | {"web_port": free_port(), "data_dir": tmp_path / "w2"}
    )
    workers = [start_worker(first, name="w1"), start_worker(second, name="w2")]
    trainer = start_trainer(first, tmp_path / "trainer.log")
    try:
        events = list(simulate(customers=150, days=120, seed=8))
        produce_events(first, events)

        def published() -> dict | None:  # type: ignore[type-arg]
            model = latest_model(first, timeout_ms=2000)
            return model if model and model["model"]["version"] >= 2 else None

        model = wait_for(published, 300, "the trainer to publish a learned model", every=2)
        report = model["report"]
        assert report["examples"] >= 100 and report["positives"] > 0
        assert model["model"]["labels"]["positive"] == report["positives"]

        # Both workers load it and say which version they score with.
        def both_loaded() -> bool:
            versions = [w.metric("churnstream_worker_model_version") for w in workers]
            return all(v >= 2 for v in versions)

        wait_for(both_loaded, 60, "both workers to load the model")
        for w in workers:
            status, info = http_json(f"{w.url}/model")
            assert status == 200 and info["model_version"].startswith("churn-lr-v")
            status, weights = http_json(f"{w.url}/model/suggested-weights")
            assert status == 200 and abs(sum(weights["weights"].values()) - 1) < 1e-3
            assert weights["configured"]["activity"] == 0.25  # unchanged until a person acts

        # New events after the model arrived are scored with it, on whichever worker owns
        # the customer.
        ts = "2025-05-05T10:00:00Z"
        fresh = [
            {"event_id": f"late-{c}", "customer_id": f"cus_{c:06d}", "type": "login", "ts": ts}
            for c in range(150)
        ]
        produce_events(first, fresh)

        def scored() -> list | None:  # type: ignore[type-arg]
            bodies = [
                http_json(f"{workers[c % 2].url}/customers/cus_{c:06d}")[1]
                for c in range(0, 150, 7)
            ]
            ok = all(
                b and b.get("model_version", "") and b["model_version"].startswith("churn-lr-v")
                for b in bodies
            )
            return bodies if ok else None

        bodies = wait_for(scored, 60, "customers scored by the model")
        assert all(0 <= b["churn_probability"] <= 1 for b in bodies)
        assert len({b["churn_probability"] for b in bodies}) > 1

        # Each worker counts its own customers; the counts behind CSAT, NPS and trial
        # conversion, summed over the two, are the whole stream's (the recording rules in
        # deploy/prometheus/rules.yml divide those sums, not average the workers' rates).
        whole = replay([parse_event_dict(e) for e in events]).business.report()
        counts = ["csat_answers", "csat_satisfied", "nps_answers", "nps_promoters"]
        counts += ["nps_detractors", "trials_started", "trials_converted"]

        def pages() -> list[dict[str, float]]:
            return [scrape(f"{w.url}/metrics") for w in workers]

        def summed(found: list[dict[str, float]]) -> dict[str, float]:
            return {k: sum(page[f"churnstream_{k}_total"] for page in found) for k in counts}

        expected = {k: float(whole[k]) for k in counts}
        assert expected["nps_answers"] > 0 and expected["trials_started"] > 0

        def caught_up() -> list[dict[str, float]] | None:
            found = pages()
            return found if summed(found) == expected else None

        found = wait_for(caught_up, 60, f"the workers' counts to reach {expected}")
        fleet = summed(found)
        nps = 100 * (fleet["nps_promoters"] - fleet["nps_detractors"]) / fleet["nps_answers"]
        assert abs(nps - whole["nps"]) < 1e-9
        assert fleet["csat_satisfied"] / fleet["csat_answers"] == whole["csat"]
        assert all(page["churnstream_nps_answers_total"] > 0 for page in found)  # both count

        # The month sums, added up by month label over the two workers, are the stream's: the
        # logins of 5 May opened May on both, so the stream's last month, April, is the one
        # before on each, and both derive it from their customers' histories.
        april = max(whole["live_months"])
        assert april == "2025-04" and whole["months"][april]["churned_customers"] > 0
        expected_month = {k: whole["months"][april][k] for k in MONTH_SUMS}

        def months_added() -> dict[str, float] | None:
            found = [list(samples(f"{w.url}/metrics")) for w in workers]
            added = {
                k: sum(total(f, {f"churnstream_month_{k}": {"month": april}}) for f in found)
                for k in MONTH_SUMS
            }
            close = all(abs(added[k] - v) < 1e-6 for k, v in expected_month.items())
            return added if close else None

        wait_for(months_added, 30, f"the workers' April to add up to {expected_month}")

        # The trainer's /metrics: its own series and its process's (CPU, memory).
        trainer_metrics = scrape(f"http://127.0.0.1:{first.trainer_metrics_port}/metrics")
        assert trainer_metrics["churnstream_model_version"] >= 2
        assert trainer_metrics["process_cpu_seconds_total"] > 0
        assert trainer_metrics["process_resident_memory_bytes"] > 0
    finally:
        trainer.terminate()
        trainer.wait(30)
