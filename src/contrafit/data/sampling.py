"""Seeded few-shot sampling and label-noise injection."""

from __future__ import annotations

import logging
import random
from collections import defaultdict

from contrafit.data.labels import _natural_key
from contrafit.data.loading import TextDataset
from contrafit.errors import DataError

logger = logging.getLogger("contrafit")


def _by_class(data: TextDataset, what: str) -> dict[str, list[int]]:
    if data.labels is None:
        raise DataError(f"{data.source}: {what} needs labels")
    by_class: dict[str, list[int]] = defaultdict(list)
    for i, label in enumerate(data.labels):
        by_class[label].append(i)
    return {c: by_class[c] for c in sorted(by_class, key=_natural_key)}


def k_per_class_indices(data: TextDataset, k: int, seed: int) -> list[int]:
    """Row indices of K examples of each class (all of a class that has fewer), seeded order."""
    if k <= 0:
        raise DataError(f"K must be > 0, got {k}")
    rng = random.Random(seed)
    chosen: list[int] = []
    for label, idx in _by_class(data, "sampling K per class").items():
        if len(idx) < k:
            logger.warning(
                "%s: class %r has %d examples, fewer than K=%d: all of them are used",
                data.source,
                label,
                len(idx),
                k,
            )
        chosen.extend(rng.sample(idx, min(k, len(idx))))
    rng.shuffle(chosen)
    return chosen


def stratified_indices(data: TextDataset, fraction: float, seed: int) -> list[int]:
    """Row indices of ``fraction`` of each class (at least one), so class proportions are kept."""
    if not 0.0 < fraction <= 1.0:
        raise DataError(f"fraction must be in (0, 1], got {fraction}")
    rng = random.Random(seed)
    chosen: list[int] = []
    for idx in _by_class(data, "a stratified subsample").values():
        chosen.extend(rng.sample(idx, max(1, round(fraction * len(idx)))))
    rng.shuffle(chosen)
    return chosen


def sample_k_per_class(data: TextDataset, k: int, seed: int) -> TextDataset:
    """K examples of each class (all of a class that has fewer than K), in a seeded order."""
    return data.subset(k_per_class_indices(data, k, seed))


def inject_label_noise(data: TextDataset, fraction: float, seed: int) -> TextDataset:
    """Flip ``fraction`` of the labels, each uniformly to one of the *other* classes."""
    if data.labels is None:
        raise DataError(f"{data.source}: label noise needs labels")
    if not 0.0 <= fraction <= 1.0:
        raise DataError(f"label-noise fraction must be in [0, 1], got {fraction}")
    classes = sorted(set(data.labels), key=_natural_key)
    if len(classes) < 2 or fraction == 0.0:
        return data.with_labels(data.labels)
    rng = random.Random(seed)
    n_flip = round(fraction * len(data))
    labels = list(data.labels)
    for i in rng.sample(range(len(labels)), n_flip):
        labels[i] = rng.choice([c for c in classes if c != labels[i]])
    return data.with_labels(labels)
