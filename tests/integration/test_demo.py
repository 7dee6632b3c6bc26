"""The README's main command, small: broker, worker, relay, customers, summary."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from harness import REPO, free_port


def test_the_demo_runs_end_to_end_and_summarises(broker: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURNSTREAM_")}
    env |= {
        "CHURNSTREAM_WEB_PORT": str(free_port()),
        "CHURNSTREAM_RELAY_METRICS_PORT": str(free_port()),
        "CHURNSTREAM_BROKER": f"kafka://{broker}",
        "CHURNSTREAM_KAFKA_PORT": broker.rsplit(":", 1)[1],
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "churnstream.streams.cli",
            "demo",
            "--customers",
            "120",
            "--days",
            "75",
            "--keep-broker",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "6/6 summary" in out
    lines = {
        line.split(":", 1)[0].strip(): line.split(":", 1)[1]
        for line in out.splitlines()
        if ":" in line and line.startswith("     ") and not line.startswith("       ")
    }
    processed = int(lines["events processed"].split()[0].replace(",", ""))
    assert processed > 10_000
    assert lines["dead-lettered"].split()[0] == "10"  # the demo's malformed messages
    assert "of 120 customers" in lines["bands"]
    posted = int(lines["Slack relay"].split()[0].replace(",", ""))
    assert posted == int(lines["alerts published"].split()[0].replace(",", "")) > 0
    riskiest = out.split("riskiest customers now:")[1].split("churn model")[0].strip().splitlines()
    assert riskiest and all("drivers:" in line for line in riskiest)
    assert (REPO / "deploy" / "local" / "kafka").exists()
