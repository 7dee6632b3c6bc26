"""The Prometheus rules and the Grafana dashboard name only metrics churnstream exports (its
own and its processes' `process_*` and `python_*` series)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from churnstream.streams.metrics import RelayMetrics, WorkerMetrics, process_registry
from churnstream.streams.trainer import TrainerMetrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
METRIC = re.compile(r"\b((?:churnstream|process|python)_[a-z0-9_]+)")
RECORDED = re.compile(r"\bchurnstream:[a-z0-9_:]+")


def exported() -> set[str]:
    """Every sample name the worker, the relay and the trainer can expose (with _total,
    _bucket, ...)."""
    registry = process_registry()
    WorkerMetrics.create(registry)
    RelayMetrics.create(registry)
    TrainerMetrics.create(registry)
    names = set()
    for family in registry.collect():
        names.add(family.name)
        kind_suffixes = {
            "counter": ["_total", "_created"],
            "histogram": ["_bucket", "_sum", "_count", "_created"],
        }.get(family.type, [])
        names.update(family.name + s for s in kind_suffixes)
    return names


def dashboard_queries() -> list[tuple[str, str]]:
    dash = json.loads((DEPLOY / "grafana" / "dashboards" / "churnstream.json").read_text())
    return [
        (panel["title"], target["expr"])
        for panel in dash["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]


def rules() -> list[dict[str, str]]:
    groups = yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def recorded() -> set[str]:
    """The series the recording rules make (`churnstream:<rate>:fleet`, ...)."""
    return {rule["record"] for rule in rules() if "record" in rule}


def test_every_dashboard_query_names_exported_metrics() -> None:
    queries = dashboard_queries()
    assert len(queries) >= 25
    known, made = exported(), recorded()
    for title, expr in queries:
        names, rule_names = set(METRIC.findall(expr)), set(RECORDED.findall(expr))
        assert names | rule_names, f"{title}: no churnstream metric in {expr}"
        assert names <= known, f"{title}: unknown {names - known}"
        assert rule_names <= made, f"{title}: no rule records {rule_names - made}"


def test_the_dashboard_does_not_average_workers_rates() -> None:
    """A rate averaged over workers weighs a worker with 10 answers like one with 10,000: the
    customer-success panels show the recording rules that divide sums over workers."""
    assert {
        title: expr for title, expr in dashboard_queries() if re.search(r"\bavg\s*\(", expr)
    } == {}
    shown = {name for _, expr in dashboard_queries() for name in RECORDED.findall(expr)}
    assert {"churnstream:nps:fleet", "churnstream:csat:fleet"} <= shown


def test_every_rule_names_exported_metrics() -> None:
    known, made = exported(), recorded()
    for rule in rules():
        assert set(METRIC.findall(rule["expr"])) <= known, rule["expr"]
        assert set(RECORDED.findall(rule["expr"])) <= made, rule["expr"]


def test_no_metric_label_could_carry_a_customer_id() -> None:
    registry = CollectorRegistry()
    WorkerMetrics.create(registry)
    RelayMetrics.create(registry)
    for collector in list(registry._collector_to_names):
        labels = getattr(collector, "_labelnames", ())
        assert not {"customer", "customer_id", "user_id"} & set(labels)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("promtool is missing: `make test` installs Debian's prometheus package")
    return subprocess.run([tool, *args], capture_output=True, text=True, check=False)


def test_prometheus_config_and_rules_pass_promtool() -> None:
    done = promtool("check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_alert_rules_unit_tests_pass() -> None:
    done = promtool("test", "rules", str(DEPLOY / "prometheus" / "tests" / "rules_test.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
