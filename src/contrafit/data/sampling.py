"""Seeded few-shot sampling and label-noise injection."""

from __future__ import annotations

import random
from collections import defaultdict

from contrafit.data.labels import _natural_key
from contrafit.data.loading import TextDataset
from contrafit.errors import DataError


def sample_k_per_class(data: TextDataset, k: int, seed: int) -> TextDataset:
    """K examples of each class (all of a class that has fewer than K), in a seeded order."""
    if data.labels is None:
        raise DataError(f"{data.source}: sampling K per class needs labels")
    if k <= 0:
        raise DataError(f"K must be > 0, got {k}")
    by_class: dict[str, list[int]] = defaultdict(list)
    for i, label in enumerate(data.labels):
        by_class[label].append(i)
    rng = random.Random(seed)
    chosen: list[int] = []
    for label in sorted(by_class, key=_natural_key):
        idx = by_class[label]
        chosen.extend(rng.sample(idx, min(k, len(idx))))
    rng.shuffle(chosen)
    return data.subset(chosen)


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
