"""Data-parallel training over processes (``accelerate launch``, ``torchrun``), one place for it.

Each optimizer step takes one *global* batch; process r trains on its share ``idx[r::world]``.
Losses that compare examples with each other (SupCon, metric-learning and proxy losses, pairs,
CMLM's views) see the global batch: embeddings are all-gathered *with* their gradients. After
``backward`` every gradient (encoder, head, proxies, decoders) is averaged over processes, so all
copies stay identical and equal the single-process update on the same global batch:

- a per-example mean (cross-entropy) on each share, averaged, is the global mean;
- a batch-level loss L computed on the gathered batch is identical on every process; the gather's
  backward sums the gradient of every process's copy into each share (world · ∂L/∂z_r), and the
  average over processes divides by world again: Σ_r ∂L/∂z_r · ∂z_r/∂θ = ∂L/∂θ.

Without a process group every function here is the identity, at no cost.
"""

from __future__ import annotations

import os
import warnings

import torch
import torch.distributed as dist
from torch.distributed.nn.functional import all_gather as all_gather_with_grad


def init_from_environment() -> None:
    """Join the process group that ``accelerate launch``/``torchrun`` describe in the environment."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        from accelerate import PartialState

        PartialState()  # initialises torch.distributed (gloo on CPU, nccl on GPUs)


def rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main_process() -> bool:
    return rank_and_world()[0] == 0


def barrier() -> None:
    if rank_and_world()[1] > 1:
        dist.barrier()


def shard(indices: list[int]) -> list[int]:
    """This process's share of a global batch."""
    rank, world = rank_and_world()
    return indices if world == 1 else indices[rank::world]


def gather(x: torch.Tensor) -> torch.Tensor:
    """Concatenate every process's ``x`` along dim 0, differentiably; shares may differ in size
    (the last batch of an epoch), so rows are padded to the largest share and the padding dropped."""
    rank, world = rank_and_world()
    if world == 1:
        return x
    sizes = [torch.zeros(1, dtype=torch.long, device=x.device) for _ in range(world)]
    dist.all_gather(sizes, torch.tensor([x.shape[0]], device=x.device))
    sizes = [int(s.item()) for s in sizes]
    biggest = max(sizes)
    padded = (
        torch.cat([x, x.new_zeros((biggest - x.shape[0], *x.shape[1:]))])
        if x.shape[0] < biggest
        else x
    )
    if x.requires_grad:
        with warnings.catch_warnings():  # deprecated in favour of a private API: keep the public
            warnings.simplefilter("ignore", FutureWarning)
            parts = all_gather_with_grad(padded)
    else:
        parts = _gather_plain(padded, world)
    return torch.cat([p[:n] for p, n in zip(parts, sizes, strict=True)])


def _gather_plain(x: torch.Tensor, world: int) -> list[torch.Tensor]:
    parts = [torch.empty_like(x) for _ in range(world)]
    dist.all_gather(parts, x.contiguous())
    return parts


def average_gradients(params: list[torch.nn.Parameter]) -> None:
    """All-reduce the mean of every gradient, in one flat buffer per dtype (few messages)."""
    _, world = rank_and_world()
    if world == 1:
        return
    # a parameter has a gradient on the global batch if it has one on any process (e.g. a proxy
    # whose class is in one share only); parameters no process used (a pooler) stay without one,
    # so the optimizer skips them exactly as it would in a single process
    device = params[0].device if params else None
    used = torch.tensor([p.grad is not None for p in params], dtype=torch.uint8, device=device)
    dist.all_reduce(used, op=dist.ReduceOp.MAX)
    by_dtype: dict[torch.dtype, list[torch.nn.Parameter]] = {}
    for p, flag in zip(params, used.tolist(), strict=True):
        if not flag:
            continue
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        by_dtype.setdefault(p.grad.dtype, []).append(p)
    for group in by_dtype.values():
        flat = torch.cat([p.grad.reshape(-1) for p in group])
        dist.all_reduce(flat)
        flat /= world
        start = 0
        for p in group:
            n = p.grad.numel()
            p.grad.copy_(flat[start : start + n].view_as(p.grad))
            start += n
