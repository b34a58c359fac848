"""Seeded input noise on token ids: word deletion (DAE), BERT-style masking (MLM), complementary
masks. Every function takes an explicit ``torch.Generator``; the same seed gives the same noise."""

from __future__ import annotations

import torch


def delete_words(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    word_ids: torch.Tensor,
    ratio: float,
    generator: torch.Generator,
    pad_id: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """TSDAE deletion noise: drop each *word* (all its word pieces) with probability ``ratio``,
    keeping at least one word and every special token (``word_ids`` = -1). Returns re-padded
    (ids, mask)."""
    rows = []
    for ids, mask, words in zip(input_ids, attention_mask.bool(), word_ids, strict=True):
        n_words = int(words.max().item()) + 1 if (words >= 0).any() else 0
        keep_word = torch.rand(n_words, generator=generator) >= ratio
        if n_words and not keep_word.any():
            keep_word[torch.randint(n_words, (1,), generator=generator)] = True
        # an empty text (special tokens only) has nothing to delete
        keep = mask & ((words < 0) | keep_word[words.clamp(min=0)]) if n_words else mask
        rows.append(ids[keep])
    width = max(len(r) for r in rows)
    out = torch.full((len(rows), width), pad_id, dtype=input_ids.dtype)
    out_mask = torch.zeros((len(rows), width), dtype=attention_mask.dtype)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
        out_mask[i, : len(r)] = 1
    return out, out_mask


def mlm_mask(
    input_ids: torch.Tensor,
    maskable: torch.Tensor,
    mask_prob: float,
    mask_token_id: int,
    vocab_size: int,
    generator: torch.Generator,
    selected: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking: choose maskable positions with ``mask_prob`` (or take ``selected``), replace
    80 % by [MASK], 10 % by a random token, keep 10 %. Returns (inputs, labels with -100 elsewhere)."""
    if selected is None:
        selected = (torch.rand(input_ids.shape, generator=generator) < mask_prob) & maskable
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, -100))
    r = torch.rand(input_ids.shape, generator=generator)
    inputs = input_ids.clone()
    inputs[selected & (r < 0.8)] = mask_token_id
    random_tokens = torch.randint(vocab_size, input_ids.shape, generator=generator)
    swap = selected & (r >= 0.8) & (r < 0.9)
    inputs[swap] = random_tokens[swap]
    return inputs, labels


def complementary_masks(
    maskable: torch.Tensor, share: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Complementary random masking (CRM, Luo et al. 2021): two masks over the maskable positions
    that never overlap and together cover ``share`` of them in expectation, half each. One uniform
    draw per position: u < share/2 goes to the first mask, share/2 <= u < share to the second;
    the rest stay visible in both views."""
    if not 0.0 < share <= 1.0:
        raise ValueError(f"complementary masks need 0 < share <= 1, got {share}")
    u = torch.rand(maskable.shape, generator=generator)
    return (u < share / 2) & maskable, (u >= share / 2) & (u < share) & maskable
