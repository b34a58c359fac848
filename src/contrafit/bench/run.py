"""Run a grid's cells, each in its own folder; a finished cell is never run again (resume)."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import time
import traceback
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from tqdm.auto import tqdm

from contrafit import __version__
from contrafit.bench.config import Grid
from contrafit.bench.grid import Cell
from contrafit.bench.peers import PEERS
from contrafit.bench.tasks import Splits
from contrafit.classifier import ContrafitClassifier
from contrafit.data.sampling import inject_label_noise
from contrafit.io import append_jsonl, atomic_write_json
from contrafit.training.checkpoint import CHECKPOINT_FILE, Checkpointer
from contrafit.training.phase_cache import PhaseCache

RESULT_FILE = "result.json"
# cells are short: checkpoint between phases and every 500 steps (saving costs ~1 s on MiniLM)
CHECKPOINT_EVERY = 500
EMBEDDINGS_FILE = "test_embeddings.safetensors"
PHASE_CACHE_DIR = "phase-cache"
DEFAULT_PHASE_CACHE_BYTES = 10 * 10**9
# "HOST PID" of the bench process running the cell: lets several processes share one grid folder
CLAIM_FILE = "running.claim"
# a cell whose run raised: its traceback; the grid goes on, and the next run of it retries the cell
ERROR_FILE = "error.txt"

logger = logging.getLogger(__name__)


def _claim_is_live(claim: Path) -> bool:
    """A claim is live while its process runs. Another host's claim can't be checked: it counts as
    live (delete the file to take the cell over)."""
    try:
        host, pid = claim.read_text(encoding="utf-8").split()
        pid = int(pid)
    except (OSError, ValueError):
        return False  # unreadable or half-written by a killed process
    if host != socket.gethostname():
        return True
    if pid == os.getpid():
        return False  # a killed run's claim whose pid this process got again
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim_cell(folder: Path) -> bool:
    """Claim the cell for this process (an exclusive create). False when another live process
    holds it; a dead process's claim (an interrupted run) is taken over."""
    folder.mkdir(parents=True, exist_ok=True)
    claim = folder / CLAIM_FILE
    for _ in range(2):
        try:
            fd = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if _claim_is_live(claim):
                return False
            claim.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(f"{socket.gethostname()} {os.getpid()}")
        return True
    return False


def _run_recipe(
    cell: Cell,
    splits: Splits,
    out: Path,
    model: str | None,
    recipe: str,
    overrides: list[str],
    keep_embeddings: bool = False,
    phase_cache: Path | None = None,
) -> dict[str, Any]:
    log = out / "log.jsonl"
    resume = (out / CHECKPOINT_FILE).exists()  # an interrupted cell continues from its checkpoint
    if not resume:
        log.unlink(missing_ok=True)
    clf = ContrafitClassifier(model, recipe, seed=cell.seed, overrides=overrides, progress=False)
    clf.fit(
        splits.train,
        dev=splits.dev,
        unlabeled=splits.unlabeled,
        log=lambda r: append_jsonl(log, r),
        checkpoint_dir=out,
        checkpoint_every=CHECKPOINT_EVERY,
        resume=resume,
        phase_cache=phase_cache,
    )
    Checkpointer.remove_from(out)
    start = time.perf_counter()
    # one pass over the test set, after training
    by_mode, embeddings = clf.evaluate_modes_and_embed(splits.test)
    predict_seconds = time.perf_counter() - start
    if keep_embeddings:  # for the 2-D projection plot (one seed per grid: they are large)
        save_file(
            {
                "embeddings": torch.from_numpy(embeddings).half(),
                "labels": torch.tensor(clf.label_map_.encode(splits.test.labels)),
            },
            str(out / EMBEDDINGS_FILE),
            metadata={"classes": json.dumps(clf.classes_)},
        )
    metrics = by_mode[clf.config.inference.mode]
    reused = sum(p["seconds"] for p in clf.history_ if p.get("reused"))
    # the final model on dev (its held-out part, if the grid has one): what a recipe search may
    # rank by (never the test set)
    scored = splits.scoring_dev
    dev = clf.evaluate_modes(scored) if scored is not None else None
    return {
        "dev_accuracy": dev[clf.config.inference.mode]["accuracy"] if dev else None,
        "dev_macro_f1": dev[clf.config.inference.mode]["macro_f1"] if dev else None,
        "dev_accuracy_by_inference": {m: r["accuracy"] for m, r in dev.items()} if dev else {},
        "inference": clf.config.inference.mode,
        "accuracy_by_inference": {m: r["accuracy"] for m, r in by_mode.items()},
        "metrics": metrics,
        # a phase taken from the cache counts the seconds it took when computed, so a recipe's
        # time is its full cost whichever cell computed the shared phase
        "train_seconds": clf.train_seconds_ + reused,
        "reused_phase_seconds": reused,
        "predict_seconds": predict_seconds,
        "phase_seconds": {p["name"]: p["seconds"] for p in clf.history_},
        "best_dev": [p["best_dev"] for p in clf.history_],
    }


@cache
def code_version() -> dict[str, Any]:
    """The code a cell ran with: a grid folder can hold cells from several checkouts over time.
    Read once per process, when its grid starts (run_grid): the process runs the code it imported
    then, whatever is committed while it runs."""
    here = Path(__file__).parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=here, capture_output=True, text=True, timeout=10, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return None  # installed from a wheel, or no git
        return done.stdout.strip()

    commit = git("rev-parse", "HEAD")
    changed = git("status", "--porcelain", "--untracked-files=no", "--", str(here.parent))
    return {"contrafit": __version__, "commit": commit, "uncommitted_changes": bool(changed)}


def run_cell(cell: Cell, grid: Grid, out: Path, phase_cache: Path | None = None) -> dict[str, Any]:
    source = next(t for t in grid.tasks if t.name == cell.task)
    splits = source.load(cell.shots, cell.seed)
    if cell.noise:
        splits = replace(splits, train=inject_label_noise(splits.train, cell.noise, cell.seed))
    if grid.dev_holdout is not None:
        splits = splits.hold_out_dev(grid.dev_holdout, cell.seed)
    out.mkdir(parents=True, exist_ok=True)
    if cell.recipe in PEERS:
        _, run_peer = PEERS[cell.recipe]
        run = run_peer(splits, cell.seed, grid.model, out)
    else:
        keep = cell.seed == grid.seeds[0] and cell.noise == 0.0
        recipe, overrides = grid.recipe_and_overrides(cell.recipe)
        run = _run_recipe(cell, splits, out, grid.model, recipe, overrides, keep, phase_cache)
    metrics = run.pop("metrics")
    return {
        **cell.to_dict(),
        "accuracy": metrics["accuracy"],
        "macro_f1": metrics["macro_f1"],
        "mcc": metrics["mcc"],
        **run,
        "n_train": len(splits.train),
        "n_dev": len(splits.dev) if splits.dev is not None else 0,
        "n_dev_holdout": len(splits.dev_holdout) if splits.dev_holdout is not None else 0,
        "n_test": len(splits.test),
        "n_unlabeled": len(splits.unlabeled) if splits.unlabeled is not None else 0,
        "unlabeled_dropped": splits.unlabeled_dropped,
        "code": code_version(),
    }


def _finished(output: Path, key: str) -> dict[str, Any] | None:
    """The cell's result when it has finished (in this process or any other), else None."""
    done = output / "cells" / key / RESULT_FILE
    return json.loads(done.read_text(encoding="utf-8")) if done.exists() else None


def finished_results(output: str | Path, cells: list[Cell]) -> list[dict[str, Any]]:
    """The results of the cells that have finished, in grid order; nothing is trained."""
    return [r for c in cells if (r := _finished(Path(output), c.key)) is not None]


def failed_cells(output: str | Path, cells: list[Cell]) -> list[str]:
    """Keys of the cells whose last run failed (an error file and no result)."""
    folder = Path(output) / "cells"
    return [
        c.key
        for c in cells
        if (folder / c.key / ERROR_FILE).exists() and not (folder / c.key / RESULT_FILE).exists()
    ]


def run_grid(
    cells: list[Cell],
    grid: Grid,
    output: str | Path,
    progress: bool = True,
    share_phases: bool = True,
    phase_cache_bytes: int = DEFAULT_PHASE_CACHE_BYTES,
) -> list[dict[str, Any]]:
    """Run every unfinished cell and return the finished cells' results, in grid order.

    With ``share_phases``, cells whose recipes begin with the same phases (on the same task, seed
    and settings) compute them once, in OUTPUT/phase-cache; after each cell the least recently
    used entries are deleted down to ``phase_cache_bytes`` (a MiniLM entry is ~90 MB, and a grid
    of hundreds of cells once filled the disk). Several processes may run one grid
    folder at once (e.g. one per CPU core): each cell is claimed before it runs, and a cell another
    live process holds is left to it (and left out of the returned results)."""
    output = Path(output)
    code_version()  # the checkout this process imported: later commits do not change its cells
    phase_cache = output / PHASE_CACHE_DIR if share_phases else None
    results = {cell.key: r for cell in cells if (r := _finished(output, cell.key)) is not None}
    pending = [cell for cell in cells if cell.key not in results]
    # Finished cells start the bar, so the rate and ETA count only cells run now.
    elsewhere: list[str] = []
    with tqdm(total=len(cells), initial=len(results), desc="cells", disable=not progress) as bar:
        for cell in pending:
            folder = output / "cells" / cell.key
            if not claim_cell(folder):
                elsewhere.append(cell.key)
                continue
            try:
                result = _finished(output, cell.key)  # another process may have finished it
                if result is None:
                    bar.set_postfix_str(cell.key)
                    try:
                        result = run_cell(cell, grid, folder, phase_cache)
                    except Exception:  # one bad cell must not stop hours of grid: record it
                        (folder / ERROR_FILE).write_text(traceback.format_exc(), encoding="utf-8")
                        logger.error("cell %s failed: see %s", cell.key, folder / ERROR_FILE)
                        bar.update()
                        continue
                    atomic_write_json(folder / RESULT_FILE, result)
                    (folder / ERROR_FILE).unlink(missing_ok=True)
            finally:
                (folder / CLAIM_FILE).unlink(missing_ok=True)
                if phase_cache is not None:
                    PhaseCache(phase_cache).evict(phase_cache_bytes)
            results[cell.key] = result
            bar.update()
    for key in elsewhere:  # some may have finished while this process ran its own cells
        if (result := _finished(output, key)) is not None:
            results[key] = result
    running = [key for key in elsewhere if key not in results]
    if running:
        logger.warning(
            "%d cell(s) are running in another bench process (%s): the report leaves them out; "
            "re-run this command once they finish to report the whole grid",
            len(running),
            ", ".join(running[:3]) + (", ..." if len(running) > 3 else ""),
        )
    return [results[cell.key] for cell in cells if cell.key in results]
