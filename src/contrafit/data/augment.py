"""Imbalance correction by augmentation (Lopez-Avila & Suárez-Paniagua 2024, §3.2.1).

Class k with x examples is resized to about x·f(x), where
    f(x) = max(min_ratio, log(max_k / x) · max_ratio / log(max_k))
and max_k is the size of the largest class: small classes grow most (up to max_ratio), the largest
by min_ratio. The extra copies are examples of the class with stop words deleted; copies that
repeat a text already present are dropped, so only unique texts (and so unique pairs) remain.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from contrafit.data.labels import _natural_key
from contrafit.data.loading import TextDataset

PRESETS = {"imbalance": (4.0, 1.5), "extra": (20.0, 1.5)}


def resize_ratio(x: int, max_k: int, max_ratio: float = 4.0, min_ratio: float = 1.5) -> float:
    if max_k <= 1:
        return min_ratio
    return max(min_ratio, math.log(max_k / x) * max_ratio / math.log(max_k))


def delete_stop_words(text: str, rng: random.Random, prob: float = 0.5) -> str:
    words = text.split()
    kept = [w for w in words if w.lower() not in ENGLISH_STOP_WORDS or rng.random() >= prob]
    return " ".join(kept) if kept else text


def correct_imbalance(
    data: TextDataset, seed: int, max_ratio: float = 4.0, min_ratio: float = 1.5
) -> TextDataset:
    by_class: dict[str, list[int]] = defaultdict(list)
    for i, label in enumerate(data.labels):
        by_class[label].append(i)
    max_k = max(len(v) for v in by_class.values())
    rng = random.Random(seed)
    texts, labels = list(data.texts), list(data.labels)
    pairs = list(data.text_pairs) if data.text_pairs is not None else None
    seen = set(zip(texts, labels, strict=True))
    for label in sorted(by_class, key=_natural_key):
        members = by_class[label]
        extra = round(len(members) * resize_ratio(len(members), max_k, max_ratio, min_ratio)) - len(
            members
        )
        for _ in range(extra):
            i = rng.choice(members)
            text = delete_stop_words(data.texts[i], rng)
            if (text, label) in seen:
                continue  # only unique texts are kept
            seen.add((text, label))
            texts.append(text)
            labels.append(label)
            if pairs is not None:
                pairs.append(data.text_pairs[i])
    return TextDataset(texts, labels, pairs, source=f"{data.source} (imbalance-corrected)")
