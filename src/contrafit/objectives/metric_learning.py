"""Distance-metric-learning losses from pytorch-metric-learning, as objectives on pooled embeddings.

PML's losses measure similarity or distance on L2-normalised embeddings (its distances normalise
by default, N-pairs' dot product included). Proxy and centre parameters are
submodules of the objective, so the optimizer trains them, with their own learning rate
(``proxy_lr``) as the Proxy-Anchor authors do.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

import torch
from pytorch_metric_learning import losses, miners

from contrafit.distributed import gather
from contrafit.errors import ConfigError
from contrafit.objectives.base import LossOutput, Needs, Objective, Step, TaskInfo

_LABELED = ("input_ids", "attention_mask", "labels")


class MetricLearningObjective(Objective):
    needs = Needs(fields=_LABELED, sampler="m_per_class")

    def __init__(
        self,
        loss: torch.nn.Module,
        miner: torch.nn.Module | None = None,
        proxy_lr: float | None = None,
    ):
        super().__init__()
        self.loss = loss
        self.miner = miner
        self.proxy_lr = proxy_lr

    def param_groups(self, lr: float) -> list[dict]:
        params = [p for p in self.parameters() if p.requires_grad]
        return [{"params": params, "lr": self.proxy_lr or lr}] if params else []

    def embeddings_and_labels(self, step: Step) -> tuple[torch.Tensor, torch.Tensor]:
        return step.outputs.embeddings, step.batch["labels"]

    def compute(self, step: Step) -> LossOutput:
        emb, labels = self.embeddings_and_labels(step)
        emb, labels = gather(emb), gather(labels)  # the global batch under data parallelism
        # distances in (at least) fp32: bf16 similarities lose the margins these losses work with
        with torch.autocast(device_type=labels.device.type, enabled=False):
            emb = emb.to(torch.promote_types(emb.dtype, torch.float32))
            pairs = self.miner(emb, labels) if self.miner is not None else None
            return LossOutput(self.loss(emb, labels, pairs))


class ProxyAnchor(MetricLearningObjective):
    needs = Needs(fields=_LABELED)  # proxies give every anchor a positive: any batch works

    def __init__(
        self, task: TaskInfo, margin: float = 0.1, alpha: float = 32.0, proxy_lr: float = 1e-2
    ):
        super().__init__(
            losses.ProxyAnchorLoss(
                task.num_classes, task.embedding_dim, margin=margin, alpha=alpha
            ),
            proxy_lr=proxy_lr,
        )

    def class_proxies(self) -> torch.Tensor:
        return self.loss.proxies


class ProxyNCA(MetricLearningObjective):
    needs = Needs(fields=_LABELED)

    def __init__(self, task: TaskInfo, softmax_scale: float = 1.0, proxy_lr: float = 1e-2):
        super().__init__(
            losses.ProxyNCALoss(task.num_classes, task.embedding_dim, softmax_scale=softmax_scale),
            proxy_lr=proxy_lr,
        )

    def class_proxies(self) -> torch.Tensor:
        return self.loss.proxies


class SoftTriple(MetricLearningObjective):
    """SoftTriple (Qian et al. 2019). ``level="token"`` applies it to every (non-padding) token
    embedding, each carrying its sentence's label: TripleEntropy (Sosnowski et al., 2112.08462)."""

    needs = Needs(fields=_LABELED)

    def __init__(
        self,
        task: TaskInfo,
        centers_per_class: int = 10,
        la: float = 20.0,
        gamma: float = 0.1,
        margin: float = 0.01,
        proxy_lr: float = 1e-2,
        level: Literal["pooled", "token"] = "pooled",
    ):
        if level not in ("pooled", "token"):
            raise ConfigError(f"soft_triple.level must be 'pooled' or 'token', got {level!r}")
        super().__init__(
            losses.SoftTripleLoss(
                task.num_classes,
                task.embedding_dim,
                centers_per_class=centers_per_class,
                la=la,
                gamma=gamma,
                margin=margin,
            ),
            proxy_lr=proxy_lr,
        )
        self.centers_per_class = centers_per_class
        self.level = level
        if level != "pooled":
            self.needs = replace(self.needs, tokens=True)

    def embeddings_and_labels(self, step: Step) -> tuple[torch.Tensor, torch.Tensor]:
        if self.level == "pooled":
            return super().embeddings_and_labels(step)
        mask = step.outputs.attention_mask.bool()
        labels = step.batch["labels"][:, None].expand_as(mask)
        return step.outputs.token_embeddings[mask], labels[mask]

    def class_proxies(self) -> torch.Tensor:
        # fc is (dim, classes·centres); the mean centre of each class stands for it
        centres = self.loss.fc.T.reshape(-1, self.centers_per_class, self.loss.fc.shape[0])
        return centres.mean(1)


class Triplet(MetricLearningObjective):
    """Triplet margin loss with batch-all ("all"), batch-hard ("batch_hard", the hardest positive
    and negative per anchor) or semi-hard ("semihard") mining."""

    def __init__(
        self,
        task: TaskInfo,
        margin: float = 0.05,
        mining: Literal["all", "batch_hard", "semihard", "hard"] = "semihard",
    ):
        if mining not in ("all", "batch_hard", "semihard", "hard"):
            raise ConfigError(
                f"triplet.mining must be all, batch_hard, semihard or hard, got {mining!r}"
            )
        miner = (
            miners.BatchHardMiner()
            if mining == "batch_hard"
            else miners.TripletMarginMiner(margin=margin, type_of_triplets=mining)
        )
        super().__init__(losses.TripletMarginLoss(margin=margin), miner)


class NPairs(MetricLearningObjective):
    def __init__(self, task: TaskInfo):
        super().__init__(losses.NPairsLoss())


class MultiSimilarity(MetricLearningObjective):
    def __init__(self, task: TaskInfo, alpha: float = 2.0, beta: float = 50.0, base: float = 0.5):
        super().__init__(losses.MultiSimilarityLoss(alpha=alpha, beta=beta, base=base))


class NTXent(MetricLearningObjective):
    def __init__(self, task: TaskInfo, temperature: float = 0.07):
        super().__init__(losses.NTXentLoss(temperature=temperature))
