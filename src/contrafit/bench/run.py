"""Run a grid's cells, each in its own folder; a finished cell is never run again (resume)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from contrafit.bench.grid import Cell, lmbff_split
from contrafit.classifier import ContrafitClassifier
from contrafit.data.loading import load_dataset
from contrafit.data.sampling import inject_label_noise
from contrafit.io import append_jsonl, atomic_write_json

RESULT_FILE = "result.json"


def run_cell(
    cell: Cell, root: Path, out: Path, model: str | None, overrides: list[str]
) -> dict[str, Any]:
    split = lmbff_split(root, cell.task, cell.shots, cell.seed)
    # benchmark splits are used as published (LM-BFF's cr holds empty texts): kept and logged
    train = load_dataset(split.train, allow_empty_text=True)
    if cell.noise:
        train = inject_label_noise(train, cell.noise, seed=cell.seed)
    dev, test = (
        load_dataset(split.dev, allow_empty_text=True),
        load_dataset(split.test, allow_empty_text=True),
    )
    out.mkdir(parents=True, exist_ok=True)
    log = out / "log.jsonl"
    log.unlink(missing_ok=True)  # an interrupted cell starts again from scratch
    clf = ContrafitClassifier(
        model, cell.recipe, seed=cell.seed, overrides=overrides, progress=False
    )
    clf.fit(train, dev=dev, log=lambda r: append_jsonl(log, r))
    start = time.perf_counter()
    by_mode = clf.evaluate_modes(test)  # one pass over the test set, after training
    predict_seconds = time.perf_counter() - start
    metrics = by_mode[clf.config.inference.mode]
    return {
        **cell.to_dict(),
        "inference": clf.config.inference.mode,
        "accuracy_by_inference": {m: r["accuracy"] for m, r in by_mode.items()},
        "accuracy": metrics["accuracy"],
        "macro_f1": metrics["macro_f1"],
        "mcc": metrics["mcc"],
        "train_seconds": clf.train_seconds_,
        "predict_seconds": predict_seconds,
        "n_train": len(train),
        "n_test": len(test),
        "best_dev": [p["best_dev"] for p in clf.history_],
    }


def run_grid(
    cells: list[Cell],
    root: str | Path,
    output: str | Path,
    model: str | None = None,
    overrides: list[str] = (),
    progress: bool = True,
) -> list[dict[str, Any]]:
    root, output = Path(root), Path(output)
    results = []
    bar = tqdm(cells, desc="cells", disable=not progress)
    for cell in bar:
        folder = output / "cells" / cell.key
        done = folder / RESULT_FILE
        if done.exists():
            results.append(json.loads(done.read_text(encoding="utf-8")))
            continue
        bar.set_postfix_str(cell.key)
        result = run_cell(cell, root, folder, model, list(overrides))
        atomic_write_json(done, result)
        results.append(result)
    return results
