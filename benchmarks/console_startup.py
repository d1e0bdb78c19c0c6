"""Start-up time: the text console's first prompt vs `python -c "import livekit.agents"`.

The anchor is measured in the same run, interleaved with the console, so machine load
affects both alike. The target: the first `you> ` prompt within 2.5x the anchor. Also timed:
`python -m agent --help`, which imports nothing heavy.

    uv run python -m benchmarks.console_startup            # 5 rounds
    uv run python -m benchmarks.console_startup --quick    # 2 rounds

The console runs with nothing configured (no keys, no server) in a fresh temporary directory,
so it opens the SQLite checkpointer, Qdrant Edge and the demo PMS the way a first run does;
the timer stops at the first prompt, then the console is sent end-of-input.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROMPT = b"you> "
TARGET_RATIO = 2.5


def _env(data_dir: Path) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    return {**env, "DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)}


def _timed(args: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(args, env=env, cwd=cwd, check=True, capture_output=True, timeout=300)
    return time.perf_counter() - started


def _first_prompt(env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    console = subprocess.Popen(
        [sys.executable, "-m", "agent", "console", "--text"],
        env=env,
        cwd=cwd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert console.stdout is not None and console.stdin is not None
    seen = b""
    try:
        while PROMPT not in seen:
            chunk = console.stdout.read1(4096)
            if not chunk:
                raise RuntimeError("the console exited before its first prompt")
            seen += chunk
        elapsed = time.perf_counter() - started
        console.stdin.close()  # end of input: the console exits on its own
        console.wait(timeout=120)
    finally:
        if console.poll() is None:
            console.kill()
            console.wait()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds instead of 5")
    args = parser.parse_args()
    rounds = 2 if args.quick else 5
    anchor: list[float] = []
    console: list[float] = []
    help_: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        for round_ in range(rounds):
            env = _env(cwd / f"data-{round_}")
            anchor.append(_timed([sys.executable, "-c", "import livekit.agents"], env, cwd))
            console.append(_first_prompt(env, cwd))
            help_.append(_timed([sys.executable, "-m", "agent", "--help"], env, cwd))
    a, c, h = (statistics.median(x) for x in (anchor, console, help_))
    print(f"console start-up, {rounds} rounds (median seconds)")
    print(f"{'measurement':<42} {'median':>8} {'min':>8} {'max':>8}")
    for name, values in (
        ('anchor: python -c "import livekit.agents"', anchor),
        ("python -m agent console --text: first prompt", console),
        ("python -m agent --help", help_),
    ):
        print(f"{name:<42} {statistics.median(values):8.2f} {min(values):8.2f} {max(values):8.2f}")
    ratio = c / a
    verdict = "meets" if ratio <= TARGET_RATIO else "misses"
    print(f"first prompt / anchor = {ratio:.2f}x ({verdict} the {TARGET_RATIO}x target)")
    print(f"--help / anchor = {h / a:.2f}x")


if __name__ == "__main__":
    main()
