"""Paired comparison of two recipes over the same (task, seed) cells: mean difference, wins/ties/
losses, and paired tests (t-test and Wilcoxon signed-rank, scipy)."""

from __future__ import annotations

import statistics
from typing import Any

from scipy import stats


def paired(
    results: list[dict[str, Any]],
    recipe: str,
    baseline: str,
    task: str | None = None,
    metric: str = "accuracy",
) -> dict[str, Any] | None:
    def index(name: str) -> dict[tuple, float]:
        return {
            (r["task"], r["seed"], r["shots"], r["noise"]): r[metric]
            for r in results
            if r["recipe"] == name and (task is None or r["task"] == task)
        }

    a, b = index(recipe), index(baseline)
    keys = sorted(set(a) & set(b))
    if len(keys) < 2:
        return None
    diffs = [a[k] - b[k] for k in keys]
    out = {
        "recipe": recipe,
        "baseline": baseline,
        "task": task or "all",
        "n": len(keys),
        "mean_diff": statistics.fmean(diffs),
        "wins": sum(d > 0 for d in diffs),
        "ties": sum(d == 0 for d in diffs),
        "losses": sum(d < 0 for d in diffs),
        "t_p": None,
        "wilcoxon_p": None,
        "ci95": None,  # t interval of the mean difference: its low end tests non-inferiority
    }
    if any(d != diffs[0] for d in diffs):  # tests are undefined when every difference is equal
        out["t_p"] = float(stats.ttest_rel([a[k] for k in keys], [b[k] for k in keys]).pvalue)
        half = stats.t.ppf(0.975, len(diffs) - 1) * statistics.stdev(diffs) / len(diffs) ** 0.5
        out["ci95"] = (out["mean_diff"] - float(half), out["mean_diff"] + float(half))
    if any(d != 0 for d in diffs):
        out["wilcoxon_p"] = float(stats.wilcoxon(diffs).pvalue)
    return out


def comparisons(results: list[dict[str, Any]], baselines: list[str]) -> list[dict[str, Any]]:
    recipes = list(dict.fromkeys(r["recipe"] for r in results))
    tasks = list(dict.fromkeys(r["task"] for r in results))
    rows = []
    for base in (b for b in baselines if b in recipes):
        for rec in (r for r in recipes if r != base):
            for task in [None, *tasks]:
                row = paired(results, rec, base, task)
                if row is not None:
                    rows.append(row)
    return rows


def comparisons_markdown(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []

    def p(x):
        return "–" if x is None else f"{x:.3g}"

    out = [
        "",
        "## Paired comparison (accuracy, same task and seed)",
        "",
        "`all` pools every task's cells. p-values: paired t-test and Wilcoxon signed-rank.",
        "",
        "| recipe | vs | task | n | mean diff (pts) | W/T/L | t-test p | Wilcoxon p |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['recipe']} | {r['baseline']} | {r['task']} | {r['n']} | {100 * r['mean_diff']:+.1f} "
            f"| {r['wins']}/{r['ties']}/{r['losses']} | {p(r['t_p'])} | {p(r['wilcoxon_p'])} |"
        )
    return out
