"""Aggregate cell results into results.json and a markdown report (mean ± std over seeds)."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Callable
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


def inference_markdown(
    results: list[dict[str, Any]], key: str = "accuracy_by_inference", split: str = "test"
) -> list[str]:
    """Mean accuracy of each inference mode per recipe (modes scored on the same trained models)."""
    by: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in results:
        for mode, acc in (r.get(key) or {}).items():
            by[(r["recipe"], mode)].append(acc)
    if not by:
        return []
    modes = sorted({m for _, m in by})
    recipes = list(dict.fromkeys(r for r, _ in by))
    out = [
        "",
        f"## Inference modes: mean {split} accuracy (%), each mode scored on the same trained models",
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


def _column(task: str, shots: int | None, several_k: bool) -> str:
    """A table column: the task, or the task at K per class when the grid has several K
    (a task sampled by fraction has no K)."""
    return f"{task} K={shots}" if several_k and shots is not None else task


def _several_k(rows: list[dict[str, Any]]) -> bool:
    return len({r["shots"] for r in rows if r["shots"] is not None}) > 1


def _by_task_then_k(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows in the order of their tasks' first appearance, each task's rows by K."""
    order = {t: i for i, t in enumerate(dict.fromkeys(r["task"] for r in rows))}
    return sorted(rows, key=lambda r: (order[r["task"]], r["shots"] or 0))


def _table_columns(
    rows: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], Callable[[dict[str, Any]], str]]:
    """The rows in table order and the column of a row: one per task, or one per task and K
    when the rows hold several K (otherwise one K's rows would hide another's)."""
    several_k = _several_k(rows)
    ordered = _by_task_then_k(rows) if several_k else list(rows)
    return ordered, lambda r: _column(r["task"], r["shots"], several_k)


def markdown(
    rows: list[dict[str, Any]], title: str, notes: list[str] = (), extra: list[str] = ()
) -> str:
    ordered, column = _table_columns(rows)
    tasks = list(dict.fromkeys(column(r) for r in ordered))
    recipes = list(dict.fromkeys(r["recipe"] for r in rows))
    by = {(column(r), r["recipe"]): r for r in rows if r["noise"] == 0.0}
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
    for r in ordered:
        out.append(
            f"| {column(r)} | {r['recipe']} | {100 * r['macro_f1_mean']:.1f} ± {100 * r['macro_f1_std']:.1f} "
            f"| {r['mcc_mean']:.3f} | {r['worst_seed']} ({100 * r['worst_accuracy']:.1f}) "
            f"| {r['train_seconds_median']:.1f} | {r['predict_seconds_median']:.1f} |"
        )
    out += list(extra)
    return "\n".join(out) + "\n"


def phase_time_markdown(results: list[dict[str, Any]]) -> list[str]:
    """Median seconds of each training phase per recipe (multi-phase recipes show where time goes)."""
    by: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in results:
        for phase, sec in (r.get("phase_seconds") or {}).items():
            by[(r["recipe"], phase)].append(sec)
    if not by:
        return []
    out = ["", "## Time per phase: median seconds over cells", "", "| recipe | phase | cells | s |"]
    out.append("|---|---|---|---|")
    for (recipe, phase), secs in by.items():
        out.append(f"| {recipe} | {phase} | {len(secs)} | {statistics.median(secs):.1f} |")
    return out


def code_provenance(results: list[dict[str, Any]]) -> dict[str, int]:
    """How many cells each code version ran: commit (+ "with uncommitted changes"), or where a
    cell was restored from, or "not recorded" for cells older than the record."""
    counts: Counter[str] = Counter()
    for cell in results:
        code = cell.get("code") or {}
        if "restored_from" in code:
            name = f"restored from {code['restored_from']}"
        elif code.get("commit"):
            dirty = " with uncommitted changes" if code.get("uncommitted_changes") else ""
            name = f"commit {code['commit'][:10]}{dirty}"
        else:
            name = "not recorded"
        counts[name] += 1
    return dict(counts)


def _cell_hours(results: list[dict[str, Any]]) -> float:
    return sum(r["train_seconds"] + r["predict_seconds"] for r in results) / 3600


def write_report(
    results: list[dict[str, Any]],
    grid,
    out,
    wall_seconds: float,
    source: str | None = None,
    planned: int | None = None,
    cells_dir=None,
    failed: list[str] | None = None,
) -> str:
    """``out/results.json`` and ``out/report.md`` (both written atomically); returns the report.
    ``planned``: the grid's cell count, when ``results`` holds only the finished part of it.
    ``cells_dir``: where the cells' saved embeddings are, when not ``out/cells``.
    ``failed``: keys of cells whose run raised (left out of the tables)."""
    from pathlib import Path

    from contrafit.bench.compare import comparisons, comparisons_markdown
    from contrafit.bench.plots import draw_all
    from contrafit.io import atomic_write_json, atomic_write_text

    out = Path(out)
    rows = summarize(results)
    paired = comparisons(results, baselines=["ce", "setfit"])
    atomic_write_json(
        out / "results.json",
        {
            "cells": results,
            "summary": rows,
            "paired": paired,
            "wall_seconds": wall_seconds,
            "planned_cells": planned if planned is not None else len(results),
            "grid": {
                "source": source,
                "tasks": [t.name for t in grid.tasks],
                "recipes": grid.recipes,
                "seeds": grid.seeds,
                "shots": grid.shots,
                "label_noise": grid.noise,
                "model": grid.model,
                "overrides": grid.overrides,
                "dev_holdout": grid.dev_holdout,
                "dev_metric": grid.dev_metric,
            },
        },
    )
    count = f"{len(results)} cells"
    if planned is not None and planned > len(results):
        count = f"{len(results)} of {planned} cells (the others had not finished)"
    notes = [
        f"Model: {grid.model or 'default (all-MiniLM-L6-v2, offline)'}; grid "
        f"{'`' + source + '`' if source else 'from the command line'}; seeds "
        f"{', '.join(map(str, grid.seeds))}; {count}; this invocation took "
        f"{wall_seconds:.0f} s (finished cells are reused, not re-run); the cells' own train + "
        f"predict time adds up to {_cell_hours(results):.1f} h.",
    ]
    if failed:
        notes.append(
            f"**{len(failed)} cell(s) failed** and are left out: "
            + ", ".join(f"`{key}`" for key in failed)
            + " (each one's traceback is in cells/KEY/error.txt; re-running the command retries them)."
        )
    provenance = code_provenance(results)
    if len(provenance) > 1:  # a grid folder that gathered cells over several checkouts says so
        notes.append(
            "Cells by the code that ran them: "
            + "; ".join(f"{name}: {n}" for name, n in provenance.items())
            + " (each cell's `code` in results.json)."
        )
    figures = draw_all(results, out, Path(cells_dir) if cells_dir else out / "cells")
    extra = (
        dev_markdown(results, grid.dev_metric, grid.dev_baseline)
        + comparisons_markdown(paired)
        + inference_markdown(results)
        + inference_markdown(results, "dev_accuracy_by_inference", "dev")
        + noise_markdown(results)
        + phase_time_markdown(results)
        + (["", "## Figures", ""] + [f"![{p.stem}]({p.name})" for p in figures] if figures else [])
    )
    report = markdown(rows, "contrafit few-shot benchmark", notes, extra)
    atomic_write_text(out / "report.md", report)
    return report


def noise_markdown(results: list[dict[str, Any]]) -> list[str]:
    """Accuracy vs fraction of flipped training labels, per task and recipe (Gunel et al.)."""
    levels = sorted({r["noise"] for r in results})
    if len(levels) < 2:
        return []
    by: dict[tuple[str, str, float], list[float]] = defaultdict(list)
    for r in results:
        by[(r["task"], r["recipe"], r["noise"])].append(r["accuracy"])
    out = ["", "## Label noise: accuracy (%) vs fraction of flipped training labels", ""]
    out.append("| task | recipe | " + " | ".join(f"{x:g}" for x in levels) + " |")
    out.append("|---" * (len(levels) + 2) + "|")
    for task, recipe in dict.fromkeys((t, r) for t, r, _ in by):
        vals = [
            f"{100 * statistics.fmean(by[(task, recipe, x)]):.1f}"
            if (task, recipe, x) in by
            else "–"
            for x in levels
        ]
        out.append(f"| {task} | {recipe} | " + " | ".join(vals) + " |")
    return out


def _dev_score(r: dict[str, Any], metric: str) -> float | None:
    """The final model's dev ``metric``. For accuracy, cells from before it was recorded have the
    last phase's best-epoch dev metrics, which are the final model's (its weights are restored) in
    head mode."""
    if r.get(f"dev_{metric}") is not None:
        return r[f"dev_{metric}"]
    last = (r.get("best_dev") or [None])[-1]
    if metric == "accuracy" and last is not None and r.get("inference", "head") == "head":
        return last["accuracy"]
    return None


DEV_METRIC_NAMES = {"accuracy": "accuracy", "macro_f1": "macro-F1"}


def dev_markdown(
    results: list[dict[str, Any]], metric: str = "accuracy", baseline: str = "default"
) -> list[str]:
    """Mean dev ``metric`` of the final models per recipe: the only numbers a recipe search may
    use. With the grid's dev_holdout (or a task's holdout_per_class) it is measured on dev texts no
    training run selected on; a grid with the ``baseline`` recipe (the shipped ``default`` unless
    the grid names its incumbent) also gets each recipe's paired dev comparison against it."""
    key = f"dev_{metric}"
    scored = [
        {**r, key: score}
        for r in results
        if r["noise"] == 0.0 and (score := _dev_score(r, metric)) is not None
    ]
    by: dict[tuple[str, str], list[float]] = defaultdict(list)
    ordered, column = _table_columns(scored)
    for r in ordered:
        by[(r["recipe"], column(r))].append(r[key])
    if not by:
        return []
    tasks = list(dict.fromkeys(t for _, t in by))
    recipes = list(dict.fromkeys(r for r, _ in by))
    name = DEV_METRIC_NAMES[metric]
    out = ["", f"## Dev {name} (%) of the final models: what recipe selection may look at", ""]
    if any(r.get("n_dev_holdout") for r in results):
        out += [
            "Scored on each dev split's held-out part (`dev_holdout`, or a task's "
            "`holdout_per_class` texts drawn beside it): texts no training run picked its epoch "
            "or stopped on, so recipes that select on dev are not flattered.",
            "",
        ]
    out += ["| recipe | " + " | ".join(tasks) + " | mean |", "|---" * (len(tasks) + 2) + "|"]
    for rec in recipes:
        means = [statistics.fmean(by[(rec, t)]) if (rec, t) in by else None for t in tasks]
        cells = [f"{100 * m:.1f}" if m is not None else "–" for m in means]
        mean = f"{100 * statistics.fmean(means):.1f}" if None not in means else "–"
        out.append(f"| {rec} | " + " | ".join(cells) + f" | {mean} |")
    return out + _dev_versus_baseline(scored, metric, baseline)


def _dev_versus_baseline(scored: list[dict[str, Any]], metric: str, baseline: str) -> list[str]:
    """Each recipe against ``baseline`` on dev, over cells whose dev ``metric`` is known."""
    from contrafit.bench.compare import paired

    recipes = list(dict.fromkeys(r["recipe"] for r in scored))
    if baseline not in recipes:
        return []
    rows = [paired(scored, rec, baseline, metric=f"dev_{metric}") for rec in recipes]
    name = DEV_METRIC_NAMES[metric]
    out = ["", f"Paired against `{baseline}` on dev {name} (same task and seed):", ""]
    out += [
        "| recipe | n | mean dev diff (pts) | 95 % CI (pts) | W/T/L | t-test p |",
        "|---|---|---|---|---|---|",
    ]
    for row in (r for r in rows if r is not None and r["recipe"] != baseline):
        p = "–" if row["t_p"] is None else f"{row['t_p']:.3g}"
        ci = (
            "–"
            if row["ci95"] is None
            else "{:+.1f} to {:+.1f}".format(*(100 * x for x in row["ci95"]))
        )
        out.append(
            f"| {row['recipe']} | {row['n']} | {100 * row['mean_diff']:+.1f} | {ci} "
            f"| {row['wins']}/{row['ties']}/{row['losses']} | {p} |"
        )
    return out
