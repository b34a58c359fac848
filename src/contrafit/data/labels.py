"""String labels <-> ids, in a stable order that is saved with the model."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from contrafit.errors import DataError


def _natural_key(label: str) -> tuple:
    # "2" before "10"; mixed labels compare piecewise
    return tuple(
        (0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", label) if p
    )


class LabelMap:
    def __init__(self, labels: Sequence[str]):
        if len(set(labels)) != len(labels):
            raise DataError(f"duplicate labels in label map: {list(labels)}")
        self.labels = list(labels)
        self.index = {label: i for i, label in enumerate(self.labels)}

    @classmethod
    def from_labels(cls, labels: Iterable[str], source: str = "training data") -> LabelMap:
        distinct = sorted(set(labels), key=_natural_key)
        if len(distinct) < 2:
            raise DataError(
                f"{source}: found a single class {distinct}; classification needs at least 2 classes. "
                "Check the label column (e.g. --label-column)."
            )
        return cls(distinct)

    def __len__(self) -> int:
        return len(self.labels)

    def encode(self, labels: Iterable[str], source: str = "data") -> list[int]:
        labels = list(labels)
        unseen = sorted({lbl for lbl in labels if lbl not in self.index}, key=_natural_key)
        if unseen:
            raise DataError(
                f"{source}: label(s) {unseen} never appear in training (known: {self.labels}). "
                "Evaluation labels must be a subset of training labels; check both files use "
                "the same label names."
            )
        return [self.index[lbl] for lbl in labels]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.labels[i] for i in ids]
