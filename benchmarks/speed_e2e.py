"""End to end only (speed.py's last table, in minutes instead of speed.py's 45): the default, the
default with ``--set`` variants, and SetFit train on mr 16-42 and predict its 2,000 test texts,
each in a fresh process, repeats interleaved; prints the wall-time ratios to SetFit.

    python benchmarks/speed_e2e.py --output benchmarks/speed/e2e-label-texts.json \\
        --variant recipe.label_texts.copies=0 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from speed import end_to_end


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, help="a .json file for the runs")
    parser.add_argument(
        "--variant", action="append", default=[], help="a --set KEY=VALUE run of ours beside it"
    )
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")

    from contrafit.io import atomic_write_json

    sides = [("ours", ()), *(("ours", (v,)) for v in args.variant), ("setfit", ())]
    # interleaved: a slow spell of the machine lands on every side, not on one
    runs = [
        end_to_end(who, extra=x) | {"repeat": i} for i in range(args.repeats) for who, x in sides
    ]
    atomic_write_json(Path(args.output), {"runs": runs})
    walls: dict[str, list[float]] = {}
    for run in runs:
        walls.setdefault(run["who"], []).append(run["wall_seconds"])
    setfit = statistics.median(walls["setfit"])
    for who, values in walls.items():
        wall = statistics.median(values)
        acc = [r["accuracy"] for r in runs if r["who"] == who][0]
        print(
            json.dumps(
                {
                    "who": who,
                    "wall_s": round(wall, 1),
                    "ratio": round(wall / setfit, 3),
                    "accuracy": round(acc, 4),
                    "walls": [round(w, 1) for w in values],
                }
            )
        )


if __name__ == "__main__":
    main()
