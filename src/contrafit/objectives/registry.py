"""Objective names -> classes, and building a phase's (weighted) objective from its config."""

from __future__ import annotations

import inspect

from contrafit.config import ObjectiveConfig
from contrafit.errors import ConfigError
from contrafit.objectives.base import Objective, TaskInfo, WeightedSum
from contrafit.objectives.cmlm import ContrastiveMaskedLM
from contrafit.objectives.contrastive import SupCon
from contrafit.objectives.cross_entropy import CrossEntropy
from contrafit.objectives.denoising import DenoisingAutoEncoder
from contrafit.objectives.masked_lm import MaskedLM
from contrafit.objectives.metric_learning import (
    MultiSimilarity,
    NPairs,
    NTXent,
    ProxyAnchor,
    ProxyNCA,
    SoftTriple,
    Triplet,
)
from contrafit.objectives.pairs import CosinePairs
from contrafit.objectives.pareto import combine

OBJECTIVES: dict[str, type[Objective]] = {
    "cross_entropy": CrossEntropy,
    "supcon": SupCon,
    "proxy_anchor": ProxyAnchor,
    "proxy_nca": ProxyNCA,
    "soft_triple": SoftTriple,
    "triplet": Triplet,
    "n_pairs": NPairs,
    "multi_similarity": MultiSimilarity,
    "nt_xent": NTXent,
    "masked_lm": MaskedLM,
    "cmlm": ContrastiveMaskedLM,
    "dae": DenoisingAutoEncoder,
    "cosine_pairs": CosinePairs,
}


def register(name: str, cls: type[Objective]) -> None:
    OBJECTIVES[name] = cls


def build_objective(
    configs: list[ObjectiveConfig], task: TaskInfo, combine_how: str = "sum"
) -> WeightedSum:
    """The phase's objectives, combined as a weighted sum (linear scalarisation) or by EPO."""
    terms: dict[str, tuple[float, Objective]] = {}
    fixed: set[str] = set()  # with EPO: terms added with their weight, outside the search
    for cfg in configs:
        cls = OBJECTIVES.get(cfg.name)
        if cls is None:
            raise ConfigError(f"unknown objective {cfg.name!r}; choose one of {sorted(OBJECTIVES)}")
        allowed = [
            p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "task")
        ]
        unknown = sorted(set(cfg.params) - set(allowed))
        if unknown:
            raise ConfigError(
                f"objective {cfg.name!r}: unknown argument(s) {unknown}; allowed: {allowed}"
            )
        name = cfg.name if cfg.name not in terms else f"{cfg.name}_{len(terms)}"
        terms[name] = (cfg.weight, cls(task, **cfg.params))
        if not cfg.epo:
            fixed.add(name)
    return combine(terms, combine_how, fixed)
