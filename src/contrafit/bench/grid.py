"""A benchmark grid: tasks × recipes × shots × noise × seeds, one cell = one training run.

The whole grid is validated before any training (tasks, files, recipes, peers), so a typo costs
seconds, not hours.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from contrafit.bench.config import Grid
from contrafit.bench.peers import PEERS, SINGLE_TEXT_PEERS, peer_problem
from contrafit.classifier import build_run_config
from contrafit.config import check_name
from contrafit.errors import ConfigError


@dataclass(frozen=True)
class Cell:
    task: str
    recipe: str
    seed: int
    shots: int | None = 16  # None: the task's own (fraction-sampled) split, not K per class
    noise: float = 0.0

    @property
    def key(self) -> str:
        sampling = f"k{self.shots}" if self.shots is not None else "split"
        recipe = folder_label(self.recipe)
        return f"{self.task}/{recipe}/{sampling}-noise{self.noise:g}-seed{self.seed}"

    def to_dict(self) -> dict:
        return asdict(self)


def folder_label(recipe: str) -> str:
    """A recipe's cell-folder name: a YAML path contributes its file name without extension."""
    return Path(recipe).stem if recipe.endswith((".yaml", ".yml")) else recipe


def plan(grid: Grid) -> list[Cell]:
    problems = []
    for name, what in [(t.name, "task") for t in grid.tasks] + [
        (folder_label(r), "recipe") for r in grid.recipes
    ]:
        try:
            check_name(name, what)
        except ConfigError as e:
            problems.append(str(e))
    labels = [folder_label(r) for r in grid.recipes]
    if len(set(labels)) != len(labels):
        problems.append(f"two recipes would share a cell folder: {labels}")
    for task in grid.tasks:
        problems += task.problems(grid.shots, grid.seeds)
    for r in grid.recipes:
        if r in PEERS:
            problem = peer_problem(r)
            problems += [problem] if problem else []
            if r in SINGLE_TEXT_PEERS:
                pairs = [t.name for t in grid.tasks if t.is_pair(grid.shots, grid.seeds)]
                if pairs:
                    problems.append(
                        f"peer {r!r} takes single texts; {', '.join(pairs)} hold text pairs "
                        "(run the peer on the other tasks)"
                    )
            continue
        base, overrides = grid.recipe_and_overrides(r)
        try:
            build_run_config(base, grid.model, overrides=overrides)
        except ConfigError as e:
            problems.append(f"recipe {r!r}: {e}")
    if any(k <= 0 for k in grid.shots):
        problems.append(f"shots (K) must be > 0, got {grid.shots}")
    if any(not 0.0 <= x < 1.0 for x in grid.noise):
        problems.append(f"label noise must be in [0, 1), got {grid.noise}")
    names = [t.name for t in grid.tasks]
    if len(set(names)) != len(names):
        problems.append(f"a task is listed twice: {names}")
    if problems:
        raise ConfigError("bad grid, nothing was run:\n  " + "\n  ".join(problems))
    return [
        Cell(t.name, r, s, None if t.fraction is not None else k, x)
        for t in grid.tasks
        for r in grid.recipes
        for k in (grid.shots if t.fraction is None else [None])
        for x in grid.noise
        for s in grid.seeds
    ]
