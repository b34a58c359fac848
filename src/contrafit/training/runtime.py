"""Device, precision (autocast), attention and dropout kernels, and seeding: the one place that
knows about hardware."""

from __future__ import annotations

import contextlib
import functools
import os
import random

import numpy as np
import torch

from contrafit.errors import ConfigError
from contrafit.modeling.dropout import ATTENTION_KERNEL as PACKED_ATTENTION_KERNEL
from contrafit.modeling.dropout import packed_dropout, register_attention_kernel


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():  # one GPU per process under accelerate launch / torchrun
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(
            f"device {name!r} is not valid; use auto, cpu, cuda, cuda:N or mps"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' asked for, but torch sees no CUDA GPU; use --device cpu")
    return device


@functools.cache
def _cpu_has_bf16() -> bool:
    # bf16 autocast on a CPU without native bf16 instructions is slower than fp32
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for plain fp32."""
    if precision == "fp32":
        return None
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if device.type == "cpu":
            return torch.bfloat16 if _cpu_has_bf16() else None
        return None
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def attention_kernel(
    choice: str, device: torch.device, training: bool, dropout: str = "torch"
) -> str:
    """The attention implementation to run: ``choice`` unless it is "auto". Auto picks eager
    attention for training on a CPU, where SDPA's flash-attention backward is slow (a MiniLM step
    at batch 8 × 64 tokens ran 1.4x faster eager here), and SDPA everywhere else (CPU inference
    is ~10 % faster with it; GPUs use fused kernels). Eager attention trains with packed dropout
    masks when ``dropout`` is "packed"."""
    kernel = choice
    if choice == "auto":
        kernel = "eager" if training and device.type == "cpu" else "sdpa"
    if kernel == "eager" and training and dropout == "packed":
        return PACKED_ATTENTION_KERNEL
    return kernel


@contextlib.contextmanager
def attention(
    encoder: torch.nn.Module,
    choice: str,
    device: torch.device,
    training: bool,
    dropout: str = "torch",
):
    """Run the block with ``encoder`` (a transformers model) on the attention kernel that
    :func:`attention_kernel` picks and, when training with packed dropout, its ``nn.Dropout``
    modules packed too; then put the previous ones back. A model that cannot switch keeps its own
    attention kernel under "auto"; an explicit choice it cannot run is an error."""
    packed = training and dropout == "packed"
    if packed:
        register_attention_kernel()
    kernel = attention_kernel(choice, device, training, dropout)
    with packed_dropout(encoder) if packed else contextlib.nullcontext():
        switch = getattr(encoder, "set_attn_implementation", None)
        before = getattr(getattr(encoder, "config", None), "_attn_implementation", None)
        if switch is None or before is None or before == kernel:
            yield
            return
        # models whose attention does not go through transformers' AttentionInterface (MPNet, as
        # of transformers 5) cannot switch (asked to, they log a warning and keep their own):
        # handled as a switch that fails
        can_switch = getattr(encoder, "_can_set_attn_implementation", lambda: True)
        try:
            if not can_switch():
                raise ValueError(f"{type(encoder).__name__} runs its own attention, {before!r}")
            switch(kernel)
        except (ValueError, ImportError) as e:
            if choice == "auto":
                yield
                return
            raise ConfigError(
                f"attention {kernel!r} is not available for this model "
                f"({str(e).splitlines()[0]}); use attention=auto"
            ) from None
        try:
            yield
        finally:
            switch(before)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds CUDA
