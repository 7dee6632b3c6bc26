"""Does this machine give two CPU-bound processes twice the work of one?

Runs `pure_step.py` (the scoring path, no Kafka, one core) alone, then N copies whose timed
loops start together, then alone again, for R rounds, and prints each copy's events/s, the
loops' overlap and the sum of the copies' rates over the mean of the two solo rates (a VM
whose speed drifts moves both sides alike). Two workers can reach twice one worker only
if this sum is near N; see docs/BENCHMARKS.md. Run from the repository root, nothing else
running:

    .venv/bin/python docs/profile/two_at_once.py 2 3     # N copies, R rounds
"""

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from churnstream.streams.bench import trained_model_message
from churnstream.streams.settings import Settings

SCRIPT = Path(__file__).with_name("pure_step.py")


def run(copies: int, model: Path) -> list[tuple[float, float, float]]:
    """(events/s, loop start, loop end) of each of `copies` runs whose loops start together."""
    with tempfile.TemporaryDirectory() as tmp:
        go = Path(tmp) / "go"
        procs = [
            subprocess.Popen(  # noqa: S603 (this interpreter and a script beside this one)
                [sys.executable, str(SCRIPT), "--model", str(model), "--go", str(go)],
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(copies)
        ]
        while len(list(Path(tmp).glob("go.ready-*"))) < copies:
            if any(p.poll() is not None for p in procs):
                msg = "a copy of pure_step.py exited before its loop"
                raise SystemExit(msg)
            time.sleep(0.05)
        go.touch()
        out = []
        for p in procs:
            text, _ = p.communicate()
            rate = float(re.search(r"([0-9.]+) events/s", text).group(1))
            start, end = map(float, re.search(r"loop ([0-9.]+) ([0-9.]+)", text).groups())
            out.append((rate, start, end))
        return out


def main() -> None:
    copies, rounds = int(sys.argv[1]), int(sys.argv[2])
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model.json"
        model.write_bytes(trained_model_message(Settings()))
        for r in range(1, rounds + 1):
            print(round_of(r, copies, model), flush=True)


def round_of(r: int, copies: int, model: Path) -> str:
    """One round: alone, `copies` at once, alone again."""
    ((before, _, _),) = run(1, model)
    together = run(copies, model)
    ((after, _, _),) = run(1, model)
    solo = (before + after) / 2
    first_end = min(end for _, _, end in together)
    last_start = max(start for _, start, _ in together)
    longest = max(end - start for _, start, end in together)
    overlap = max(0.0, first_end - last_start) / longest
    total = sum(rate for rate, _, _ in together)
    rates = ", ".join(f"{rate:.0f}" for rate, _, _ in together)
    return (
        f"round {r}: alone {before:.0f} and {after:.0f} events/s; {copies} at once {rates} "
        f"(loops overlap {overlap:.0%}); sum/alone {total / solo:.3f}"
    )


if __name__ == "__main__":
    main()
