"""Where a benchmark task's data comes from, and how one cell's splits are drawn from it.

Two kinds of source:
- LM-BFF layout: ``<root>/<task>/<K>-<seed>/{train,dev,test}.jsonl``, used as published.
- A full labeled train file (and a fixed test file): each cell samples its own training set with
  its seed, K per class (any K) or a stratified ``fraction``, and its dev set the same way from the
  dev file, or from the train texts the cell did not take.

Unlabeled text for post-training phases (MLM, CMLM, DAE) can come from a file. Texts that also
occur in the cell's dev or test split are dropped from it (LM-BFF draws its splits from the same
corpora the full train files come from), so post-training never sees evaluation text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

from contrafit.data.loading import TextDataset, load_dataset
from contrafit.data.sampling import k_per_class_indices, stratified_indices
from contrafit.errors import DataError


@dataclass(frozen=True)
class Splits:
    train: TextDataset
    dev: TextDataset | None
    test: TextDataset
    unlabeled: TextDataset | None = None
    unlabeled_dropped: int = 0  # unlabeled texts removed: empty, or they occur in dev or test
    # dev texts training never sees (the grid's dev_holdout): a recipe search scores on these
    dev_holdout: TextDataset | None = None

    @property
    def scoring_dev(self) -> TextDataset | None:
        """The dev texts a recipe's final model is scored on: the held-out half when there is
        one, else the dev split that training also selected its epochs on."""
        return self.dev_holdout if self.dev_holdout is not None else self.dev

    def hold_out_dev(self, fraction: float, seed: int) -> Splits:
        """Move a stratified ``fraction`` of dev (seeded) out of training's reach. Training's
        epoch selection and early stopping then use the rest, so the held-out part scores a
        recipe without the optimism of having picked its checkpoint on the same texts."""
        if self.dev is None:
            return self
        held = set(stratified_indices(self.dev, fraction, seed))
        kept = [i for i in range(len(self.dev)) if i not in held]
        if not kept:
            raise DataError(
                f"{self.dev.source}: dev_holdout {fraction} leaves no dev texts for training to "
                f"select on ({len(self.dev)} in dev); use a smaller dev_holdout or a larger dev"
            )
        return replace(self, dev=self.dev.subset(kept), dev_holdout=self.dev.subset(sorted(held)))


@dataclass(frozen=True)
class TaskSource:
    name: str
    root: Path | None = None  # LM-BFF layout
    train: Path | None = None  # or a full train file ...
    test: Path | None = None  # ... with a fixed test file
    dev: Path | None = None  # optional; else dev is drawn from the train texts a cell left over
    fraction: float | None = None  # stratified share of train (and dev) instead of K per class
    dev_fraction: float | None = None  # stratified share of the dev pool (default: fraction)
    # K per class more from the dev pool, beside the dev split: never seen by training, they
    # score the final model (the report's dev table), so a recipe search can rank on hundreds of
    # texts while training selects its epochs on a few-shot dev split
    holdout_per_class: int | None = None
    unlabeled: Path | None = None

    @property
    def sampled(self) -> bool:
        return self.root is None

    def lmbff_files(self, shots: int, seed: int) -> tuple[Path, Path, Path]:
        folder = self.root / self.name / f"{shots}-{seed}"
        return folder / "train.jsonl", folder / "dev.jsonl", folder / "test.jsonl"

    def problems(self, shots: list[int], seeds: list[int]) -> list[str]:
        """Everything wrong with this source for the grid, found without loading any data."""
        found = []
        if self.sampled:
            for what, path in (("train", self.train), ("test", self.test)):
                if path is None:
                    found.append(f"task {self.name!r}: no {what} file given")
            files = [p for p in (self.train, self.test, self.dev) if p is not None]
            for key in ("fraction", "dev_fraction"):
                value = getattr(self, key)
                if value is not None and not 0.0 < value <= 1.0:
                    found.append(f"task {self.name!r}: {key} must be in (0, 1], got {value}")
            if self.holdout_per_class is not None and self.holdout_per_class < 1:
                found.append(
                    f"task {self.name!r}: holdout_per_class must be a positive whole number, "
                    f"got {self.holdout_per_class}"
                )
        else:
            if not (self.root / self.name).is_dir():
                known = sorted(p.name for p in self.root.iterdir() if p.is_dir())
                return [f"unknown task {self.name!r} (in {self.root}: {', '.join(known)})"]
            files = [p for k in shots for s in seeds for p in self.lmbff_files(k, s)]
        if self.unlabeled is not None:
            files.append(self.unlabeled)
        return found + [f"task {self.name!r}: missing file {p}" for p in files if not p.exists()]

    def is_pair(self, shots: list[int], seeds: list[int]) -> bool:
        """Whether the task's rows are text pairs, from the first row of its first train file."""
        path = self.train if self.sampled else self.lmbff_files(shots[0], seeds[0])[0]
        if path is None or not path.exists():
            return False
        with path.open(encoding="utf-8") as f:
            first = f.readline()
        try:
            return "text_pair" in json.loads(first)
        except (json.JSONDecodeError, TypeError):
            return False  # not JSON lines (csv/tsv); loading will say what is wrong

    def load(self, shots: int | None, seed: int) -> Splits:
        # benchmark files are used as published (LM-BFF's cr holds empty texts): kept and logged
        def read(path: Path) -> TextDataset:
            return load_dataset(path, allow_empty_text=True)

        holdout = None
        if not self.sampled:
            train, dev, test = (read(p) for p in self.lmbff_files(shots, seed))
        else:
            full, test = read(self.train), read(self.test)
            taken = self._draw(full, shots, seed)
            train = full.subset(taken)
            # without a dev file, dev comes from the train rows this cell did not take
            dev_pool = read(self.dev) if self.dev is not None else _left_over(full, taken)
            dev_taken = self._draw(dev_pool, shots, seed + 1, self.dev_fraction)
            dev = dev_pool.subset(dev_taken)
            if self.holdout_per_class is not None:  # from the dev pool rows dev did not take
                rest = _left_over(dev_pool, dev_taken)
                holdout = rest.subset(k_per_class_indices(rest, self.holdout_per_class, seed + 2))
        unlabeled, dropped = None, 0
        if self.unlabeled is not None:
            unlabeled, dropped = _without(
                load_dataset(self.unlabeled, require_labels=False, allow_empty_text=True),
                [dev, test, holdout],
            )
        return Splits(train, dev, test, unlabeled, dropped, dev_holdout=holdout)

    def _draw(
        self, data: TextDataset, shots: int | None, seed: int, fraction: float | None = None
    ) -> list[int]:
        fraction = fraction if fraction is not None else self.fraction
        if fraction is not None:
            return stratified_indices(data, fraction, seed)
        return k_per_class_indices(data, shots, seed)


def _left_over(data: TextDataset, taken: list[int]) -> TextDataset:
    """The rows of ``data`` not in ``taken``, in file order."""
    return data.subset(sorted(set(range(len(data))) - set(taken)))


def _key(text: str) -> str:
    return re.sub(r"\s+", "", text.lower())


def _without(unlabeled: TextDataset, held_out: list[TextDataset | None]) -> tuple[TextDataset, int]:
    seen = {_key(t) for d in held_out if d is not None for t in d.texts}
    keep = [i for i, t in enumerate(unlabeled.texts) if _key(t) not in seen and t.strip()]
    return unlabeled.subset(keep), len(unlabeled) - len(keep)
