"""The Siamese cosine-similarity loss over pairs (the contrastive phase of Lopez-Avila &
Suárez-Paniagua 2024, as in SetFit): target 1 for a same-class pair, 0 otherwise, mean squared error
on the cosine similarity of the pooled embeddings.

Pairs are all pairs *within a batch* from the class-balanced sampler: each epoch sees fresh pairs
and nothing of size O(n²) is ever built (SetFit's issue #628)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from contrafit.distributed import gather
from contrafit.objectives.base import LossOutput, Needs, Objective, Step, TaskInfo


class _Rows(torch.autograd.Function):
    """``z[index]`` for a 2-D ``z``, whose backward adds the rows back with ``index_add_``, in
    index order. Plain indexing's backward (``index_put_`` accumulating) adds with atomics on a
    CPU running more than one thread, so the same seed gave other gradients on every run; with
    one thread both add in index order and give the same bits."""

    @staticmethod
    def forward(ctx, z: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(index)
        ctx.rows = z.shape[0]
        return z.index_select(0, index)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (index,) = ctx.saved_tensors
        return grad.new_zeros(ctx.rows, *grad.shape[1:]).index_add_(0, index, grad), None


def cosine_pair_loss(embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    z = F.normalize(embeddings.float(), dim=-1)
    i, j = torch.triu_indices(len(z), len(z), offset=1, device=z.device)
    cos = (_Rows.apply(z, i) * _Rows.apply(z, j)).sum(-1)
    target = (labels[i] == labels[j]).float()
    return F.mse_loss(cos, target)


class CosinePairs(Objective):
    def __init__(self, task: TaskInfo, samples_per_class: int = 2):
        super().__init__()
        self.needs = Needs(
            fields=("input_ids", "attention_mask", "labels"),
            sampler="m_per_class",
            samples_per_class=samples_per_class,
        )

    def compute(self, step: Step) -> LossOutput:
        emb, labels = gather(step.outputs.embeddings), gather(step.batch["labels"])
        with torch.autocast(device_type=emb.device.type, enabled=False):
            return LossOutput(cosine_pair_loss(emb, labels))
