"""Batched inference: length-sorted batches, no autograd, results returned in input order."""

from __future__ import annotations

import torch

from contrafit.data.batching import Encoded, collate, length_sorted_batches
from contrafit.modeling.model import TextClassifier
from contrafit.training.runtime import attention, autocast


@torch.inference_mode()
def run_inference(
    model: TextClassifier,
    encoded: Encoded,
    batch_size: int,
    device: torch.device,
    amp_dtype: torch.dtype | None,
    attention_choice: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (logits, pooled embeddings) as fp32 CPU tensors in the order of ``encoded``."""
    was_training = model.training
    model.eval()
    logits = torch.empty(len(encoded), model.num_classes)
    embeddings = torch.empty(len(encoded), model.embedding_dim)
    with attention(model.encoder, attention_choice, device, training=False):
        for idx in length_sorted_batches(encoded.lengths(), batch_size):
            batch = {k: v.to(device) for k, v in collate(encoded, idx).items() if k != "labels"}
            with autocast(device, amp_dtype):
                out = model(batch)
            logits[idx] = out.logits.float().cpu()
            embeddings[idx] = out.embeddings.float().cpu()
    model.train(was_training)
    return logits, embeddings
