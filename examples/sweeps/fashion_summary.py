"""The Fashion-MNIST study's sweeps (fashion_study.sh) as Markdown tables with 95 % intervals.

For each point: the mean accuracy over its noise seeds, and a 95 % interval over seeds and
images, mean +- 1.96 * sqrt(p (1 - p) / N + s^2 / S), where N is the number of test images (a
sample of the test distribution), S the number of seeds and s^2 their sample variance (the
chip's noise). A noiseless point runs once and has only the image term. Also the measured
seconds per image of one bit-level evaluation, from the sweep's own timings.

Run from the repository root: python examples/sweeps/fashion_summary.py [DB...]
"""
from __future__ import annotations

import json
import math
import sqlite3
import statistics
import sys
from pathlib import Path

FOLDER = Path(__file__).resolve().parent / "fashion"


def interval(accuracies: list[float], images: int) -> tuple[float, float]:
    """(mean, half-width of the 95 % interval) over seeds and images."""
    mean = statistics.fmean(accuracies)
    seeds = statistics.variance(accuracies) / len(accuracies) if len(accuracies) > 1 else 0.0
    return mean, 1.96 * math.sqrt(mean * (1 - mean) / images + seeds)


def summarise(db: Path) -> str:
    with sqlite3.connect(db) as connection:
        meta = {key: json.loads(value) for key, value in connection.execute(
            "SELECT name, value FROM meta")}
        points = connection.execute("SELECT id, params FROM points WHERE valid = 1 ORDER BY id")
        points = [(point, json.loads(params)) for point, params in points]
        rows = connection.execute("SELECT point, accuracy, seconds FROM results "
                                  "WHERE status = 'done' ORDER BY point, seed").fetchall()
    images = meta["limit"]
    by_point: dict[int, list[float]] = {}
    timed = []
    for point, accuracy, seconds in rows:
        by_point.setdefault(point, []).append(accuracy)
        if seconds and seconds > 0.01:           # a noiseless point's repeats are not rerun
            timed.append(seconds / images)
    axes = meta["axes"]
    lines = [f"`{db.name}`: {meta['model']} on {meta['chip']}, {images} images of "
             f"{meta['data']}, {meta['seeds']} seed(s)",
             "",
             "| " + " | ".join(axes) + " | accuracy % | 95 % interval | seeds |",
             "|" + "---|" * len(axes) + "---:|---:|---:|"]
    for point, params in points:
        if point not in by_point:
            continue
        values = by_point[point]
        mean, half = interval(values, images)
        lines.append("| " + " | ".join(str(params[axis]) for axis in axes) +
                     f" | {100 * mean:.1f} | {100 * max(mean - half, 0):.1f}-"
                     f"{100 * min(mean + half, 1):.1f}"
                     f" | {len(values)} |")
    if timed:
        lines += ["", f"{len(timed)} bit-level runs, median {statistics.median(timed) * 1000:.0f} "
                      "ms per image (wall, on the shared machine)"]
    return "\n".join(lines)


def main() -> None:
    dbs = [Path(name) for name in sys.argv[1:]] or sorted(FOLDER.glob("*.db"))
    print("\n\n".join(summarise(db) for db in dbs))


if __name__ == "__main__":
    main()
