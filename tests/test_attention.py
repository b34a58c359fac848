"""The attention kernel: eager to train on a CPU, SDPA to infer; both compute the same model."""

from __future__ import annotations

import pytest
import torch
from conftest import TINY

from contrafit import ContrafitClassifier
from contrafit.errors import ConfigError
from contrafit.modeling.dropout import ATTENTION_KERNEL as PACKED
from contrafit.modeling.encoder import load_encoder
from contrafit.training.runtime import attention, attention_kernel

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def test_auto_is_eager_for_cpu_training_and_sdpa_otherwise():
    assert attention_kernel("auto", CPU, training=True) == "eager"
    # with packed dropout masks, eager attention draws them packed too
    assert attention_kernel("auto", CPU, training=True, dropout="packed") == PACKED
    assert attention_kernel("auto", CPU, training=False, dropout="packed") == "sdpa"
    assert attention_kernel("auto", CUDA, training=True, dropout="packed") == "sdpa"
    assert attention_kernel("eager", CUDA, training=True, dropout="packed") == PACKED
    assert attention_kernel("auto", CPU, training=False) == "sdpa"
    assert attention_kernel("auto", CUDA, training=True) == "sdpa"
    assert attention_kernel("sdpa", CPU, training=True) == "sdpa"  # an explicit choice wins
    assert attention_kernel("eager", CUDA, training=False) == "eager"


def test_switch_holds_inside_the_block_and_is_undone_after(tiny_model_dir):
    encoder, _ = load_encoder(tiny_model_dir)
    before = encoder.config._attn_implementation
    with attention(encoder, "auto", CPU, training=True):
        assert encoder.config._attn_implementation == "eager"
    assert encoder.config._attn_implementation == before


def test_both_kernels_give_the_same_embeddings_and_gradients(tiny_model_dir):
    encoder, tokenizer = load_encoder(tiny_model_dir)
    batch = tokenizer(
        ["a short text", "a somewhat longer text with padding"], padding=True, return_tensors="pt"
    )
    results = {}
    for kernel in ("eager", "sdpa"):
        encoder.zero_grad()
        with attention(encoder, kernel, CPU, training=True):
            hidden = encoder(**batch).last_hidden_state
        hidden[batch["attention_mask"].bool()].pow(2).sum().backward()
        grad = encoder.encoder.layer[0].attention.self.query.weight.grad.clone()
        results[kernel] = (hidden.detach(), grad)
    torch.testing.assert_close(results["eager"][0], results["sdpa"][0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(results["eager"][1], results["sdpa"][1], atol=1e-5, rtol=1e-4)


def test_training_runs_eager_and_prediction_sdpa(tiny_model_dir, toy_files, monkeypatch):
    seen: list[tuple[bool, str]] = []
    from transformers.models.bert import modeling_bert

    forward = modeling_bert.BertSelfAttention.forward

    def spy(self, *args, **kwargs):
        seen.append((torch.is_grad_enabled(), self.config._attn_implementation))
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(modeling_bert.BertSelfAttention, "forward", spy)
    clf = ContrafitClassifier(
        recipe="ce", model=tiny_model_dir, overrides=[*TINY, "phases.*.epochs=1"], progress=False
    ).fit(str(toy_files["train"]), dev=str(toy_files["dev"]))
    assert {kernel for grad, kernel in seen if grad} == {"eager"}  # training steps
    assert {kernel for grad, kernel in seen if not grad} == {"sdpa"}  # dev evaluation
    seen.clear()
    clf.predict(["a good film"])
    assert [kernel for _, kernel in seen] == ["sdpa"] * len(seen) and seen


def test_an_unknown_kernel_is_a_clear_config_error(tiny_model_dir):
    with pytest.raises(ConfigError, match="attention"):
        ContrafitClassifier(model=tiny_model_dir, overrides=["attention=flash"])


def test_a_model_that_cannot_switch_keeps_its_own_kernel_under_auto_and_says_so_otherwise():
    """MPNet (all-mpnet-base-v2) runs its own attention: transformers would log a warning at
    every switch and keep it, so auto must not ask, and an explicit choice is a clear error."""
    from transformers import MPNetConfig, MPNetModel

    config = MPNetConfig(
        vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32,
    )  # fmt: skip
    encoder = MPNetModel(config)
    assert not encoder._can_set_attn_implementation()

    def fail(*_):
        raise AssertionError("set_attn_implementation was called")

    encoder.set_attn_implementation = fail
    with attention(encoder, "auto", CPU, training=False):  # auto would pick sdpa to infer
        assert encoder.config._attn_implementation == "eager"
    with (
        pytest.raises(ConfigError, match="MPNetModel runs its own attention"),
        attention(encoder, "sdpa", CPU, training=False),
    ):
        pass
