"""Each loss against an independent implementation of its paper's formula, on small fixed tensors."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from contrafit.config import ObjectiveConfig
from contrafit.modeling.model import ModelOutput
from contrafit.objectives import Step, TaskInfo, build_objective
from contrafit.objectives.functional import supcon_loss, supcon_terms

LABELS = torch.tensor([0, 0, 1, 1, 1, 2])
DTYPES = [torch.float32, torch.float64]

# every objective computed on the batch's pooled embeddings (and labels)
EMBEDDING_LOSSES = [
    "supcon",
    "proxy_anchor",
    "proxy_nca",
    "soft_triple",
    "triplet",
    "n_pairs",
    "multi_similarity",
    "nt_xent",
]


def _emb(dtype, seed=0, n=6, d=5):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=dtype)


def _cos(a, b):
    return F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T


def _objective(name, emb, **params):
    task = TaskInfo(
        num_classes=3, embedding_dim=emb.shape[1], class_counts=(2, 3, 1), vocab_size=10
    )
    objective = build_objective([ObjectiveConfig(name, params=params)], task).terms[name]
    return objective.to(emb.dtype)


def _fixed_step(emb, labels=LABELS):
    step = Step(model=None, batch={"input_ids": None, "attention_mask": None, "labels": labels})
    step.__dict__["outputs"] = ModelOutput(None, None, emb, None)  # skip the encoder
    return step


def supcon_reference(z, y, tau):
    """Khosla et al. eq. 2 written as loops."""
    z = F.normalize(z, dim=-1)
    losses = []
    for i in range(len(y)):
        pos = [p for p in range(len(y)) if p != i and y[p] == y[i]]
        if not pos:
            continue
        denom = sum(math.exp(float(z[i] @ z[a]) / tau) for a in range(len(y)) if a != i)
        losses.append(
            -sum(math.log(math.exp(float(z[i] @ z[p]) / tau) / denom) for p in pos) / len(pos)
        )
    return sum(losses) / len(losses)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tau", [0.1, 0.3, 1.0])
def test_supcon_matches_paper_formula(dtype, tau):
    z = _emb(dtype)
    expected = supcon_reference(z.double(), LABELS.tolist(), tau)
    assert supcon_loss(z, LABELS, tau).item() == pytest.approx(expected, rel=1e-5)
    pull, push = supcon_terms(z, LABELS, tau)
    assert (pull + push).item() == pytest.approx(expected, rel=1e-5)
    obj = _objective("supcon", z, temperature=tau)
    assert obj(_fixed_step(z)).loss.item() == pytest.approx(expected, rel=1e-5)


def test_supcon_under_bf16_autocast_is_close_and_finite():
    z = _emb(torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = supcon_loss(z.to(torch.bfloat16), LABELS, 0.1)
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(
        supcon_reference(z.double(), LABELS.tolist(), 0.1), rel=2e-2
    )


def test_supcon_skips_anchors_without_positive_and_never_nans():
    z = _emb(torch.float32, n=3)
    assert supcon_loss(z, torch.tensor([0, 1, 2]), 0.3).item() == 0.0  # no positive at all
    z.requires_grad_(True)
    loss = supcon_loss(z, torch.tensor([0, 0, 1]), 0.3)  # class 1 has a single example
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()


def _proxy_anchor_reference(x, y, proxies, margin, alpha):
    """Kim et al. 2020, eq. 4."""
    s = _cos(x, proxies)
    pos = F.one_hot(y, proxies.shape[0]).bool()
    with_pos = pos.any(0)
    pos_term = (
        torch.log1p((torch.exp(-alpha * (s - margin)) * pos).sum(0))[with_pos].sum()
        / with_pos.sum()
    )
    neg_term = torch.log1p((torch.exp(alpha * (s + margin)) * ~pos).sum(0)).sum() / proxies.shape[0]
    return pos_term + neg_term


@pytest.mark.parametrize("dtype", DTYPES)
def test_proxy_anchor_matches_paper(dtype):
    z = _emb(dtype)
    obj = _objective("proxy_anchor", z, margin=0.1, alpha=32.0)
    expected = _proxy_anchor_reference(z, LABELS, obj.class_proxies().detach(), 0.1, 32.0)
    torch.testing.assert_close(obj(_fixed_step(z)).loss, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_proxy_nca_matches_paper(dtype):
    """Movshovitz-Attias et al. 2017 with normalised embeddings and proxies, the positive proxy
    included in the denominator (the 'softmax' form PML implements)."""
    z = _emb(dtype)
    obj = _objective("proxy_nca", z, softmax_scale=3.0)
    p = F.normalize(obj.class_proxies().detach(), dim=-1)
    d2 = torch.cdist(F.normalize(z, dim=-1), p).pow(2)
    expected = F.cross_entropy(-3.0 * d2, LABELS)
    torch.testing.assert_close(obj(_fixed_step(z)).loss, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_soft_triple_matches_paper(dtype):
    """Qian et al. 2019, eq. 9 (without the centre regulariser, as in PML)."""
    z = _emb(dtype)
    la, gamma, margin, k = 20.0, 0.1, 0.01, 4
    obj = _objective("soft_triple", z, la=la, gamma=gamma, margin=margin, centers_per_class=k)
    centres = F.normalize(obj.loss.fc.detach().T, dim=-1).reshape(3, k, -1)  # (classes, k, dim)
    x = F.normalize(z, dim=-1)
    sims = torch.einsum("nd,ckd->nck", x, centres)
    s = (torch.softmax(sims / gamma, dim=-1) * sims).sum(-1)
    logits = la * (s - margin * F.one_hot(LABELS, 3))
    torch.testing.assert_close(
        obj(_fixed_step(z)).loss, F.cross_entropy(logits, LABELS), rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_triplet_all_matches_formula(dtype):
    """Mean over the triplets with a non-zero hinge of [d(a,p) - d(a,n) + m]_+, L2 on unit vectors."""
    z = _emb(dtype)
    m = 0.5
    obj = _objective("triplet", z, margin=m, mining="all")
    x = F.normalize(z, dim=-1)
    d = torch.cdist(x, x)
    y = LABELS.tolist()
    hinge = [
        max(0.0, float(d[a, p] - d[a, n] + m))
        for a, p, n in itertools.permutations(range(6), 3)
        if y[a] == y[p] and y[a] != y[n]
    ]
    nonzero = [h for h in hinge if h > 0]
    assert obj(_fixed_step(z)).loss.item() == pytest.approx(sum(nonzero) / len(nonzero), rel=1e-4)


@pytest.mark.parametrize("dtype", DTYPES)
def test_multi_similarity_matches_paper(dtype):
    """Wang et al. 2019, eq. 8, averaged over anchors."""
    z = _emb(dtype)
    a, b, lam = 2.0, 50.0, 0.5
    obj = _objective("multi_similarity", z, alpha=a, beta=b, base=lam)
    s = _cos(z, z)
    per_anchor = []
    for i in range(6):
        pos = [j for j in range(6) if j != i and LABELS[j] == LABELS[i]]
        neg = [j for j in range(6) if LABELS[j] != LABELS[i]]
        lp = math.log1p(sum(math.exp(-a * (float(s[i, j]) - lam)) for j in pos)) / a if pos else 0.0
        ln = math.log1p(sum(math.exp(b * (float(s[i, j]) - lam)) for j in neg)) / b if neg else 0.0
        per_anchor.append(lp + ln)
    assert obj(_fixed_step(z)).loss.item() == pytest.approx(sum(per_anchor) / 6, rel=1e-4)


@pytest.mark.parametrize("dtype", DTYPES)
def test_nt_xent_matches_formula(dtype):
    """Per positive pair (a, p): -log e^{s_ap/τ} / (e^{s_ap/τ} + Σ_{n∉class(a)} e^{s_an/τ})."""
    z = _emb(dtype)
    tau = 0.2
    obj = _objective("nt_xent", z, temperature=tau)
    s = _cos(z, z) / tau
    terms = []
    for i, j in itertools.permutations(range(6), 2):
        if LABELS[i] == LABELS[j]:
            negs = [k for k in range(6) if LABELS[k] != LABELS[i]]
            denom = math.exp(float(s[i, j])) + sum(math.exp(float(s[i, k])) for k in negs)
            terms.append(-math.log(math.exp(float(s[i, j])) / denom))
    assert obj(_fixed_step(z)).loss.item() == pytest.approx(sum(terms) / len(terms), rel=1e-4)


@pytest.mark.parametrize("low", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("scale", [1.0, 1e3])  # large activations: fp16 overflows at 65,504
@pytest.mark.parametrize("name", EMBEDDING_LOSSES)
def test_losses_finite_under_low_precision_autocast(name, low, scale):
    z = (_emb(torch.float32) * scale).to(low).requires_grad_(True)
    obj = _objective(name, _emb(torch.float32))
    with torch.autocast("cpu", dtype=low):
        loss = obj(_fixed_step(z)).loss
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()


@pytest.mark.parametrize("name", ["proxy_anchor", "proxy_nca", "soft_triple"])
def test_proxies_are_trained_with_their_own_lr(name):
    z = _emb(torch.float32)
    obj = _objective(name, z, proxy_lr=0.05)
    groups = obj.param_groups(lr=1e-5)
    assert len(groups) == 1 and groups[0]["lr"] == 0.05
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in obj.parameters()}


@pytest.mark.parametrize("dtype", DTYPES)
def test_n_pairs_matches_sohn(dtype):
    """Sohn 2016: one (anchor, positive) pair per class; softmax over the anchor's similarity
    with every pair's positive, the true positive as target; mean over pairs. PML's dot product
    normalises the embeddings (cosine)."""
    z = _emb(dtype)
    obj = _objective("n_pairs", z)
    y = LABELS.tolist()
    pairs = []
    for c in sorted(set(y)):
        members = [i for i in range(6) if y[i] == c]
        if len(members) > 1:
            pairs.append((members[0], members[1]))
    anchors = z[[a for a, _ in pairs]]
    positives = z[[p for _, p in pairs]]
    expected = F.cross_entropy(_cos(anchors, positives), torch.arange(len(pairs)))
    torch.testing.assert_close(obj(_fixed_step(z)).loss, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", EMBEDDING_LOSSES)
def test_autocast_gives_the_fp32_value_of_the_same_embeddings(name):
    """Under bf16 autocast the losses compute in fp32: the value equals the fp32 loss of the
    (bf16-rounded) embeddings the encoder produced, which the fp32 reference tests pin down."""
    z32 = _emb(torch.float32)
    obj = _objective(name, z32, **({"mining": "all"} if name == "triplet" else {}))
    zb = z32.to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = obj(_fixed_step(zb)).loss
    plain = obj(_fixed_step(zb.float())).loss
    assert under_autocast.dtype == torch.float32
    torch.testing.assert_close(under_autocast, plain, rtol=1e-5, atol=1e-6)
