"""Packed dropout masks: the same distribution as torch's dropout, seeded, with gradients, and
swapped into the encoder only while it trains on a CPU."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from transformers.models.bert.modeling_bert import eager_attention_forward

from contrafit.modeling.dropout import (
    ATTENTION_KERNEL,
    PackedDropout,
    eager_attention_packed_dropout,
    keep_mask,
    packed_dropout,
    packed_dropout_fn,
)
from contrafit.modeling.encoder import load_encoder
from contrafit.training.runtime import attention

CPU = torch.device("cpu")


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_each_lane_of_a_draw_drops_with_probability_p(p):
    torch.manual_seed(0)
    dropped = ~keep_mask(torch.Size([4_000_000]), p, CPU)
    # the 4 lanes of one 64-bit draw: none may be biased (a sign bit always 0 would show here)
    by_lane = dropped.view(-1, 4).float().mean(0)
    # binomial std over 1M draws is <= 0.0005; 0.003 is 6 standard deviations
    torch.testing.assert_close(by_lane, torch.full((4,), p), atol=3e-3, rtol=0)
    lanes = dropped.view(-1, 4).float()
    corr = torch.corrcoef(lanes.T)  # lanes of one draw are independent
    assert (corr - torch.eye(4)).abs().max() < 0.01


def test_masks_follow_torch_seed():
    torch.manual_seed(3)
    a = keep_mask(torch.Size([64, 7]), 0.1, CPU)
    torch.manual_seed(3)
    b = keep_mask(torch.Size([64, 7]), 0.1, CPU)
    torch.manual_seed(4)
    c = keep_mask(torch.Size([64, 7]), 0.1, CPU)
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_forward_scales_kept_elements_and_backward_uses_the_same_mask(dtype):
    torch.manual_seed(1)
    x = torch.randn(32, 16, 48, dtype=dtype, requires_grad=True)
    y = packed_dropout_fn(x, 0.25, training=True)
    kept = y != 0
    assert 0.2 < 1 - kept.float().mean().item() < 0.3
    # exactly torch's arithmetic for the same mask: x · mask, then · 1/(1-p) in float32
    assert torch.equal(y, torch.ops.aten.native_dropout_backward(x.detach(), kept, 1 / 0.75))
    y.backward(torch.ones_like(y))
    assert torch.equal(
        x.grad, torch.ops.aten.native_dropout_backward(torch.ones_like(x), kept, 1 / 0.75)
    )


def test_identity_when_not_training_or_p_is_zero_and_zero_at_p_one():
    x = torch.randn(5, 6)
    assert packed_dropout_fn(x, 0.1, training=False) is x
    assert packed_dropout_fn(x, 0.0, training=True) is x
    assert torch.equal(packed_dropout_fn(x, 1.0, training=True), torch.zeros_like(x))
    module = PackedDropout(0.1).eval()
    assert module(x) is x


def test_attention_kernel_matches_transformers_eager_attention_without_dropout():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 8) for _ in range(3))
    mask = torch.zeros(2, 1, 5, 5)
    mask[1, ..., 3:] = torch.finfo(torch.float32).min  # padding in the second text
    layer = nn.Module().train()
    ours = eager_attention_packed_dropout(layer, q, k, v, mask, scaling=0.3, dropout=0.0)
    theirs = eager_attention_forward(layer, q, k, v, mask, scaling=0.3, dropout=0.0)
    torch.testing.assert_close(ours[0], theirs[0])
    torch.testing.assert_close(ours[1], theirs[1])
    dropped = eager_attention_packed_dropout(layer, q, k, v, mask, scaling=0.3, dropout=0.5)[1]
    assert (dropped == 0).any()


def test_the_encoder_trains_with_packed_masks_and_gets_them_back_after(tiny_model_dir):
    encoder, tokenizer = load_encoder(tiny_model_dir)
    encoder.train()
    originals = [m for m in encoder.modules() if type(m) is nn.Dropout]
    assert originals and all(m.p > 0 for m in originals)
    batch = tokenizer(
        ["a short text", "a longer text with padding in it"], padding=True, return_tensors="pt"
    )

    def run(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        encoder.zero_grad()
        torch.manual_seed(seed)
        with attention(encoder, "auto", CPU, training=True, dropout="packed"):
            assert not any(type(m) is nn.Dropout for m in encoder.modules())
            assert sum(isinstance(m, PackedDropout) for m in encoder.modules()) == len(originals)
            hidden = encoder(**batch).last_hidden_state
        hidden[batch["attention_mask"].bool()].pow(2).sum().backward()
        return hidden.detach(), encoder.encoder.layer[0].attention.self.query.weight.grad.clone()

    first, grad = run(0)
    again, grad_again = run(0)
    other, _ = run(1)
    assert torch.equal(first, again) and torch.equal(grad, grad_again)  # seeded
    assert not torch.equal(first, other)  # dropout is on
    assert grad.abs().sum() > 0  # gradients reach the encoder through the packed masks
    assert [m for m in encoder.modules() if isinstance(m, nn.Dropout)] == originals
    encoder.eval()
    with torch.no_grad():
        plain = encoder(**batch).last_hidden_state
    assert not torch.equal(first, plain)


def test_the_packed_kernel_masks_padding(tiny_model_dir):
    # transformers builds no mask for a kernel it has no mask function for: padded tokens would
    # then be attended to, and a text's vectors would depend on the batch it is padded in
    encoder, tokenizer = load_encoder(tiny_model_dir)
    encoder.eval()  # dropout off, so only the mask can make a difference
    texts = ["a short text", "a longer text with padding in it"]
    padded = tokenizer(texts, padding=True, return_tensors="pt")
    alone = tokenizer(texts[:1], return_tensors="pt")
    n = int(alone["attention_mask"].sum())
    assert n < padded["input_ids"].shape[1]  # the short text is padded in the batch
    with torch.no_grad(), attention(encoder, "auto", CPU, training=True, dropout="packed"):
        assert encoder.config._attn_implementation == ATTENTION_KERNEL
        in_batch = encoder(**padded).last_hidden_state[0, :n]
        by_itself = encoder(**alone).last_hidden_state[0]
    torch.testing.assert_close(in_batch, by_itself, atol=1e-5, rtol=1e-4)


def test_swap_restores_modules_even_when_the_block_fails():
    model = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.2), nn.Sequential(nn.Dropout(0.3)))
    before = list(model.modules())
    with pytest.raises(RuntimeError), packed_dropout(model):
        assert isinstance(model[1], PackedDropout) and model[2][0].p == 0.3
        raise RuntimeError("boom")
    assert list(model.modules()) == before
