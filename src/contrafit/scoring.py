"""Turn logits and embeddings into class probabilities: head softmax, proxy mixture, or kNN.

- head:  softmax(head logits)
- proxy: β·softmax(head) + (1-β)·softmax(s·cos(x, proxies)) (Sosnowski et al. 2022), with the
         proxies (or mean SoftTriple centres) learned by a proxy loss during training
- knn:   similarity-weighted vote of the k nearest training embeddings (cosine)
- logreg: logistic regression fitted on the training embeddings (SetFit's classifier; scikit-learn,
          lbfgs: deterministic, and fast at few-shot sizes, so it is fitted where it is used)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from contrafit.config import InferenceConfig
from contrafit.errors import ConfigError


@dataclass
class Bank:
    """What non-head inference needs, saved with the model."""

    train_embeddings: torch.Tensor  # (n, dim), L2-normalised
    train_labels: torch.Tensor  # (n,)
    proxies: torch.Tensor | None = None  # (classes, dim), L2-normalised

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {"train_embeddings": self.train_embeddings, "train_labels": self.train_labels}
        if self.proxies is not None:
            out["proxies"] = self.proxies
        return {k: v.detach().cpu().contiguous() for k, v in out.items()}

    @classmethod
    def from_tensors(cls, t: dict[str, torch.Tensor]) -> Bank:
        return cls(t["train_embeddings"], t["train_labels"], t.get("proxies"))


def probabilities(
    logits: torch.Tensor, embeddings: torch.Tensor, cfg: InferenceConfig, bank: Bank | None
) -> torch.Tensor:
    head = torch.softmax(logits, dim=-1)
    if cfg.mode == "head":
        return head
    if bank is None:
        raise ConfigError(
            f"inference mode {cfg.mode!r} needs the training bank; this model has none"
        )
    x = F.normalize(embeddings, dim=-1)
    if cfg.mode == "proxy":
        if bank.proxies is None:
            raise ConfigError(
                "inference mode 'proxy' needs proxies, but the model was trained without a proxy "
                "loss (proxy_anchor, proxy_nca, soft_triple); use --inference head or knn"
            )
        proxy = torch.softmax(cfg.proxy_scale * x @ bank.proxies.T, dim=-1)
        return cfg.head_weight * head + (1 - cfg.head_weight) * proxy
    if cfg.mode == "knn":
        sims = x @ bank.train_embeddings.T
        k = min(cfg.knn_k, sims.shape[1])
        top, idx = sims.topk(k, dim=-1)
        votes = torch.zeros_like(head)
        votes.scatter_add_(
            1, bank.train_labels[idx], torch.softmax(top / cfg.knn_temperature, dim=-1)
        )
        return votes
    if cfg.mode == "logreg":
        return _logistic_regression(x, bank, cfg.logreg_c, cfg.logreg_class_weight)
    raise ConfigError(f"unknown inference mode {cfg.mode!r}")  # unreachable: config validates it


def _logistic_regression(
    x: torch.Tensor, bank: Bank, c: float, class_weight: str = "none"
) -> torch.Tensor:
    from sklearn.linear_model import LogisticRegression

    train = bank.train_embeddings.float().numpy()
    labels = bank.train_labels.numpy()
    weight = None if class_weight == "none" else class_weight
    clf = LogisticRegression(C=c, max_iter=1000, class_weight=weight).fit(train, labels)
    proba = torch.zeros(x.shape[0], int(labels.max()) + 1)
    # columns of the classes present in the bank (all of them, unless it was built from a subset)
    proba[:, torch.from_numpy(clf.classes_)] = torch.from_numpy(
        clf.predict_proba(x.float().numpy())
    ).float()
    return proba
