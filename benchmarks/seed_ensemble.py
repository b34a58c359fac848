"""Would an ensemble of the default over training seeds pay? (issue 9)

On each split of ``powered-fresh.yaml``'s design (16 per class drawn from the full train files of
mr, cr and trec; a 16-per-class dev split training selects on; 200/200/50 held-out dev texts per
class no run sees), the default trains ``--members`` times with training seeds ``seed``,
``seed + 1000``, ...; every model scores the held-out dev texts, and so does the average of the
first n models' probabilities. The split stays fixed, so this separates the spread that training
noise causes (what an ensemble removes) from the spread between splits (what it cannot).

    python benchmarks/seed_ensemble.py --output benchmarks/seed-ensemble           # ~20 min
    python benchmarks/seed_ensemble.py --output benchmarks/seed-ensemble --lane 0 --lanes 2

One JSON file per split; runs resume and share work in lanes (``fresh_splits.py``).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

from contrafit.classifier import ContrafitClassifier

sys.path.insert(0, str(Path(__file__).parent))
import fresh_splits  # noqa: E402
from fresh_splits import TASKS, TORCH_MASKS  # noqa: E402


def run_split(task: str, seed: int, members: int) -> dict:
    splits = fresh_splits.load(task, seed)
    scored = splits.dev_holdout
    probs, single, seconds = [], [], []
    for m in range(members):
        clf = ContrafitClassifier(
            None, "default", seed=seed + 1000 * m, overrides=TORCH_MASKS, progress=False
        )
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
    parser = fresh_splits.parser(__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=3)
    args = parser.parse_args()
    fresh_splits.run(
        args,
        lambda task, seed: run_split(task, seed, args.members),
        lambda rows: report(rows, args.members),
    )


if __name__ == "__main__":
    main()
