"""Exact Pareto Optimal (EPO) search (Mahapatra & Rajan, ICML 2020) as a way to combine any set of
objectives, as arXiv 2209.14161 does for SCL's pull and push terms.

Linear scalarisation minimises Σ r_j·l_j and can only reach the convex part of a Pareto front.
EPO instead picks, at every step, the convex combination α of the objectives' gradients that moves
the losses toward the preference ray (r_j·l_j equal for all j) and, once there, descends along it.
α comes from a small linear program over the Gram matrix C = G·Gᵀ of the objectives' gradients.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from scipy.optimize import linprog

from contrafit.errors import ConfigError
from contrafit.objectives.base import LossOutput, Objective, Step, WeightedSum


def non_uniformity(rl: np.ndarray) -> float:
    """μ = KL(l̂ || 1/m): 0 exactly on the preference ray."""
    m = len(rl)
    l_hat = rl / rl.sum()
    l_hat = l_hat[l_hat > np.finfo(float).eps]
    return float(np.sum(l_hat * np.log(l_hat * m)))


def epo_weights(
    losses: np.ndarray, gram: np.ndarray, preference: np.ndarray, eps: float = 1e-4
) -> np.ndarray:
    """The EPO combination α (on the simplex) of m objectives with losses ≥ 0.

    ``gram`` is C = G·Gᵀ for the objectives' gradients G (m × d). (C α)_j is how fast l_j falls
    along the combined direction."""
    m = len(losses)
    losses = np.maximum(losses, 1e-12)
    rl = preference * losses
    l_hat = rl / rl.sum()
    mu = non_uniformity(rl)
    a = preference * (np.log(l_hat * m) - mu)  # the direction that balances r·l
    ca = gram @ a
    bounds = [(0, None)] * m
    simplex = dict(A_eq=np.ones((1, m)), b_eq=[1.0])
    if mu > eps:  # off the ray: balance, never letting the most-behind objective grow
        if (ca > 0).any():
            rows = [j for j in range(m) if ca[j] <= 0] + [int(np.argmax(rl))]
            rhs = np.where(np.arange(m) == np.argmax(rl), 0.0, ca)[rows]
            A_ub, b_ub = -gram[rows], -rhs
        else:
            A_ub, b_ub = -gram, np.zeros(m)
        res = linprog(-ca, A_ub=A_ub, b_ub=b_ub, bounds=bounds, method="highs", **simplex)
    else:  # on the ray: descend on every objective
        A_ub = np.vstack([-gram, -ca[None, :]])
        b_ub = np.concatenate([np.zeros(m), [-min(ca.max(), 0.0)]])
        res = linprog(-gram.sum(0), A_ub=A_ub, b_ub=b_ub, bounds=bounds, method="highs", **simplex)
    if not res.success:  # infeasible (e.g. opposed gradients): fall back to the preference itself
        return preference / preference.sum()
    return np.clip(res.x, 0, None) / max(np.clip(res.x, 0, None).sum(), 1e-12)


class EPOSum(WeightedSum):
    """Combines objectives by EPO instead of a fixed weighted sum; each objective's ``weight`` is
    its preference r_j, and the EPO part Σ α_j·l_j (α on the simplex) is scaled by Σ r_j, the
    weight it would have in the weighted sum. Terms in ``fixed`` (``epo: false``) are added with
    their weights, outside the search: e.g. CE beside SCL's pull and push balanced by EPO.
    Gradients are taken with respect to the shared representation (the encoder's last hidden
    state), the usual cheap stand-in for parameter gradients (MGDA-UB)."""

    def __init__(self, terms: dict[str, tuple[float, Objective]], fixed: set[str] = frozenset()):
        super().__init__(terms)
        self.fixed = set(fixed)
        self.needs = replace(self.needs, tokens=True)  # the shared representation is per token

    def compute(self, step: Step) -> LossOutput:
        all_outs = {name: obj(step) for name, obj in self.terms.items()}
        outs = {n: o for n, o in all_outs.items() if n not in self.fixed}
        shared = step.outputs.token_embeddings
        grads = []
        for name, out in outs.items():
            if out.loss.detach() < 0:
                raise ConfigError(f"EPO needs non-negative losses; {name} is {out.loss.item():.4f}")
            (g,) = torch.autograd.grad(out.loss, shared, retain_graph=True, allow_unused=True)
            grads.append(torch.zeros_like(shared).flatten() if g is None else g.flatten().float())
        G = torch.stack(grads)
        alpha = epo_weights(
            np.array([o.loss.item() for o in outs.values()]),
            (G @ G.T).double().cpu().numpy(),
            np.array([self.weights[n] for n in outs]),
        )
        scale = sum(self.weights[n] for n in outs)
        total = scale * sum(float(w) * o.loss for w, o in zip(alpha, outs.values(), strict=True))
        total = total + sum(self.weights[n] * all_outs[n].loss for n in self.fixed)
        parts = {name: o.loss.detach() for name, o in all_outs.items()}
        parts.update(
            {
                f"epo_alpha/{name}": torch.tensor(float(w))
                for name, w in zip(outs, alpha, strict=True)
            }
        )
        return LossOutput(total, parts)


def combine(
    terms: dict[str, tuple[float, Objective]], how: str, fixed: set[str] = frozenset()
) -> WeightedSum:
    if how == "epo":
        searched = [n for n in terms if n not in fixed]
        if len(searched) < 2:
            raise ConfigError("combine: epo needs at least two objectives without epo: false")
        if any(terms[n][0] <= 0 for n in searched):
            raise ConfigError(
                "combine: epo takes each objective's weight as its preference: all must be > 0"
            )
        return EPOSum(terms, fixed)
    if fixed:
        raise ConfigError("epo: false only means something in a phase with combine: epo")
    return WeightedSum(terms)
