"""How right are self-training's pseudo-labels, by pick and by teacher? (issue 9)

Self-training (a ``data: pseudo`` phase) labels a sample of the task's unlabeled text with the
model so far and keeps the texts it is surest of. Here the pool is a task's full train file, so
its own labels can score those picks. On each split of ``powered-fresh.yaml``'s design (seeds
61-66 by default, which none of its rounds draws), the default trains once; it then labels a
seeded 2,000-text sample of the pool (the split's train, dev, held-out dev and test texts
removed) with two teachers:

- ``head``: the softmax of the linear head;
- ``inference``: the run's inference mode (the default's class-balanced logistic regression on
  the labeled texts' embeddings);

and picks ``per_class`` texts each way (``contrafit.training.pseudo.PICKS``):

- ``per_class``: the most confident texts of each predicted class;
- ``confident``: the same quota, only among the 2 · per_class · classes surest texts.

    python benchmarks/pseudo_labels.py --output benchmarks/pseudo-labels          # ~10 min
    python benchmarks/pseudo_labels.py --output benchmarks/pseudo-labels --lane 0 --lanes 2

One JSON file per split; runs resume and share work in lanes (``fresh_splits.py``).
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import numpy as np
import torch

from contrafit.classifier import ContrafitClassifier
from contrafit.training.pseudo import PICKS, sample_texts

sys.path.insert(0, str(Path(__file__).parent))
import fresh_splits  # noqa: E402
from fresh_splits import TASKS, TORCH_MASKS  # noqa: E402

POOL = 2000
QUOTAS = (16, 48)
TEACHERS = {"head": "head", "inference": None}  # None: the model's own inference mode


def score_split(task: str, seed: int) -> dict:
    splits = fresh_splits.load(task, seed)
    clf = ContrafitClassifier(None, "default", seed=seed, overrides=TORCH_MASKS, progress=False)
    clf.fit(splits.train, dev=splits.dev)
    truth_of = dict(zip(splits.unlabeled.texts, splits.unlabeled.labels, strict=True))
    known = set(splits.train.texts)
    # the sample search/pairs-lp-scl-self-train.yaml's phase draws: seed + its index (3)
    pool = sample_texts([t for t in splits.unlabeled.texts if t not in known], POOL, seed + 3)
    truth = torch.tensor(clf.label_map_.encode([truth_of[t] for t in pool]))
    row: dict = {"task": task, "seed": seed, "pool": len(pool)}
    for teacher, mode in TEACHERS.items():
        probs = torch.from_numpy(clf.predict_proba(pool, inference=mode))
        row[teacher] = {"all": float((probs.argmax(-1) == truth).float().mean())}
        for pick, choose in PICKS.items():
            for k in QUOTAS:
                rows, labels = choose(probs, k)
                right = (torch.tensor(labels) == truth[rows]).float()
                counts = np.bincount(labels, minlength=probs.shape[1])
                row[teacher][f"{pick}-{k}"] = {
                    "n": len(rows),
                    "right": float(right.mean()),
                    "fewest_in_a_class": int(counts.min()),
                    "worst_class_right": min(
                        float(right[torch.tensor(labels) == c].mean())
                        for c in range(probs.shape[1])
                        if counts[c]
                    ),
                }
    return row


def _mean(rows: list[dict], teacher: str, pick: str, k: int, key: str) -> float:
    return statistics.mean(r[teacher][f"{pick}-{k}"][key] for r in rows)


def report(rows: list[dict]) -> str:
    lines = [
        "# Pseudo-labels scored by the pool's own labels",
        "",
        f"`python benchmarks/pseudo_labels.py`: {len(rows)} splits of `powered-fresh.yaml`'s "
        f"design; the default's model labels {POOL:,} pool texts per split. Means over splits: "
        "share right, texts picked, and the share right in the worst class.",
        "",
        "| task | teacher | all pool texts right | "
        + " | ".join(f"{pick}, {k}/class" for pick in PICKS for k in QUOTAS)
        + " |",
        "|---|---|---|" + "---|" * (len(PICKS) * len(QUOTAS)),
    ]
    for task in TASKS:
        mine = [r for r in rows if r["task"] == task]
        if not mine:
            continue
        for teacher in TEACHERS:
            cells = [
                f"{100 * _mean(mine, teacher, p, k, 'right'):.1f} % of "
                f"{_mean(mine, teacher, p, k, 'n'):.0f} (worst class "
                f"{100 * _mean(mine, teacher, p, k, 'worst_class_right'):.0f} %)"
                for p in PICKS
                for k in QUOTAS
            ]
            everything = 100 * statistics.mean(r[teacher]["all"] for r in mine)
            lines.append(
                f"| {task} ({len(mine)}) | {teacher} | {everything:.1f} % | "
                + " | ".join(cells)
                + " |"
            )
    return "\n".join([*lines, ""])


def main() -> None:
    args = fresh_splits.parser(__doc__.split("\n\n")[0]).parse_args()
    fresh_splits.run(args, score_split, report)


if __name__ == "__main__":
    main()
