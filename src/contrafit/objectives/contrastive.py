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
    ):
        super().__init__()
        if temperature <= 0:
            raise ConfigError(f"supcon.temperature must be > 0, got {temperature}")
        if part not in ("both", "pull", "push"):
            raise ConfigError(f"supcon.part must be both, pull or push, got {part!r}")
        self.temperature = temperature
        self.part = part
        self.needs = Needs(
            fields=_LABELED, sampler="m_per_class", samples_per_class=samples_per_class
        )

    def compute(self, step: Step) -> LossOutput:
        emb, labels = gather(step.outputs.embeddings), gather(step.batch["labels"])
        # similarities in fp32: under autocast z·zᵀ would run in bf16, too coarse at τ = 0.1
        with torch.autocast(device_type=emb.device.type, enabled=False):
            pull, push = supcon_terms(emb, labels, self.temperature)
        if self.part == "both":
            return LossOutput(pull + push, {"pull": pull, "push": push})
        # alone, each part is shifted by 1/τ to be ≥ 0 (as EPO needs); gradients are unchanged:
        # pull + 1/τ = mean (1 - cos)/τ ≥ 0 and push + 1/τ ≥ log(n - 1) ≥ 0
        term = (pull if self.part == "pull" else push) + 1.0 / self.temperature
        return LossOutput(term)
