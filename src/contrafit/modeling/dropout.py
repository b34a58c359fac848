"""Dropout whose random masks cost a quarter of torch's on a CPU.

Why: on a CPU, torch draws a dropout mask one random number per element on one thread, while the
matmuls around it use every core; in a MiniLM training step (bf16, 32 × 64 tokens, 2 threads)
the masks took 27 % of the time (``benchmarks/speed/train-step.md``). Here one 64-bit draw of
torch's generator gives four 16-bit lanes, each compared with a threshold: an element is dropped
with probability round(p · 65536) / 65536 (0.100006 for p = 0.1), the masks are seeded by
``torch.manual_seed`` like torch's, and the element-wise work runs on every core.

The encoder's ``nn.Dropout`` modules are swapped for :class:`PackedDropout` while a phase trains
(:func:`packed_dropout`), and attention-probability dropout, which transformers applies inside
its attention function, goes through :func:`eager_attention_packed_dropout`, registered with
transformers' ``AttentionInterface`` as ``ATTENTION_KERNEL``.

The default recipe trains with them (``dropout: packed`` in ``pairs-lp-scl.yaml``; round 14 of
``benchmarks/powered-fresh.yaml``: held-out dev accuracy +0.04 points, 95 % CI -0.22 to +0.30);
any other recipe can with ``--set dropout=packed``. (Two earlier checks failed while the attention
kernel had no mask function registered and so attended to padding: fixed in
:func:`register_attention_kernel`.)
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

ATTENTION_KERNEL = "eager_packed_dropout"
_LANES = 4  # 16-bit lanes per 64-bit draw
_LANE_VALUES = 1 << 16


def _lanes(shape: torch.Size, device: torch.device) -> torch.Tensor:
    """int16 numbers uniform over [-32768, 32767], four per 64-bit draw of torch's generator."""
    n = shape.numel()
    draws = torch.randint(-(1 << 63), (1 << 63) - 1, ((n + _LANES - 1) // _LANES,), device=device)
    return draws.view(torch.int16)[:n].view(shape)


def _threshold(p: float) -> int:
    return round(p * _LANE_VALUES) - _LANE_VALUES // 2


def keep_mask(shape: torch.Size, p: float, device: torch.device) -> torch.Tensor:
    """A boolean mask of ``shape``: True (keep) with probability 1 - round(p · 65536) / 65536."""
    return _lanes(shape, device) >= _threshold(p)


class _PackedDropoutFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, p: float) -> torch.Tensor:
        # the mask as 1 or 0 in x's dtype, made in one pass (a boolean mask would be cast to x's
        # dtype by a copy in every multiply on a CPU); the scale is applied as torch's dropout
        # does, a Python float computed in float32 (a bf16 scale would be 1.109 for 1/0.9)
        one = torch.ones((), dtype=x.dtype, device=x.device)
        mask = torch.where(_lanes(x.shape, x.device) >= _threshold(p), one, one.new_zeros(()))
        ctx.save_for_backward(mask)
        ctx.scale = 1.0 / (1.0 - p)
        return (x * mask).mul_(ctx.scale)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (mask,) = ctx.saved_tensors
        return (grad * mask).mul_(ctx.scale), None


def packed_dropout_fn(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """``nn.functional.dropout`` with packed random masks."""
    if not training or p == 0.0:
        return x
    if p >= 1.0:
        return x * 0.0
    return _PackedDropoutFn.apply(x, p)


class PackedDropout(nn.Dropout):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return packed_dropout_fn(x, self.p, self.training)


def eager_attention_packed_dropout(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """transformers' eager attention (BERT's ``eager_attention_forward``), with packed dropout."""
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        weights = weights + attention_mask
    weights = nn.functional.softmax(weights, dim=-1)
    weights = packed_dropout_fn(weights, dropout, module.training)
    output = torch.matmul(weights, value).transpose(1, 2).contiguous()
    return output, weights


def register_attention_kernel() -> None:
    from transformers import AttentionInterface

    AttentionInterface.register(ATTENTION_KERNEL, eager_attention_packed_dropout)
    try:  # transformers >= 4.53 builds masks per kernel
        from transformers.masking_utils import AttentionMaskInterface, eager_mask
    except ImportError:  # older ones build BERT's additive mask themselves
        return
    # Why: a kernel with no mask function of its own is taken for one that needs no mask
    # (``_preprocess_mask_arguments`` returns None), so padded tokens would be attended to.
    AttentionMaskInterface.register(ATTENTION_KERNEL, eager_mask)


@contextlib.contextmanager
def packed_dropout(module: nn.Module):
    """Run the block with every plain ``nn.Dropout`` inside ``module`` replaced by a
    :class:`PackedDropout` of the same p, then put the originals back."""
    swapped: list[tuple[nn.Module, str, nn.Module]] = []
    for parent in list(module.modules()):
        for name, child in parent.named_children():
            if type(child) is nn.Dropout:
                replacement = PackedDropout(child.p)
                replacement.train(child.training)
                setattr(parent, name, replacement)
                swapped.append((parent, name, child))
    try:
        yield
    finally:
        for parent, name, child in swapped:
            child.train(getattr(parent, name).training)
            setattr(parent, name, child)
