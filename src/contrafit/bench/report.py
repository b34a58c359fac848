"""Aggregate cell results into results.json and a markdown report (mean ± std over seeds)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

METRICS = ("accuracy", "macro_f1", "mcc")


def _mean_std(xs: list[float]) -> tuple[float, float]:
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def summarize(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (task, recipe, shots, noise) with mean, std, worst seed and median times."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in results:
        groups[(r["task"], r["recipe"], r["shots"], r["noise"])].append(r)
    rows = []
    for (task, recipe, shots, noise), rs in groups.items():
        row = {"task": task, "recipe": recipe, "shots": shots, "noise": noise, "seeds": len(rs)}
        for m in METRICS:
            row[f"{m}_mean"], row[f"{m}_std"] = _mean_std([r[m] for r in rs])
        worst = min(rs, key=lambda r: r["accuracy"])
        row["worst_accuracy"], row["worst_seed"] = worst["accuracy"], worst["seed"]
        row["train_seconds_median"] = statistics.median(r["train_seconds"] for r in rs)
        row["predict_seconds_median"] = statistics.median(r["predict_seconds"] for r in rs)
        rows.append(row)
    return rows


def inference_markdown(results: list[dict[str, Any]]) -> list[str]:
    """Mean accuracy of each inference mode per recipe (modes scored on the same trained models)."""
    by: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in results:
        for mode, acc in r.get("accuracy_by_inference", {}).items():
            by[(r["recipe"], mode)].append(acc)
    if not by:
        return []
    modes = sorted({m for _, m in by})
    recipes = list(dict.fromkeys(r for r, _ in by))
    out = [
        "",
        "## Inference modes: mean accuracy (%), each mode scored on the same trained models",
        "",
        "| recipe | cells | " + " | ".join(modes) + " |",
        "|---" * (len(modes) + 2) + "|",
    ]
    for rec in recipes:
        vals = [
            f"{100 * statistics.fmean(by[(rec, m)]):.1f}" if (rec, m) in by else "–" for m in modes
        ]
        out.append(f"| {rec} | {len(by[(rec, 'head')])} | " + " | ".join(vals) + " |")
    return out


def markdown(
    rows: list[dict[str, Any]], title: str, notes: list[str] = (), extra: list[str] = ()
) -> str:
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    recipes = list(dict.fromkeys(r["recipe"] for r in rows))
    by = {(r["task"], r["recipe"]): r for r in rows if r["noise"] == 0.0}
    out = [f"# {title}", "", *notes, ""]
    out += ["## Accuracy (%), mean ± std over seeds; best per task in bold", ""]
    out += ["| recipe | " + " | ".join(tasks) + " | mean |", "|---" * (len(tasks) + 2) + "|"]
    best = {
        t: max((by[(t, r)]["accuracy_mean"] for r in recipes if (t, r) in by), default=None)
        for t in tasks
    }
    for rec in recipes:
        cells, means = [], []
        for t in tasks:
            row = by.get((t, rec))
            if row is None:
                cells.append("–")
                continue
            text = f"{100 * row['accuracy_mean']:.1f} ± {100 * row['accuracy_std']:.1f}"
            cells.append(f"**{text}**" if row["accuracy_mean"] == best[t] else text)
            means.append(row["accuracy_mean"])
        mean = f"{100 * statistics.fmean(means):.1f}" if len(means) == len(tasks) else "–"
        out.append(f"| {rec} | " + " | ".join(cells) + f" | {mean} |")
    out += ["", "## Per task: macro-F1, MCC, worst seed, median times", ""]
    out += [
        "| task | recipe | macro-F1 | MCC | worst seed (acc) | train s | predict s |",
        "|---" * 7 + "|",
    ]
    for r in rows:
        out.append(
            f"| {r['task']} | {r['recipe']} | {100 * r['macro_f1_mean']:.1f} ± {100 * r['macro_f1_std']:.1f} "
            f"| {r['mcc_mean']:.3f} | {r['worst_seed']} ({100 * r['worst_accuracy']:.1f}) "
            f"| {r['train_seconds_median']:.1f} | {r['predict_seconds_median']:.1f} |"
        )
    out += list(extra)
    return "\n".join(out) + "\n"
