"""The contract every registered objective must keep, plus reference checks for each one."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from contrafit.config import ModelConfig, ObjectiveConfig
from contrafit.errors import ConfigError
from contrafit.modeling import TextClassifier, load_encoder
from contrafit.objectives import OBJECTIVES, Step, TaskInfo, build_objective


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    encoder, tokenizer = load_encoder(tiny_model_dir)
    torch.manual_seed(0)
    model = TextClassifier(encoder, ModelConfig(max_length=16), num_classes=3)
    return model, tokenizer


def _batch(tokenizer, labels):
    texts = [f"text number {i} about class {y}" for i, y in enumerate(labels)]
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    word_ids = [[-1 if w is None else w for w in enc.word_ids(i)] for i in range(len(texts))]
    return {**enc, "labels": torch.tensor(labels), "word_ids": torch.tensor(word_ids)}


def _task(model, tokenizer=None):
    return TaskInfo(
        num_classes=3,
        embedding_dim=model.embedding_dim,
        class_counts=(3, 2, 1),
        vocab_size=30522,
        tokenizer=tokenizer,
        encoder_config=model.encoder.config,
    )


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_contract_finite_loss_parts_and_gradient_reaches_encoder(tiny, name):
    model, tokenizer = tiny
    objective = build_objective([ObjectiveConfig(name)], _task(model, tokenizer))
    objective.bind(model)
    # class 2 has a single example in the batch: no NaN allowed
    out = objective(Step(model, _batch(tokenizer, [0, 0, 0, 1, 1, 2])))
    assert out.loss.dim() == 0 and math.isfinite(out.loss.item())
    assert name in out.parts
    model.zero_grad()
    out.loss.backward()
    grad = model.encoder.get_input_embeddings().weight.grad
    assert grad is not None and grad.abs().sum() > 0, "no gradient reached the encoder"


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_contract_missing_field_is_a_clear_error(tiny, name):
    model, tokenizer = tiny
    objective = build_objective([ObjectiveConfig(name)], _task(model, tokenizer))
    if "labels" not in objective.needs.fields:
        pytest.skip("does not need labels")
    batch = _batch(tokenizer, [0, 1, 2])
    del batch["labels"]
    with pytest.raises(ConfigError, match=r"needs batch field\(s\) \['labels'\]"):
        objective(Step(model, batch))


def test_cross_entropy_matches_reference_with_smoothing_and_balanced_weights(tiny):
    model, tokenizer = tiny
    task = _task(model)
    cfg = ObjectiveConfig(
        "cross_entropy", params={"label_smoothing": 0.1, "class_weights": "balanced"}
    )
    objective = build_objective([cfg], task)
    batch = _batch(tokenizer, [0, 0, 1, 2])
    step = Step(model, batch)
    loss = objective(step).loss
    weights = torch.tensor([6 / (3 * 3), 6 / (3 * 2), 6 / (3 * 1)])
    expected = F.cross_entropy(
        step.outputs.logits, batch["labels"], weight=weights, label_smoothing=0.1
    )
    torch.testing.assert_close(loss, expected)


def test_weighted_sum_and_one_forward_per_step(tiny):
    model, tokenizer = tiny
    calls = []
    handle = model.encoder.register_forward_hook(lambda *a: calls.append(1))
    objective = build_objective(
        [
            ObjectiveConfig("cross_entropy", weight=0.25),
            ObjectiveConfig("cross_entropy", weight=0.5),
        ],
        _task(model),
    )
    out = objective(Step(model, _batch(tokenizer, [0, 1, 2])))
    handle.remove()
    assert len(calls) == 1, "every loss term of a step must share one encoder forward"
    torch.testing.assert_close(out.loss, 0.75 * out.parts["cross_entropy"])


def test_unknown_objective_and_argument_are_clear(tiny):
    model, _ = tiny
    with pytest.raises(ConfigError, match=r"unknown objective 'nope'; choose one of"):
        build_objective([ObjectiveConfig("nope")], _task(model))
    with pytest.raises(ConfigError, match=r"unknown argument\(s\) \['temp'\]"):
        build_objective([ObjectiveConfig("cross_entropy", params={"temp": 1})], _task(model))


def test_epo_combination_trains_the_encoder_and_reports_alphas(tiny):
    model, tokenizer = tiny
    configs = [
        ObjectiveConfig("cross_entropy"),
        ObjectiveConfig("supcon", params={"part": "pull"}),
        ObjectiveConfig("supcon", params={"part": "push"}),
    ]
    objective = build_objective(configs, _task(model), "epo")
    out = objective(Step(model, _batch(tokenizer, [0, 0, 1, 1, 2, 2])))
    alphas = [v.item() for k, v in out.parts.items() if k.startswith("epo_alpha/")]
    assert len(alphas) == 3 and sum(alphas) == pytest.approx(1.0, abs=1e-6)
    model.zero_grad()
    out.loss.backward()
    assert model.encoder.get_input_embeddings().weight.grad.abs().sum() > 0


def test_supcon_parts_sum_to_the_whole_up_to_the_shift(tiny):
    model, tokenizer = tiny
    step = Step(model, _batch(tokenizer, [0, 0, 1, 1, 2, 2]))
    task = _task(model)

    def value(part):
        return build_objective([ObjectiveConfig("supcon", params={"part": part})], task)(step).loss

    torch.testing.assert_close(value("pull") + value("push") - 2 / 0.3, value("both"))
    assert value("pull") >= 0 and value("push") >= 0


def test_supcon_dropout_views_pair_each_text_with_its_second_encoding(tiny):
    from contrafit.objectives.functional import supcon_terms

    model, tokenizer = tiny
    model = copy.deepcopy(model).train()  # dropout on: the second pass differs from the first
    batch = _batch(tokenizer, [0, 1, 2])  # one text per class: only the views are positives
    objective = build_objective(
        [ObjectiveConfig("supcon", params={"dropout_views": 2})], _task(model)
    )
    torch.manual_seed(1)
    out = objective(Step(model, batch))
    torch.manual_seed(1)  # the same two dropout masks, computed by hand
    first, second = model(batch).embeddings, model(batch).embeddings
    assert not torch.allclose(first, second)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    pull, push = supcon_terms(torch.cat([first, second]), labels, 0.3)
    torch.testing.assert_close(out.loss, pull + push)
    model.zero_grad()
    out.loss.backward()
    assert model.encoder.get_input_embeddings().weight.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="dropout_views"):
        build_objective([ObjectiveConfig("supcon", params={"dropout_views": 3})], _task(model))


@pytest.mark.parametrize("name", ["proxy_anchor", "proxy_nca", "soft_triple"])
def test_proxies_are_in_the_optimizer_and_move(tiny, name):
    from contrafit.config import PhaseConfig
    from contrafit.training.optim import build_optimizer

    model, tokenizer = tiny
    objective = build_objective([ObjectiveConfig(name, params={"proxy_lr": 0.05})], _task(model))
    phase = PhaseConfig(name="p", objectives=[ObjectiveConfig(name)], lr=1e-5)
    optimizer = build_optimizer(model, objective, phase)
    proxy_params = {id(p) for p in objective.parameters()}
    groups = [g for g in optimizer.param_groups if {id(p) for p in g["params"]} & proxy_params]
    assert len(groups) == 1 and groups[0]["lr"] == 0.05
    before = [p.detach().clone() for p in objective.parameters()]
    objective(Step(model, _batch(tokenizer, [0, 0, 1, 1, 2, 2]))).loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    assert any(not torch.equal(b, p) for b, p in zip(before, objective.parameters(), strict=True))


def test_fused_optimizer_matches_the_reference_adamw(tiny):
    """The fused kernel (speed) must take the same steps as PyTorch's reference AdamW loop."""

    from contrafit.config import PhaseConfig
    from contrafit.training.optim import build_optimizer

    model, tokenizer = tiny
    model = copy.deepcopy(model)
    reference = copy.deepcopy(model)
    objective = build_objective([ObjectiveConfig("supcon")], _task(model))
    phase = PhaseConfig(name="p", objectives=[ObjectiveConfig("supcon")], lr=1e-3)
    fused = build_optimizer(model, objective, phase)
    assert fused.defaults["fused"]
    slow = torch.optim.AdamW(
        [
            {**g, "params": [dict(reference.named_parameters())[n] for n in names]}
            for g, names in zip(
                fused.param_groups,
                [
                    [n for n, p in model.named_parameters() if any(p is q for q in g["params"])]
                    for g in fused.param_groups
                ],
                strict=True,
            )
        ],
        foreach=False,
        fused=False,
    )
    batch = _batch(tokenizer, [0, 0, 1, 1, 2, 2])
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    for _ in range(3):
        for m, opt in ((model, fused), (reference, slow)):
            objective(Step(m, batch)).loss.backward()
            opt.step()
            opt.zero_grad()
    for (name, p), q in zip(model.named_parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)
    assert sum(not torch.equal(start[n], p) for n, p in model.named_parameters()) > 10


@pytest.mark.parametrize("scale", [1e-3, 1e3])
def test_clip_gradients_matches_clip_grad_norm(scale):
    from contrafit.training.optim import clip_gradients

    torch.manual_seed(0)
    a = [torch.nn.Parameter(torch.randn(5, 3)), torch.nn.Parameter(torch.randn(7))]
    b = [torch.nn.Parameter(p.detach().clone()) for p in a]
    for p, q in zip(a, b, strict=True):
        p.grad = torch.randn_like(p) * scale
        q.grad = p.grad.clone()
    clip_gradients(a, 1.0)
    torch.nn.utils.clip_grad_norm_(b, 1.0)
    for p, q in zip(a, b, strict=True):
        torch.testing.assert_close(p.grad, q.grad)
    norm = torch.cat([p.grad.flatten() for p in a]).norm()
    assert norm < 0.1 if scale < 1 else abs(norm - 1.0) < 1e-4  # untouched, or clipped to 1
