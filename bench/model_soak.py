"""The cache's model-based test, long: many hypothesis examples and random walks.

The suite runs tests/kafkacache/test_model.py bounded (3 examples, 2 walks of 20
steps); this runs the same machine against the real services with the bounds
raised, and prints what ran and how long it took. A failure prints the steps
(hypothesis) or the seed (a walk: MODEL_SEED=<seed>) that reproduce it.

    .venv/bin/python bench/model_soak.py [--examples 25] [--walks 10] [--steps 60]
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=25)
    parser.add_argument("--walks", type=int, default=10)
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    env = dict(os.environ, MODEL_EXAMPLES=str(args.examples), MODEL_WALKS=str(args.walks), MODEL_STEPS=str(args.steps))
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/kafkacache/test_model.py", "-q", "-p", "no:logging", "--timeout=0"],
        cwd=ROOT,
        env=env,
        check=False,
    )
    seconds = time.monotonic() - began
    print(
        f"model soak: {args.examples} hypothesis examples of up to {args.steps // 2} steps,"
        f" {args.walks} walks of {args.steps} steps: {'passed' if done.returncode == 0 else 'FAILED'}"
        f" in {seconds:.0f} s"
    )
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
