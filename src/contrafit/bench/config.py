"""A benchmark grid as data: a YAML file (``benchmarks/*.yaml``) and/or command-line flags.

    data_root: ../shared/data/lmbff_kshot     # tasks in the LM-BFF layout live here
    tasks:
      sst-2: {unlabeled: ../shared/data/sst2/train.jsonl}   # LM-BFF task + post-training text
      trec: {}
      emotion: {train: ../shared/data/emotion/train.jsonl, dev: ..., test: ..., fraction: 0.1}
                                              # dev_fraction: its dev pool's share (default: fraction)
                                              # holdout_per_class: 200 = 200 more per class from
                                              # the dev pool, only scored (the dev table)
    recipes:
      - default
      - setfit                                # a peer
      - {name: ce-mlp, recipe: ce, set: [model.head=mlp]}   # a variant: recipe + overrides
    seeds: [13, 21, 42, 87, 100]
    shots: [16]
    label_noise: [0.0]
    model: null                               # default: the offline all-MiniLM-L6-v2
    set: []                                   # recipe overrides, as --set KEY=VALUE
    dev_holdout: null                         # e.g. 0.5: that share of each dev split is only
                                              # scored, never used for epoch selection
    dev_metric: accuracy                      # or macro_f1: what the report's dev table scores
    dev_baseline: default                     # the recipe the dev table's paired rows compare
                                              # against (a search's incumbent)

``tasks`` may also be a plain list of LM-BFF task names. Relative paths are read from the current
folder (run from the repository root). Flags given on the command line replace the file's values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from contrafit.bench.tasks import TaskSource
from contrafit.errors import ConfigError

TASK_KEYS = {"train", "dev", "test", "fraction", "dev_fraction", "holdout_per_class", "unlabeled"}
DEV_METRICS = ("accuracy", "macro_f1")
GRID_KEYS = {
    "data_root",
    "tasks",
    "recipes",
    "seeds",
    "shots",
    "label_noise",
    "model",
    "set",
    "dev_holdout",
    "dev_metric",
    "dev_baseline",
}


@dataclass(frozen=True)
class Variant:
    """A named recipe with overrides, for ablations: ``{name, recipe, set: [KEY=VALUE, ...]}``."""

    recipe: str
    overrides: tuple[str, ...] = ()


@dataclass
class Grid:
    tasks: list[TaskSource]
    recipes: list[str] = field(default_factory=lambda: ["default"])
    variants: dict[str, Variant] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [13, 21, 42, 87, 100])
    shots: list[int] = field(default_factory=lambda: [16])
    noise: list[float] = field(default_factory=lambda: [0.0])
    model: str | None = None
    overrides: list[str] = field(default_factory=list)
    # share of each cell's dev split held out from training and only scored (see Splits.hold_out_dev)
    dev_holdout: float | None = None
    # what the report's dev table (the one a recipe search ranks by) scores
    dev_metric: str = "accuracy"
    # the recipe every other one is paired against in that table
    dev_baseline: str = "default"

    def recipe_and_overrides(self, name: str) -> tuple[str, list[str]]:
        """The recipe a grid name runs and its overrides (the grid's, then the variant's)."""
        variant = self.variants.get(name)
        if variant is None:
            return name, list(self.overrides)
        return variant.recipe, [*self.overrides, *variant.overrides]


def read_grid_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--config {path}: no such file")
    try:
        plain = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(plain, dict):
        raise ConfigError(
            f"{path}: expected a mapping of grid settings, got {type(plain).__name__}"
        )
    unknown = sorted(set(plain) - GRID_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {unknown}; allowed: {sorted(GRID_KEYS)}")
    return plain


def build_grid(plain: dict[str, Any], where: str = "grid") -> Grid:
    """A Grid from plain settings (file values already merged with command-line flags)."""
    root = Path(plain["data_root"]) if plain.get("data_root") else None
    tasks_plain = plain.get("tasks")
    if not tasks_plain:
        raise ConfigError(f"{where}: no tasks given (--tasks or tasks: in the grid file)")
    if isinstance(tasks_plain, list):
        tasks_plain = {name: {} for name in tasks_plain}
    tasks = [_task(name, opts or {}, root, where) for name, opts in tasks_plain.items()]

    def listed(key: str, kind: type, default: list) -> list:
        value = plain.get(key)
        if value is None:
            return default
        values = value if isinstance(value, list) else [value]
        try:
            return [kind(v) for v in values]
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{where}: {key} must be a list of {kind.__name__}: {e}") from e

    recipes, variants = [], {}
    for item in plain.get("recipes") or ["default"]:
        if isinstance(item, dict):
            unknown = sorted(set(item) - {"name", "recipe", "set"})
            if unknown or "name" not in item or "recipe" not in item:
                raise ConfigError(
                    f"{where}: recipe variant {item!r}: expected keys name, recipe and "
                    "optionally set (a list of KEY=VALUE overrides)"
                )
            variants[str(item["name"])] = Variant(str(item["recipe"]), tuple(item.get("set") or ()))
            item = item["name"]
        recipes.append(str(item))
    dev_holdout = _fraction(plain.get("dev_holdout"), "dev_holdout", where)
    both = [t.name for t in tasks if t.holdout_per_class is not None]
    if dev_holdout is not None and both:
        raise ConfigError(
            f"{where}: dev_holdout and the holdout_per_class of task(s) {both} both hold dev "
            "texts out of training; use one of them"
        )
    return Grid(
        tasks=tasks,
        recipes=recipes,
        variants=variants,
        seeds=listed("seeds", int, [13, 21, 42, 87, 100]),
        shots=listed("shots", int, [16]),
        noise=listed("label_noise", float, [0.0]),
        model=plain.get("model"),
        overrides=listed("set", str, []),
        dev_holdout=dev_holdout,
        dev_metric=_dev_metric(plain.get("dev_metric"), where),
        dev_baseline=_dev_baseline(plain.get("dev_baseline"), where),
    )


def _dev_baseline(value: Any, where: str) -> str:
    # not checked against the recipes: a subset command (--recipes) may leave it out, and then the
    # report has no paired rows, as a grid without `default` has none
    if value is None:
        return "default"
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: dev_baseline must be a recipe name, got {value!r}")
    return value


def _dev_metric(value: Any, where: str) -> str:
    if value is None:
        return "accuracy"
    if value not in DEV_METRICS:
        raise ConfigError(f"{where}: dev_metric must be one of {list(DEV_METRICS)}, got {value!r}")
    return value


def _fraction(value: Any, key: str, where: str) -> float | None:
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        value = None
    if value is None or not 0.0 < value < 1.0:
        raise ConfigError(f"{where}: {key} must be a number in (0, 1), e.g. 0.5")
    return value


def _task(name: str, opts: dict[str, Any], root: Path | None, where: str) -> TaskSource:
    if not isinstance(opts, dict):
        raise ConfigError(f"{where}: task {name!r}: expected a mapping of options, got {opts!r}")
    unknown = sorted(set(opts) - TASK_KEYS)
    if unknown:
        raise ConfigError(
            f"{where}: task {name!r}: unknown option(s) {unknown}; allowed: {sorted(TASK_KEYS)}"
        )

    def path(key: str) -> Path | None:
        return Path(opts[key]) if opts.get(key) else None

    fraction = opts.get("fraction")
    if "train" not in opts and root is None:
        raise ConfigError(
            f"{where}: task {name!r} has no train file and no data_root (--data-root) was given"
        )
    dev_fraction = opts.get("dev_fraction")
    own = ("fraction", "dev_fraction", "holdout_per_class", "test", "dev")
    if "train" not in opts and any(opts.get(k) is not None for k in own):
        raise ConfigError(
            f"{where}: task {name!r}: fraction/dev_fraction/holdout_per_class/dev/test apply to "
            "a task with its own train file"
        )
    holdout = opts.get("holdout_per_class")
    if holdout is not None and (isinstance(holdout, bool) or not isinstance(holdout, int)):
        raise ConfigError(
            f"{where}: task {name!r}: holdout_per_class must be a whole number of texts per "
            f"class, got {holdout!r}"
        )
    return TaskSource(
        name=name,
        root=None if "train" in opts else root,
        train=path("train"),
        test=path("test"),
        dev=path("dev"),
        fraction=_number(fraction, "fraction", name, where),
        dev_fraction=_number(dev_fraction, "dev_fraction", name, where),
        holdout_per_class=holdout,
        unlabeled=path("unlabeled"),
    )


def _number(value: Any, key: str, task: str, where: str) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{where}: task {task!r}: {key} must be a number, got {value!r}"
        ) from None
