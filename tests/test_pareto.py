"""EPO on the two-objective toy problem of Mahapatra & Rajan (2020): its Pareto front is concave,
so linear scalarisation can only reach its ends, while EPO lands on the preference ray."""

import numpy as np
import pytest
import torch

from contrafit.objectives.pareto import epo_weights, non_uniformity


def _losses_and_grads(x):
    x = x.detach().requires_grad_(True)
    n = x.numel()
    f1 = 1 - torch.exp(-((x - 1 / n**0.5) ** 2).sum())
    f2 = 1 - torch.exp(-((x + 1 / n**0.5) ** 2).sum())
    (g1,) = torch.autograd.grad(f1, x)
    (g2,) = torch.autograd.grad(f2, x)
    return np.array([f1.item(), f2.item()]), torch.stack([g1, g2]).double().numpy()


def _descend(x, preference, method, steps=150, lr=0.2):
    x = torch.tensor(x, dtype=torch.float64)
    for _ in range(steps):
        losses, G = _losses_and_grads(x)
        w = epo_weights(losses, G @ G.T, preference) if method == "epo" else preference
        x = x - lr * torch.from_numpy(w @ G)
    return _losses_and_grads(x)[0]


@pytest.mark.parametrize(
    "preference", [np.array([0.3, 0.7]), np.array([0.6, 0.4]), np.array([0.8, 0.2])]
)
def test_epo_reaches_the_preference_ray_where_linear_scalarisation_does_not(preference):
    start = [0.9, -0.2, 0.4]
    epo = _descend(start, preference, "epo")
    linear = _descend(start, preference, "linear")
    # on the ray r1·l1 = r2·l2, i.e. the non-uniformity μ is ~0
    assert non_uniformity(preference * epo) < 1e-3, epo
    assert non_uniformity(preference * linear) > 20 * non_uniformity(preference * epo), (
        linear,
        epo,
    )
    # EPO's point is Pareto-stationary-ish: both losses below 1 (not a dominated corner)
    assert (epo < 0.95).all()


def test_epo_weights_are_on_the_simplex():
    rng = np.random.default_rng(0)
    G = rng.normal(size=(3, 10))
    alpha = epo_weights(np.array([1.0, 2.0, 0.5]), G @ G.T, np.array([1.0, 1.0, 1.0]))
    assert alpha.shape == (3,) and (alpha >= 0).all() and alpha.sum() == pytest.approx(1.0)


def test_epo_false_terms_are_added_with_their_weight_outside_the_search(tiny_model_dir):
    import torch

    from contrafit.config import ModelConfig, ObjectiveConfig
    from contrafit.errors import ConfigError
    from contrafit.modeling import TextClassifier, load_encoder
    from contrafit.objectives import Step, TaskInfo, build_objective

    encoder, tok = load_encoder(tiny_model_dir)
    torch.manual_seed(0)
    model = TextClassifier(encoder, ModelConfig(), 2)
    task = TaskInfo(2, model.embedding_dim, (2, 2), len(tok), 0, tok, encoder.config)
    configs = [
        ObjectiveConfig("cross_entropy", 0.1, epo=False),
        ObjectiveConfig("supcon", 0.45, {"part": "pull"}),
        ObjectiveConfig("supcon", 0.45, {"part": "push"}),
    ]
    objective = build_objective(configs, task, "epo")
    enc = tok(["a b", "c d", "e f", "g h"], padding=True, return_tensors="pt")
    out = objective(Step(model, {**enc, "labels": torch.tensor([0, 1, 0, 1])}))
    alphas = [out.parts[f"epo_alpha/{n}"].item() for n in ("supcon", "supcon_2")]
    assert "epo_alpha/cross_entropy" not in out.parts and sum(alphas) == pytest.approx(1.0)
    expected = 0.1 * out.parts["cross_entropy"] + 0.9 * (
        alphas[0] * out.parts["supcon"] + alphas[1] * out.parts["supcon_2"]
    )
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(ConfigError, match="only means something in a phase with combine: epo"):
        build_objective(configs, task, "sum")
