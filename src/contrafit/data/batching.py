"""Tokenise once, then cut seeded batches and pad each one only to its own longest row."""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from contrafit.data.loading import TextDataset

logger = logging.getLogger("contrafit")


@dataclass
class Encoded:
    """Token ids per example (unpadded) and optional label ids, kept for the whole run."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    labels: list[int] | None
    pad_id: int
    # word index of each token (-1 for special tokens), for word-level noise; None if unknown
    word_ids: list[list[int]] | None = None

    def __len__(self) -> int:
        return len(self.input_ids)

    def lengths(self) -> list[int]:
        return [len(x) for x in self.input_ids]


def encode(
    data: TextDataset, tokenizer, max_length: int, label_ids: list[int] | None = None
) -> Encoded:
    enc = tokenizer(
        data.texts,
        data.text_pairs,
        truncation=True,
        max_length=max_length,
        padding=False,
        return_attention_mask=False,
    )
    at_limit = sum(len(ids) >= max_length for ids in enc["input_ids"])
    if at_limit:
        logger.warning(
            "%s: %d of %d texts reached max_length=%d tokens and were truncated to it "
            "(raise it with --set model.max_length=N)",
            data.source,
            at_limit,
            len(data),
            max_length,
        )
    try:  # fast tokenizers know which word each token came from
        word_ids = [[-1 if w is None else w for w in enc.word_ids(i)] for i in range(len(data))]
    except (ValueError, AttributeError):
        word_ids = None
    return Encoded(
        input_ids=enc["input_ids"],
        token_type_ids=enc.get("token_type_ids"),
        labels=label_ids,
        pad_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0,
        word_ids=word_ids,
    )


def collate(encoded: Encoded, indices: Sequence[int]) -> dict[str, torch.Tensor]:
    """Pad the rows at ``indices`` to the longest of them (dynamic padding)."""
    width = max(len(encoded.input_ids[i]) for i in indices)
    n = len(indices)
    input_ids = torch.full((n, width), encoded.pad_id, dtype=torch.long)
    attention_mask = torch.zeros((n, width), dtype=torch.long)
    token_types = torch.zeros((n, width), dtype=torch.long) if encoded.token_type_ids else None
    word_ids = torch.full((n, width), -1, dtype=torch.long) if encoded.word_ids else None
    for row, i in enumerate(indices):
        ids = encoded.input_ids[i]
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention_mask[row, : len(ids)] = 1
        if token_types is not None:
            token_types[row, : len(ids)] = torch.tensor(encoded.token_type_ids[i])
        if word_ids is not None:
            word_ids[row, : len(ids)] = torch.tensor(encoded.word_ids[i])
    batch = {"input_ids": input_ids, "attention_mask": attention_mask}
    if token_types is not None:
        batch["token_type_ids"] = token_types
    if word_ids is not None:
        batch["word_ids"] = word_ids
    if encoded.labels is not None:
        batch["labels"] = torch.tensor([encoded.labels[i] for i in indices], dtype=torch.long)
    batch["index"] = torch.tensor(list(indices), dtype=torch.long)
    return batch


# --- batch orders: each returns a list of index lists, fully determined by the seed ---------------


def random_batches(n: int, batch_size: int, seed: int, drop_last: bool = False) -> list[list[int]]:
    order = list(range(n))
    random.Random(seed).shuffle(order)
    batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    if drop_last and len(batches) > 1 and len(batches[-1]) < batch_size:
        batches.pop()
    return batches


def m_per_class_batches(
    labels: Sequence[int], batch_size: int, m: int, seed: int, drop_last: bool = False
) -> list[list[int]]:
    """Batches of ``batch_size // m`` classes (at most all of them) with at least ``m`` examples of
    each, so every anchor of a contrastive loss has positives; with few classes each gets an equal
    share of the batch. Rare classes are repeated (reshuffled) to fill their slots. One epoch yields
    ``ceil(len(labels) / batch_size)`` batches, as a random order would (``floor``, at least one,
    with ``drop_last``)."""
    rng = random.Random(seed)
    by_class: dict[int, list[int]] = defaultdict(list)
    for i, y in enumerate(labels):
        by_class[y].append(i)
    classes = sorted(by_class)
    m = max(1, min(m, batch_size))
    classes_per_batch = max(1, min(len(classes), batch_size // m))
    per_class = batch_size // classes_per_batch
    pools: dict[int, list[int]] = {c: [] for c in classes}

    def draw(c: int, k: int) -> list[int]:
        out: list[int] = []
        while len(out) < k:
            if not pools[c]:
                pools[c] = rng.sample(by_class[c], len(by_class[c]))
            out.append(pools[c].pop())
        return out

    batches = []
    n_batches = max(1, len(labels) // batch_size) if drop_last else -(-len(labels) // batch_size)
    for _ in range(n_batches):
        picked = rng.sample(classes, classes_per_batch)
        batch = [i for c in picked for i in draw(c, per_class)]
        rng.shuffle(batch)
        batches.append(batch)
    return batches


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Inference order: similar lengths together so padding is minimal."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def iterate(encoded: Encoded, batches: list[list[int]]) -> Iterator[dict[str, torch.Tensor]]:
    for idx in batches:
        yield collate(encoded, idx)
