"""deploy/local/kafka's checks that need no broker."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from churnstream.streams.demo import KAFKA_SCRIPT


def test_a_home_with_a_colon_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    """Java's class path and -Xlog split on ':', so such a home could never start a broker:
    every command says so instead of fetching jars or formatting storage there."""
    home = tmp_path / "kafka:home"
    env = {**os.environ, "CHURNSTREAM_KAFKA_HOME": str(home), "CHURNSTREAM_KAFKA_PORT": "1"}
    for command in ("up", "status", "down", "reset"):
        done = subprocess.run(
            [str(KAFKA_SCRIPT), command], env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 2, (command, done.stderr)
        assert (
            f"CHURNSTREAM_KAFKA_HOME must not contain ':' (Java splits its paths on it): {home}"
            in done.stderr
        )
    assert not home.exists()
