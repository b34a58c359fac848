"""Encoder + pooling + head as one module; its forward returns every view the objectives use."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from contrafit.config import ModelConfig
from contrafit.modeling.encoder import pool
from contrafit.modeling.heads import build_head


@dataclass
class ModelOutput:
    token_embeddings: torch.Tensor | None  # (batch, seq, dim); None from precomputed features
    attention_mask: torch.Tensor | None  # (batch, seq); None from precomputed features
    embeddings: torch.Tensor  # (batch, dim) pooled, not normalised
    logits: torch.Tensor  # (batch, classes)


class TextClassifier(nn.Module):
    def __init__(self, encoder: nn.Module, config: ModelConfig, num_classes: int):
        super().__init__()
        self.encoder = encoder
        self.config = config
        self.num_classes = num_classes
        self.head = build_head(
            config.head, self.embedding_dim, num_classes, config.head_hidden, config.head_dropout
        )

    @property
    def embedding_dim(self) -> int:
        return self.encoder.config.hidden_size

    def embed(
        self, input_ids, attention_mask, token_type_ids=None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        tokens = self.encoder(**kwargs).last_hidden_state
        return tokens, pool(tokens, attention_mask, self.config.pooling)

    def forward(self, batch: dict[str, torch.Tensor]) -> ModelOutput:
        if "pooled" in batch:  # a frozen encoder's features, computed once per phase (run_phase)
            tokens, pooled = None, batch["pooled"]
        else:
            tokens, pooled = self.embed(
                batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids")
            )
        # the head runs outside autocast in fp32: it is cheap and keeps logits/softmax precise
        with torch.autocast(device_type=pooled.device.type, enabled=False):
            logits = self.head(pooled.float())
        return ModelOutput(tokens, batch.get("attention_mask"), pooled, logits)
