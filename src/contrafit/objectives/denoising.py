"""Denoising auto-encoder post-training, TSDAE-style (Wang et al. 2021; the first phase of
Lopez-Avila & Suárez-Paniagua 2024): delete words from the input, encode it, and reconstruct the
original text with a decoder that sees only the pooled sentence vector (cross-attention to one
position).

The decoder is the encoder's architecture as a causal LM with cross-attention. ``tie_decoder``
shares every encoder weight with it (the cross-attention stays its own); otherwise it starts as a
copy. Tying is done here by sharing parameters by name, not with transformers' tying helpers
(sentence-transformers' tied decoder broke with transformers 5, its issue #3737).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from contrafit.data.noise import delete_words
from contrafit.errors import ConfigError
from contrafit.objectives.base import LossOutput, Needs, Objective, Step, TaskInfo


def _set_parameter(root: nn.Module, dotted: str, param: nn.Parameter) -> None:
    module_path, _, leaf = dotted.rpartition(".")
    setattr(root.get_submodule(module_path) if module_path else root, leaf, param)


class DenoisingAutoEncoder(Objective):
    needs = Needs(fields=("input_ids", "attention_mask", "word_ids"), unlabeled=True)

    def __init__(self, task: TaskInfo, deletion_ratio: float = 0.6, tie_decoder: bool = True):
        from transformers import AutoModelForCausalLM

        super().__init__()
        if not 0.0 <= deletion_ratio < 1.0:
            raise ConfigError(f"dae.deletion_ratio must be in [0, 1), got {deletion_ratio}")
        config = copy.deepcopy(task.encoder_config)
        config.is_decoder = True
        config.add_cross_attention = True
        try:
            self.decoder = AutoModelForCausalLM.from_config(config)
        except ValueError as e:
            raise ConfigError(
                f"dae: {type(task.encoder_config).__name__} has no causal-LM decoder: {e}"
            ) from None
        self.deletion_ratio = deletion_ratio
        self.tie_decoder = tie_decoder
        self.pad_id = task.tokenizer.pad_token_id
        self.generator = torch.Generator().manual_seed(task.seed)

    def bind(self, model) -> None:
        encoder = model.encoder
        base = getattr(self.decoder, self.decoder.base_model_prefix)
        shared = dict(encoder.named_parameters())
        n_tied = 0
        for name, param in list(base.named_parameters()):
            source = shared.get(name)
            if source is None or source.shape != param.shape:
                continue  # cross-attention and anything else the encoder lacks
            if self.tie_decoder:
                _set_parameter(base, name, source)
            else:
                param.data.copy_(source.data)
            n_tied += 1
        if n_tied == 0:
            raise ConfigError(
                "dae: the decoder shares no weights with the encoder; check the model type"
            )
        out = self.decoder.get_output_embeddings()
        if self.tie_decoder:
            out.weight = encoder.get_input_embeddings().weight
        else:
            out.weight.data.copy_(encoder.get_input_embeddings().weight.data)

    def compute(self, step: Step) -> LossOutput:
        ids, mask = step.batch["input_ids"], step.batch["attention_mask"]
        noisy, noisy_mask = delete_words(
            ids.cpu(),
            mask.cpu(),
            step.batch["word_ids"].cpu(),
            self.deletion_ratio,
            self.generator,
            self.pad_id,
        )
        _, sentence = step.model.embed(noisy.to(ids.device), noisy_mask.to(ids.device))
        labels = ids.masked_fill(~mask.bool(), -100)
        out = self.decoder(
            input_ids=ids,
            attention_mask=mask,
            encoder_hidden_states=sentence[
                :, None, :
            ],  # the only thing the decoder sees of the input
            labels=labels,
        )
        return LossOutput(out.loss)
