"""Contrastive masked language modeling (CMLM, Luo et al. 2021, arXiv 2106.02327): post-training on
unlabeled task text with token-level (MLM) and sequence-level (contrastive) learning on one pair
of masked views of each input.

Complementary random masking hides ``contrast_prob`` of each text's tokens, split into two
disjoint halves, one per view; the rest is visible in both. The MLM loss predicts hidden tokens of
both views (an ``mlm_prob`` share of the text per view, drawn among the hidden ones); the
contrastive loss (NT-Xent, in-batch negatives) pulls the two views' pooled embeddings together.
    loss = MLM(view a) + MLM(view b) averaged  +  alpha · NT-Xent(view a, view b)
Defaults are the authors' (mlm 0.15, contrastive masking 0.7, alpha 0.5). Both views go through
the encoder in one forward pass (stacked on the batch dimension).
"""

from __future__ import annotations

import torch
from pytorch_metric_learning import losses

from contrafit.data.noise import complementary_masks
from contrafit.distributed import gather
from contrafit.errors import ConfigError
from contrafit.objectives.base import LossOutput, Needs, Step, TaskInfo
from contrafit.objectives.masked_lm import MaskedLM


class ContrastiveMaskedLM(MaskedLM):
    needs = Needs(fields=("input_ids", "attention_mask"), unlabeled=True)

    def __init__(
        self,
        task: TaskInfo,
        mlm_prob: float = 0.15,
        contrast_prob: float = 0.7,
        alpha: float = 0.5,
        temperature: float = 0.05,
    ):
        super().__init__(task, mask_prob=mlm_prob)
        if not 0.0 < contrast_prob <= 1.0:
            raise ConfigError(f"cmlm.contrast_prob must be in (0, 1], got {contrast_prob}")
        if not mlm_prob <= contrast_prob / 2:
            raise ConfigError(
                f"cmlm.mlm_prob ({mlm_prob}) must be at most half of contrast_prob "
                f"({contrast_prob}): MLM targets are drawn among each view's hidden tokens"
            )
        self.contrast_prob = contrast_prob
        self.alpha = alpha
        self.contrastive = losses.NTXentLoss(temperature=temperature)

    def views(
        self, ids: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Both views stacked on the batch dimension: (inputs, attention mask, MLM labels)."""
        maskable = mask.bool().cpu() & ~torch.isin(ids.cpu(), self.special_ids)
        hidden = torch.cat(complementary_masks(maskable, self.contrast_prob, self.generator))
        target_rate = self.mask_prob / (self.contrast_prob / 2)
        targets = hidden & (torch.rand(hidden.shape, generator=self.generator) < target_rate)
        stacked = ids.cpu().repeat(2, 1)
        labels = torch.where(targets, stacked, torch.full_like(stacked, -100))
        inputs = stacked.masked_fill(hidden, self.mask_token_id)
        dev = ids.device
        return inputs.to(dev), mask.repeat(2, 1), labels.to(dev)

    def compute(self, step: Step) -> LossOutput:
        ids, mask = step.batch["input_ids"], step.batch["attention_mask"]
        token_type = step.batch.get("token_type_ids")
        inputs, view_mask, labels = self.views(ids, mask)
        tokens, pooled = step.model.embed(
            inputs, view_mask, token_type.repeat(2, 1) if token_type is not None else None
        )
        mlm, accuracy = self.token_loss(tokens, labels)
        n = ids.shape[0]
        # each view gathered over processes: in-batch negatives come from the global batch
        views = torch.cat([gather(pooled[:n]), gather(pooled[n:])])
        pair_ids = torch.arange(views.shape[0] // 2, device=ids.device).repeat(2)
        with torch.autocast(device_type=ids.device.type, enabled=False):
            contrastive = self.contrastive(views.float(), pair_ids)
        return LossOutput(
            mlm + self.alpha * contrastive,
            {"mlm": mlm.detach(), "contrastive": contrastive.detach(), "accuracy": accuracy},
        )
