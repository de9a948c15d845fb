"""Summarise a py-spy raw (collapsed stacks) profile: where the consume loop spends its time.

    .venv/bin/python bench/profile_summary.py profile.raw [--root FeedConsumer.run] [--top 25]

Prints, for the samples under the root frame, the share of time inclusive of
callees per function (file:function), the biggest first. py-spy writes the raw
format with `py-spy record -f raw`; bench/run.py --profile does that for one
consume worker.
"""

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>[^ ]+) \((?P<file>[^:)]+)(?::\d+)?\)$")


def _label(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{path}:{match['func']}"


def _is(frame: str, name: str) -> bool:
    func = frame.split(" (", 1)[0]
    return func == name or func.endswith("." + name)


def summarise(path: Path, *, root: str = "FeedConsumer.run") -> tuple[int, list[tuple[str, int]]]:
    """(samples under root, [(function, inclusive samples)] biggest first)."""
    inclusive: Counter = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        frames = stack.split(";")
        index = next((i for i, f in enumerate(frames) if _is(f, root)), None)
        if index is None:
            continue
        count = int(count_text)
        total += count
        for label in {_label(f) for f in frames[index:]}:
            inclusive[label] += count
    return total, inclusive.most_common()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path", type=Path)
    parser.add_argument("--root", default="FeedConsumer.run")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    total, rows = summarise(args.path, root=args.root)
    print(f"{total} samples under {args.root}")
    for label, count in rows[: args.top]:
        print(f"{100 * count / max(total, 1):6.1f}%  {label}")


if __name__ == "__main__":
    main()
