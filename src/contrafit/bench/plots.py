"""Benchmark figures (PNG, matplotlib): accuracy vs K and vs label noise with ±std bands, and a 2-D
t-SNE projection of test embeddings coloured by class, ``ce`` beside a contrastive recipe (as in
Gunel et al. 2021, Figure 1). Each figure is drawn only when the grid holds what it needs."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

CONTRASTIVE_PREFERENCE = ("scl", "supcon-ce", "cmlm-scl", "scl-epo", "proxy-anchor")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers and CI
    import matplotlib.pyplot as plt

    return plt


def _curves(results: list[dict[str, Any]], axis: str, keep) -> dict[str, dict[str, list]]:
    """task -> recipe -> sorted [(x, mean, std)] over seeds."""
    acc: dict[tuple[str, str, float], list[float]] = defaultdict(list)
    for r in results:
        if keep(r) and r.get(axis) is not None:
            acc[(r["task"], r["recipe"], r[axis])].append(100 * r["accuracy"])
    out: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for (task, recipe, x), ys in sorted(acc.items(), key=lambda kv: kv[0][2]):
        sd = statistics.stdev(ys) if len(ys) > 1 else 0.0
        out[task][recipe].append((x, statistics.fmean(ys), sd))
    return out


def _line_plot(curves, xlabel: str, title: str, path: Path, log_x: bool = False) -> Path:
    plt = _pyplot()
    tasks = list(curves)
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.6), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        for recipe, points in curves[task].items():
            x, m, s = (np.array(v, dtype=float) for v in zip(*points, strict=True))
            ax.plot(x, m, marker="o", label=recipe)
            ax.fill_between(x, m - s, m + s, alpha=0.15)
        if log_x:
            ax.set_xscale("log", base=2)
        ax.set_title(task)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def accuracy_vs_shots(results: list[dict[str, Any]], path: Path) -> Path | None:
    curves = _curves(results, "shots", lambda r: r["noise"] == 0.0)
    if not any(len(p) > 1 for rec in curves.values() for p in rec.values()):
        return None
    return _line_plot(curves, "K (examples per class)", "Accuracy vs K, mean ± std", path, True)


def accuracy_vs_noise(results: list[dict[str, Any]], path: Path) -> Path | None:
    curves = _curves(results, "noise", lambda r: True)
    if not any(len(p) > 1 for rec in curves.values() for p in rec.values()):
        return None
    return _line_plot(
        curves, "fraction of flipped training labels", "Accuracy vs label noise", path
    )


def embedding_projection(
    cells_dir: Path, path: Path, recipes: tuple[str, str] | None = None, max_points: int = 1000
) -> Path | None:
    """t-SNE of the test embeddings saved by the first seed's cells, one row per task."""
    from safetensors import safe_open
    from sklearn.manifold import TSNE

    saved: dict[str, dict[str, Path]] = defaultdict(dict)
    for file in sorted(cells_dir.glob("*/*/*/test_embeddings.safetensors")):
        task, recipe = file.parts[-4], file.parts[-3]
        saved[task].setdefault(recipe, file)
    rows = []
    for task, by_recipe in saved.items():
        pair = recipes or (
            "ce",
            next((r for r in CONTRASTIVE_PREFERENCE if r in by_recipe), None)
            or next((r for r in by_recipe if r != "ce"), None),
        )
        if all(r in by_recipe for r in pair if r):
            rows.append((task, [(r, by_recipe[r]) for r in pair if r]))
    rows = [(t, p) for t, p in rows if len(p) == 2]
    if not rows:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(len(rows), 2, figsize=(8, 3.8 * len(rows)), squeeze=False)
    for (task, pair), ax_row in zip(rows, axes, strict=True):
        for (recipe, file), ax in zip(pair, ax_row, strict=True):
            with safe_open(str(file), framework="np") as f:
                emb, labels = f.get_tensor("embeddings").astype(np.float32), f.get_tensor("labels")
                classes = json.loads(f.metadata()["classes"])
            pick = np.random.default_rng(0).permutation(len(emb))[:max_points]
            perplexity = min(30.0, (len(pick) - 1) / 3)  # t-SNE needs perplexity < n
            xy = TSNE(2, init="pca", random_state=0, perplexity=perplexity).fit_transform(emb[pick])
            for c, name in enumerate(classes):
                sel = labels[pick] == c
                ax.scatter(xy[sel, 0], xy[sel, 1], s=4, alpha=0.6, label=name)
            ax.set_title(f"{task}: {recipe}")
            ax.set_xticks([])
            ax.set_yticks([])
        ax_row[-1].legend(fontsize=7, markerscale=3)
    fig.suptitle("t-SNE of test embeddings, coloured by true class (first seed)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def draw_all(results: list[dict[str, Any]], out: Path, cells_dir: Path) -> list[Path]:
    """Every figure the grid supports, written next to the report; [] without matplotlib."""
    try:
        _pyplot()
    except ImportError:
        return []
    made = [
        accuracy_vs_shots(results, out / "accuracy_vs_k.png"),
        accuracy_vs_noise(results, out / "accuracy_vs_noise.png"),
        embedding_projection(cells_dir, out / "embeddings_tsne.png"),
    ]
    return [p for p in made if p is not None]
