"""Summarise a py-spy profile (collapsed stacks, ``py-spy record --format raw``).

Prints, for the frames whose function or file matches any ``--match``, the share of samples in
which the frame appears (inclusive: the frame or anything it called), so "where does an order's
time go" reads as a short table instead of a flame graph::

    .venv/bin/python bench/profile.py profiles/sqlite-w1-createQrOrder.txt --top 40
    .venv/bin/python bench/profile.py profiles/x.txt --match stablegate --match sqlalchemy

Idle samples (the event loop waiting in ``select``/``epoll``) are counted apart, so the shares are
of the time the process was busy.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

# py-spy frames look like "function (path/to/file.py:123)".
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")
_IDLE = ("select (selectors.py", "epoll", "_run_once (asyncio/base_events.py")


def frame_name(frame: str) -> str:
    """``function (file)`` without the line number, with site-packages paths shortened."""
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "lib/python3.11/", "src/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['func']} ({path})"


def summarise(path: Path) -> tuple[int, int, Counter[str], Counter[str]]:
    """Total samples, idle samples, inclusive and exclusive counts per frame."""
    inclusive: Counter[str] = Counter()
    exclusive: Counter[str] = Counter()
    total = idle = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [frame_name(f) for f in stack.split(";") if f.strip()]
        total += count
        if frames and any(mark in frames[-1] for mark in _IDLE):
            idle += count
            continue
        for name in set(frames):
            inclusive[name] += count
        if frames:
            exclusive[frames[-1]] += count
    return total, idle, inclusive, exclusive


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--match", action="append", default=[], help="substring of the frame")
    args = parser.parse_args()
    total, idle, inclusive, exclusive = summarise(args.profile)
    busy = total - idle
    print(f"{args.profile}: {total} samples, {idle} idle, {busy} busy")
    if busy == 0:
        return 0
    print(f"\n{'incl %':>7} {'self %':>7}  frame (shares of the busy samples)")
    shown = 0
    for name, count in inclusive.most_common():
        if args.match and not any(m in name for m in args.match):
            continue
        print(f"{100 * count / busy:7.1f} {100 * exclusive[name] / busy:7.1f}  {name}")
        shown += 1
        if shown >= args.top:
            break
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
