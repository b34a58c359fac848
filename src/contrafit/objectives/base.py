"""The one contract every training objective follows.

An objective is an ``nn.Module`` called with a :class:`Step` (the model and the batch, at call
time) that returns a :class:`LossOutput`: a scalar loss plus named parts for logging. It declares
what it needs in ``needs`` (batch fields, a class-balanced sampler, unlabeled data) and owns its
learnable parameters (proxies, centres, decoders) as submodules, so the optimizer sees them. The
training loop never asks which objective it runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import torch
from torch import nn

from contrafit.errors import ConfigError
from contrafit.modeling.model import ModelOutput, TextClassifier


@dataclass(frozen=True)
class Needs:
    fields: tuple[str, ...] = ("input_ids", "attention_mask")
    sampler: str = "random"  # "random" or "m_per_class" (every anchor gets positives)
    samples_per_class: int = 2  # m, for the m_per_class sampler
    unlabeled: bool = False  # trains on unlabeled task text
    # reads the encoder's token embeddings, not only the pooled vector: a frozen encoder's pooled
    # features cannot then stand in for running it (see run_phase)
    tokens: bool = False

    def merge(self, other: Needs) -> Needs:
        samplers = {self.sampler, other.sampler} - {"random"}
        if len(samplers) > 1:
            raise ConfigError(f"objectives need incompatible samplers: {sorted(samplers)}")
        return Needs(
            fields=tuple(dict.fromkeys(self.fields + other.fields)),
            sampler=samplers.pop() if samplers else "random",
            samples_per_class=max(self.samples_per_class, other.samples_per_class),
            unlabeled=self.unlabeled or other.unlabeled,
            tokens=self.tokens or other.tokens,
        )


@dataclass
class LossOutput:
    loss: torch.Tensor
    parts: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskInfo:
    """What an objective may need to build itself (sizes, class counts)."""

    num_classes: int
    embedding_dim: int
    class_counts: tuple[int, ...]
    vocab_size: int
    seed: int = 0  # seeds the objective's own noise (masking, deletion)
    tokenizer: Any = None
    encoder_config: Any = None
    model_path: str | None = None  # the encoder's folder, to reuse a checkpoint's own heads


class Step:
    """One training step's model and batch. ``outputs`` runs the encoder once, on first use, so
    every objective of the step shares a single forward pass."""

    def __init__(self, model: TextClassifier, batch: dict[str, torch.Tensor]):
        self.model = model
        self.batch = batch

    @cached_property
    def outputs(self) -> ModelOutput:
        return self.model(self.batch)


class Objective(nn.Module):
    """Subclasses set ``needs`` and implement ``compute``."""

    needs: Needs = Needs()

    def param_groups(self, lr: float) -> list[dict]:
        """Optimizer groups for this objective's own parameters (proxies, centres, decoders).
        Override to give them their own learning rate, as Proxy-Anchor's authors do."""
        params = [p for p in self.parameters() if p.requires_grad]
        return [{"params": params, "lr": lr}] if params else []

    def forward(self, step: Step) -> LossOutput:
        missing = [f for f in self.needs.fields if f not in step.batch]
        if missing:
            raise ConfigError(
                f"objective {type(self).__name__} needs batch field(s) {missing}, but the batch has "
                f"{sorted(step.batch)}. Use it in a phase with data: labeled."
            )
        return self.compute(step)

    def compute(self, step: Step) -> LossOutput:
        raise NotImplementedError

    def class_proxies(self) -> torch.Tensor | None:
        """(classes, dim) learned class representatives for proxy inference, if this has any."""
        return None

    def bind(self, model: TextClassifier) -> None:
        """Called once before the optimizer is built: tie parameters to the model (e.g. an MLM
        decoder to the word embeddings). Shared parameters are optimised once, with the model's."""


class WeightedSum(Objective):
    """Σ wᵢ·Lᵢ over named objectives; parts are logged as ``name/part``."""

    def __init__(self, terms: dict[str, tuple[float, Objective]]):
        super().__init__()
        self.weights = {name: w for name, (w, _) in terms.items()}
        self.terms = nn.ModuleDict({name: obj for name, (_, obj) in terms.items()})
        needs = Needs()
        for obj in self.terms.values():
            needs = needs.merge(obj.needs)
        self.needs = needs

    def param_groups(self, lr: float) -> list[dict]:
        return [g for obj in self.terms.values() for g in obj.param_groups(lr)]

    def class_proxies(self) -> torch.Tensor | None:
        return next((p for o in self.terms.values() if (p := o.class_proxies()) is not None), None)

    def bind(self, model: TextClassifier) -> None:
        for obj in self.terms.values():
            obj.bind(model)

    def compute(self, step: Step) -> LossOutput:
        total, parts = 0.0, {}
        for name, obj in self.terms.items():
            out = obj(step)
            total = total + self.weights[name] * out.loss
            parts[name] = out.loss.detach()
            parts.update({f"{name}/{k}": v.detach() for k, v in out.parts.items()})
        return LossOutput(total, parts)
