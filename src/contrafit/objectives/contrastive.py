"""Supervised contrastive objectives on pooled, L2-normalised embeddings (SupCon / SCL)."""

from __future__ import annotations

from typing import Literal

import torch

from contrafit.distributed import gather
from contrafit.errors import ConfigError
from contrafit.objectives.base import LossOutput, Needs, Objective, Step, TaskInfo
from contrafit.objectives.functional import supcon_terms

_LABELED = ("input_ids", "attention_mask", "labels")


class SupCon(Objective):
    """SupCon (Khosla et al. 2020) = Gunel et al.'s SCL term. With cross_entropy in the same phase
    (weights 1-λ and λ) it is SCL fine-tuning; both share the step's single encoder forward."""

    needs = Needs(fields=_LABELED, sampler="m_per_class")

    def __init__(
        self,
        task: TaskInfo,
        temperature: float = 0.3,
        samples_per_class: int = 2,
        part: Literal["both", "pull", "push"] = "both",
        dropout_views: int = 1,
    ):
        super().__init__()
        if temperature <= 0:
            raise ConfigError(f"supcon.temperature must be > 0, got {temperature}")
        if part not in ("both", "pull", "push"):
            raise ConfigError(f"supcon.part must be both, pull or push, got {part!r}")
        if dropout_views not in (1, 2):
            raise ConfigError(f"supcon.dropout_views must be 1 or 2, got {dropout_views}")
        self.temperature = temperature
        self.part = part
        # 2: each text is encoded a second time under another dropout mask, and the two vectors are
        # positives of each other (SimCSE's views): every anchor gets a positive, and with 16
        # examples per class the loss sees twice the vectors per step (at twice the encoder cost)
        self.dropout_views = dropout_views
        self.needs = Needs(
            fields=_LABELED, sampler="m_per_class", samples_per_class=samples_per_class
        )

    def compute(self, step: Step) -> LossOutput:
        emb, labels = step.outputs.embeddings, step.batch["labels"]
        if self.dropout_views == 2:
            emb = torch.cat([emb, step.model(step.batch).embeddings])
            labels = torch.cat([labels, labels])
        emb, labels = gather(emb), gather(labels)
        # similarities in fp32: under autocast z·zᵀ would run in bf16, too coarse at τ = 0.1
        with torch.autocast(device_type=emb.device.type, enabled=False):
            pull, push = supcon_terms(emb, labels, self.temperature)
        if self.part == "both":
            return LossOutput(pull + push, {"pull": pull, "push": push})
        # alone, each part is shifted by 1/τ to be ≥ 0 (as EPO needs); gradients are unchanged:
        # pull + 1/τ = mean (1 - cos)/τ ≥ 0 and push + 1/τ ≥ log(n - 1) ≥ 0
        term = (pull if self.part == "pull" else push) + 1.0 / self.temperature
        return LossOutput(term)
