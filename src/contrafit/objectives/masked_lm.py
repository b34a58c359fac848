"""Masked-language-model post-training (TAPT) on unlabeled task text.

The MLM head comes from the checkpoint when it ships one; otherwise (the offline MiniLM ships none)
a fresh head is initialised, its output layer tied to the encoder's word embeddings.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch import nn

from contrafit.data.noise import mlm_mask
from contrafit.errors import ConfigError
from contrafit.objectives.base import LossOutput, Needs, Objective, Step, TaskInfo

logger = logging.getLogger("contrafit")


def build_mlm_head(task: TaskInfo) -> tuple[nn.Module, str]:
    """The architecture's MLM head (e.g. BERT's ``cls``) and the name of its output layer."""
    from transformers import AutoModelForMaskedLM

    mlm = AutoModelForMaskedLM.from_config(task.encoder_config)
    heads = {n: m for n, m in mlm.named_children() if n != mlm.base_model_prefix}
    if len(heads) != 1:
        raise ConfigError(f"masked_lm: cannot find a single MLM head in {type(mlm).__name__}")
    ((name, head),) = heads.items()
    out = mlm.get_output_embeddings()
    out_name = next(n for n, m in head.named_modules() if m is out)
    loaded = _load_checkpoint_head(head, name, task.model_path)
    logger.info(
        "masked_lm: %s",
        f"loaded {loaded} head tensors from the checkpoint"
        if loaded
        else "no MLM head in the checkpoint; a new head, tied to the word embeddings",
    )
    return head, out_name


def _load_checkpoint_head(head: nn.Module, prefix: str, model_path: str | None) -> int:
    if not model_path or not Path(model_path).is_dir():
        return 0
    state = {}
    for file in Path(model_path).glob("*.safetensors"):
        with safe_open(str(file), framework="pt") as f:
            state.update(
                {
                    k[len(prefix) + 1 :]: f.get_tensor(k)
                    for k in f.keys()  # noqa: SIM118 - safe_open is not a dict
                    if k.startswith(prefix + ".")
                }
            )
    if state:
        head.load_state_dict(state, strict=False)
    return len(state)


class MaskedLM(Objective):
    needs = Needs(fields=("input_ids", "attention_mask"), unlabeled=True)

    def __init__(self, task: TaskInfo, mask_prob: float = 0.15):
        super().__init__()
        if not 0.0 < mask_prob < 1.0:
            raise ConfigError(f"masked_lm.mask_prob must be in (0, 1), got {mask_prob}")
        self.mask_prob = mask_prob
        self.head, self._out_name = build_mlm_head(task)
        self.mask_token_id = task.tokenizer.mask_token_id
        self.special_ids = torch.tensor(sorted(task.tokenizer.all_special_ids))
        self.vocab_size = task.encoder_config.vocab_size
        self.generator = torch.Generator().manual_seed(task.seed)

    def bind(self, model) -> None:
        self.head.get_submodule(self._out_name).weight = model.encoder.get_input_embeddings().weight

    def masked_loss(
        self, step: Step, selected: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """MLM loss of one masked view; returns (loss, masked-token accuracy, pooled embedding)."""
        ids, mask = step.batch["input_ids"], step.batch["attention_mask"]
        maskable = mask.bool().cpu() & ~torch.isin(ids.cpu(), self.special_ids)
        inputs, labels = mlm_mask(
            ids.cpu(),
            maskable,
            self.mask_prob,
            self.mask_token_id,
            self.vocab_size,
            self.generator,
            selected,
        )
        inputs, labels = inputs.to(ids.device), labels.to(ids.device)
        tokens, pooled = step.model.embed(inputs, mask, step.batch.get("token_type_ids"))
        loss, accuracy = self.token_loss(tokens, labels)
        return loss, accuracy, pooled

    def token_loss(
        self, tokens: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-entropy of the MLM head at the labelled positions (-100 elsewhere), and its
        accuracy. A batch without targets gives a zero that keeps the graph."""
        where = labels != -100
        if not where.any():
            zero = tokens.sum() * 0.0
            return zero, zero.detach()
        logits = self.head(tokens[where]).float()  # only masked positions: (n_masked, vocab)
        target = labels[where]
        accuracy = (logits.argmax(-1) == target).float().mean().detach()
        return F.cross_entropy(logits, target), accuracy

    def compute(self, step: Step) -> LossOutput:
        loss, accuracy, _ = self.masked_loss(step)
        return LossOutput(loss, {"accuracy": accuracy})
