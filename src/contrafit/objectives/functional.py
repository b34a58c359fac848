"""Pure tensor losses (no transformer needed), testable against hand-computed values."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def supcon_terms(
    embeddings: torch.Tensor, labels: torch.Tensor, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The supervised contrastive loss (Khosla et al. 2020, L_out; Gunel et al. 2021's SCL), split
    into its pull and push terms so that they can be weighted as separate objectives.

    For an anchor i with positives P(i) (same label, j != i) and all others A(i):
        L_i = -1/|P(i)| Σ_{p∈P(i)} z_i·z_p/τ   (pull)   +   log Σ_{a∈A(i)} exp(z_i·z_a/τ)   (push)
    on L2-normalised z. Both are averaged over anchors that have a positive; anchors without one
    are skipped (a batch without any positive gives zeros that still carry a gradient graph).
    """
    z = F.normalize(embeddings.float(), dim=-1)
    sim = z @ z.T / temperature
    n = z.shape[0]
    self_mask = torch.eye(n, dtype=torch.bool, device=z.device)
    positives = (labels[:, None] == labels[None, :]) & ~self_mask
    n_pos = positives.sum(1)
    has_pos = n_pos > 0
    if not has_pos.any():
        zero = sim.sum() * 0.0
        return zero, zero
    pull = -(sim * positives).sum(1)[has_pos] / n_pos[has_pos]
    push = torch.logsumexp(sim.masked_fill(self_mask, float("-inf")), dim=1)[has_pos]
    return pull.mean(), push.mean()


def supcon_loss(embeddings: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    pull, push = supcon_terms(embeddings, labels, temperature)
    return pull + push
