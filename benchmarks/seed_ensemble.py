"""Would an ensemble of the default over training seeds pay? (issue 9)

On each split of ``powered-fresh.yaml``'s design (16 per class drawn from the full train files of
mr, cr and trec; a 16-per-class dev split training selects on; 200/200/50 held-out dev texts per
class no run sees), the default trains ``--members`` times with training seeds ``seed``,
``seed + 1000``, ...; every model scores the held-out dev texts, and so does the average of the
first n models' probabilities. The split stays fixed, so this separates the spread that training
noise causes (what an ensemble removes) from the spread between splits (what it cannot).

    python benchmarks/seed_ensemble.py --output benchmarks/seed-ensemble           # ~20 min
    python benchmarks/seed_ensemble.py --output benchmarks/seed-ensemble --lane 0 --lanes 2

One folder per run, one JSON file per split, written atomically: an interrupted run resumes, and
lanes (processes sharing the work) may run side by side. The report is rewritten after each split.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from contrafit.bench.config import build_grid, read_grid_file
from contrafit.classifier import ContrafitClassifier
from contrafit.io import atomic_write_json, atomic_write_text

GRID = Path(__file__).parent / "powered-fresh.yaml"
TASKS = ("mr", "cr", "trec")


def run_split(task: str, seed: int, members: int) -> dict:
    grid = build_grid(read_grid_file(GRID), str(GRID))
    splits = next(t for t in grid.tasks if t.name == task).load(16, seed)
    scored = splits.dev_holdout
    probs, single, seconds = [], [], []
    for m in range(members):
        clf = ContrafitClassifier(None, "default", seed=seed + 1000 * m, progress=False)
        start = time.perf_counter()
        clf.fit(splits.train, dev=splits.dev)
        seconds.append(time.perf_counter() - start)
        p = clf.predict_proba(scored)
        truth = np.array(clf.label_map_.encode(scored.labels))
        probs.append(p)
        single.append(float((p.argmax(1) == truth).mean()))
    averaged = {
        str(n): float((np.mean(probs[:n], 0).argmax(1) == truth).mean())
        for n in range(1, members + 1)
    }
    return {"task": task, "seed": seed, "single": single, "ensemble": averaged, "seconds": seconds}


def report(rows: list[dict], members: int) -> str:
    pct = 100.0
    lines = [
        "# Ensembles over training seeds, held-out dev accuracy",
        "",
        f"`python benchmarks/seed_ensemble.py`: {len(rows)} splits of `powered-fresh.yaml`'s design, "
        f"{members} training seeds each.",
        "",
        "| task | splits | one model | spread between seeds, one split | spread between splits "
        "(first seed) | "
        + " | ".join(f"{n} averaged − mean of their singles" for n in range(2, members + 1))
        + " |",
        "|---|---|---|---|---|" + "---|" * (members - 1),
    ]
    for task in (*TASKS, "all"):
        mine = [r for r in rows if task in (r["task"], "all")]
        if len(mine) < 2:
            continue
        one = statistics.mean(statistics.mean(r["single"]) for r in mine)
        within = statistics.mean(statistics.pstdev(r["single"]) for r in mine)
        between = statistics.stdev(r["single"][0] for r in mine) if task != "all" else None
        gains = [
            statistics.mean(r["ensemble"][str(n)] - statistics.mean(r["single"][:n]) for r in mine)
            for n in range(2, members + 1)
        ]
        lines.append(
            f"| {task} | {len(mine)} | {pct * one:.1f} | {pct * within:.2f} | "
            + (f"{pct * between:.2f}" if between is not None else "–")
            + " | "
            + " | ".join(f"{pct * g:+.2f}" for g in gains)
            + " |"
        )
    per_model = statistics.median(s for r in rows for s in r["seconds"])
    lines += ["", f"Median train s per model (this run's threads): {per_model:.1f}.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", required=True)
    parser.add_argument("--seeds", default="61,62,63,64,65,66")
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--lane", type=int, default=0)
    parser.add_argument("--lanes", type=int, default=1)
    args = parser.parse_args()
    out = Path(args.output)
    (out / "splits").mkdir(parents=True, exist_ok=True)
    cells = [(t, int(s)) for s in args.seeds.split(",") for t in TASKS]
    for i, (task, seed) in enumerate(cells):
        dst = out / "splits" / f"{task}-{seed}.json"
        if i % args.lanes != args.lane or dst.exists():
            continue
        row = run_split(task, seed, args.members)
        atomic_write_json(dst, row)
        print(task, seed, row["single"], row["ensemble"], flush=True)
        rows = [json.loads(p.read_text()) for p in sorted((out / "splits").glob("*.json"))]
        atomic_write_text(out / "report.md", report(rows, args.members))


if __name__ == "__main__":
    main()
