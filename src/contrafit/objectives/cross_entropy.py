"""Cross-entropy on the head's logits, with optional label smoothing and class weights."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from contrafit.errors import ConfigError
from contrafit.objectives.base import LossOutput, Needs, Objective, Step, TaskInfo


class CrossEntropy(Objective):
    needs = Needs(fields=("input_ids", "attention_mask", "labels"))

    def __init__(
        self,
        task: TaskInfo,
        label_smoothing: float = 0.0,
        class_weights: str | list[float] | None = None,
    ):
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise ConfigError(
                f"cross_entropy.label_smoothing must be in [0, 1), got {label_smoothing}"
            )
        self.label_smoothing = label_smoothing
        self.register_buffer("class_weights", _class_weights(class_weights, task), persistent=False)

    def compute(self, step: Step) -> LossOutput:
        logits = step.outputs.logits
        weight = self.class_weights.to(logits.device) if self.class_weights.numel() else None
        loss = F.cross_entropy(
            logits.float(),
            step.batch["labels"],
            weight=weight,
            label_smoothing=self.label_smoothing,
        )
        return LossOutput(loss)


def _class_weights(spec: str | list[float] | None, task: TaskInfo) -> torch.Tensor:
    if spec is None:
        return torch.empty(0)
    if spec == "balanced":  # n / (k · n_c), as scikit-learn's compute_class_weight
        counts = torch.tensor(task.class_counts, dtype=torch.float)
        return counts.sum() / (len(counts) * counts.clamp(min=1))
    if isinstance(spec, list) and len(spec) == task.num_classes:
        return torch.tensor(spec, dtype=torch.float)
    raise ConfigError(
        f"cross_entropy.class_weights must be 'balanced' or a list of {task.num_classes} numbers, "
        f"got {spec!r}"
    )
