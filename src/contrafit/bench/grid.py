"""A benchmark grid: tasks × recipes × shots × noise × seeds, one cell = one training run.

Tasks come from a data root in the LM-BFF layout ``<root>/<task>/<K>-<seed>/{train,dev,test}.jsonl``.
The whole grid is validated before any training, so a typo costs seconds, not hours.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from contrafit.errors import ConfigError
from contrafit.training.recipes import recipe_plain


@dataclass(frozen=True)
class Cell:
    task: str
    recipe: str
    seed: int
    shots: int = 16
    noise: float = 0.0

    @property
    def key(self) -> str:
        return f"{self.task}/{self.recipe}/k{self.shots}-noise{self.noise:g}-seed{self.seed}"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Split:
    train: Path
    dev: Path
    test: Path


def lmbff_split(root: Path, task: str, shots: int, seed: int) -> Split:
    folder = root / task / f"{shots}-{seed}"
    return Split(folder / "train.jsonl", folder / "dev.jsonl", folder / "test.jsonl")


def plan(
    root: str | Path,
    tasks: list[str],
    recipes: list[str],
    seeds: list[int],
    shots: list[int] = (16,),
    noise: list[float] = (0.0,),
) -> list[Cell]:
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"--data-root {root}: not a folder")
    known = sorted(p.name for p in root.iterdir() if p.is_dir())
    problems = [
        f"unknown task {t!r} (in {root}: {', '.join(known)})" for t in tasks if t not in known
    ]
    for r in recipes:
        try:
            recipe_plain(r)
        except ConfigError as e:
            problems.append(str(e))
    for t in (t for t in tasks if t in known):
        for k in shots:
            for s in seeds:
                split = lmbff_split(root, t, k, s)
                problems += [
                    f"missing split file {p}" for p in vars(split).values() if not p.exists()
                ]
    if any(not 0.0 <= x < 1.0 for x in noise):
        problems.append(f"label noise must be in [0, 1), got {list(noise)}")
    if problems:
        raise ConfigError("bad grid, nothing was run:\n  " + "\n  ".join(problems))
    return [
        Cell(t, r, s, k, x)
        for t in tasks
        for r in recipes
        for k in shots
        for x in noise
        for s in seeds
    ]
