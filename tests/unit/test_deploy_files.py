"""Deployment files: well formed, complete, and naming only settings churnstream knows."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from churnstream.streams.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
KNOWN = {f"CHURNSTREAM_{name.upper()}" for name in Settings.model_fields} | {
    "CHURNSTREAM_KAFKA_PORT"  # the local broker script's
}


def docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def env_names(text: str) -> set[str]:
    return set(re.findall(r"\b(CHURNSTREAM_[A-Z_]+?)(?:__[A-Z_]+)?\b(?=[=:\"' ])", text))


def test_compose_runs_the_whole_system() -> None:
    path = DEPLOY / "compose" / "docker-compose.yml"
    [compose] = docs(path)
    services = compose["services"]
    assert {
        "kafka",
        "topics",
        "worker-1",
        "worker-2",
        "slack-relay",
        "prometheus",
        "grafana",
    } <= set(services)
    assert services["worker-1"]["command"] == ["worker"]
    assert services["slack-relay"]["command"] == ["slack-relay"]
    # Each worker keeps its RocksDB state on its own volume.
    volumes = {services[w]["volumes"][0].split(":")[0] for w in ("worker-1", "worker-2")}
    assert len(volumes) == 2
    assert env_names(path.read_text()) <= KNOWN
    dockerfile = (DEPLOY / "compose" / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["churnstream"]' in dockerfile and "USER churnstream" in dockerfile


def test_kubernetes_manifests() -> None:
    kustomization = docs(DEPLOY / "k8s" / "kustomization.yaml")[0]
    objects = [d for f in kustomization["resources"] for d in docs(DEPLOY / "k8s" / f)]
    by_name = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    worker = by_name[("StatefulSet", "churnstream-worker")]["spec"]
    assert worker["replicas"] >= 2 and worker["volumeClaimTemplates"]
    [container] = worker["template"]["spec"]["containers"]
    assert {"readinessProbe", "livenessProbe", "resources"} <= set(container)
    assert ("StatefulSet", "churnstream-slack-relay") in by_name
    assert ("Job", "churnstream-topics") in by_name
    assert by_name[("Deployment", "churnstream-trainer")]["spec"]["replicas"] == 1
    assert ("Secret", "churnstream-secrets") in by_name
    for generator in kustomization["configMapGenerator"]:
        for entry in generator.get("files", []):
            assert (DEPLOY / "k8s" / entry.split("=")[-1]).is_file(), entry
        for literal in generator.get("literals", []):
            assert literal.split("=")[0] in KNOWN, literal
    text = "".join(p.read_text() for p in (DEPLOY / "k8s").glob("*.yaml"))
    assert env_names(text) <= KNOWN
