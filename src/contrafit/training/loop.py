"""The phase loop: batches -> objective -> AdamW step, dev evaluation each epoch, best weights kept."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from contrafit.config import InferenceConfig, PhaseConfig
from contrafit.data.batching import Encoded, collate, m_per_class_batches, random_batches
from contrafit.distributed import average_gradients, is_main_process, shard
from contrafit.errors import ContrafitError
from contrafit.evaluation.metrics import summary_metrics
from contrafit.inference import run_inference
from contrafit.modeling.model import TextClassifier
from contrafit.objectives.base import Objective, Step
from contrafit.scoring import Bank, probabilities
from contrafit.training.averaging import WeightAverage
from contrafit.training.checkpoint import Checkpointer, LoopState, Resume
from contrafit.training.optim import (
    apply_freeze,
    build_optimizer,
    clip_gradients,
    lr_factor,
    set_lr,
)
from contrafit.training.runtime import attention, autocast


class NonFiniteLossError(ContrafitError):
    pass


@dataclass
class Runtime:
    device: torch.device
    amp_dtype: torch.dtype | None
    eval_metric: str = "accuracy"
    eval_batch_size: int = 64
    attention: str = "auto"
    dropout: str = "torch"
    # when set (kNN, or logreg with epoch_selection=inference), dev accuracy (and so the best
    # epoch) is that of this inference over the bank the saved model will use: the epoch is chosen
    # by the predictions the saved model will make
    dev_inference: InferenceConfig | None = None
    log: Callable[[dict[str, Any]], None] = lambda record: None
    progress: bool = True


@dataclass
class PhaseResult:
    name: str
    steps: int
    seconds: float
    best_epoch: int | None = None
    best_dev: dict[str, float] | None = None
    dev_history: list[dict[str, float]] = field(default_factory=list)
    reused: bool = False  # taken from the phase cache (seconds: when it was computed)


def make_batches(
    phase: PhaseConfig, objective: Objective, data: Encoded, seed: int
) -> list[list[int]]:
    drop_last = phase.epoch_batches == "floor"
    if objective.needs.sampler == "m_per_class":
        return m_per_class_batches(
            data.labels, phase.batch_size, objective.needs.samples_per_class, seed, drop_last
        )
    return random_batches(len(data), phase.batch_size, seed, drop_last)


Inference = Callable[[TextClassifier, Encoded], tuple[torch.Tensor, torch.Tensor]]


def inference_of(rt: Runtime) -> Inference:
    """(model, data) -> (logits, pooled embeddings), as run_inference with ``rt``'s settings."""
    return lambda model, data: run_inference(
        model, data, rt.eval_batch_size, rt.device, rt.amp_dtype, rt.attention
    )


class FrozenEncoderInference:
    """Inference for a phase whose encoder is frozen: each dataset's pooled vectors are computed
    once (eval mode: no dropout), and after that only the head runs."""

    def __init__(self, rt: Runtime):
        self.rt = rt
        self._embeddings: dict[int, tuple[Encoded, torch.Tensor]] = {}

    def embeddings(self, model: TextClassifier, data: Encoded) -> torch.Tensor:
        if id(data) not in self._embeddings:  # the data is kept too, so its id stays its own
            _, emb = inference_of(self.rt)(model, data)
            self._embeddings[id(data)] = (data, emb)
        return self._embeddings[id(data)][1]

    @torch.inference_mode()
    def __call__(self, model: TextClassifier, data: Encoded) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.embeddings(model, data)
        was_training = model.training
        model.eval()
        logits = model({"pooled": emb.to(self.rt.device)}).logits.float().cpu()
        model.train(was_training)
        return logits, emb


def build_bank(
    model: TextClassifier,
    labeled: Encoded,
    rt: Runtime,
    proxies: torch.Tensor | None = None,
    infer: Inference | None = None,
) -> Bank:
    """Training embeddings (for kNN) and the last learned proxies (for proxy inference)."""
    _, emb = (infer or inference_of(rt))(model, labeled)
    return Bank(
        train_embeddings=F.normalize(emb, dim=-1),
        train_labels=torch.tensor(labeled.labels),
        proxies=F.normalize(proxies.detach().float().cpu(), dim=-1)
        if proxies is not None
        else None,
    )


def evaluate_dev(
    model: TextClassifier,
    dev: Encoded,
    rt: Runtime,
    bank_data: Encoded | None = None,
    infer: Inference | None = None,
) -> dict[str, float]:
    infer = infer or inference_of(rt)
    logits, embeddings = infer(model, dev)
    predicted = logits.argmax(-1)
    if rt.dev_inference is not None and bank_data is not None and bank_data.labels is not None:
        bank = build_bank(model, bank_data, rt, infer=infer)
        predicted = probabilities(logits, embeddings, rt.dev_inference, bank).argmax(-1)
    metrics = summary_metrics(dev.labels, predicted.tolist())
    metrics["loss"] = float(F.cross_entropy(logits, torch.tensor(dev.labels)))  # head's: tie-break
    return metrics


def run_phase(
    model: TextClassifier,
    objective: Objective,
    phase: PhaseConfig,
    train: Encoded,
    dev: Encoded | None,
    rt: Runtime,
    seed: int,
    checkpoint: Checkpointer | None = None,
    phase_index: int = 0,
    resume: Resume | None = None,
    bank_data: Encoded | None = None,
) -> PhaseResult:
    """Train one phase. With ``checkpoint``, the state is saved every ``every_steps`` steps;
    with ``resume`` (a mid-phase checkpoint of this phase), training continues exactly there.
    ``bank_data`` (default: ``train``) is what the saved model's bank embeds: with kNN (or logreg
    selecting epochs) inference, each epoch's dev accuracy is that inference over it."""
    start = time.perf_counter()
    apply_freeze(model, phase.freeze)
    model.to(rt.device)
    objective.to(rt.device)
    optimizer = build_optimizer(model, objective, phase)
    # A frozen encoder's dev (and kNN bank) vectors are the same every epoch: computed once. Unless
    # the phase keeps its dropout (frozen_dropout), it is a fixed feature extractor for training
    # too: eval mode, and when the objectives read only the pooled vector, that vector is computed
    # once per training example instead of at every step of every epoch.
    frozen_encoder = "encoder" in phase.freeze
    fixed_features = frozen_encoder and not phase.frozen_dropout
    infer = FrozenEncoderInference(rt) if frozen_encoder else inference_of(rt)
    features = None
    if fixed_features and not objective.needs.tokens:
        features = infer.embeddings(model, train)
    # dev selection needs a trained head: phases on unlabeled text (post-training) skip it
    select = phase.select_best and dev is not None and phase.data != "unlabeled"

    steps_per_epoch = len(make_batches(phase, objective, train, seed))
    total = phase.epochs * steps_per_epoch
    if phase.max_steps is not None:
        total = min(total, phase.max_steps)
    warmup = int(phase.warmup_ratio * total)
    trainable = [p for g in optimizer.param_groups for p in g["params"]]
    average = WeightAverage(trainable, phase.ema_decay) if phase.ema_decay is not None else None
    # dev scores, and the phase keeps, the averaged weights when there are any
    scored = average.applied if average is not None else contextlib.nullcontext

    result = PhaseResult(phase.name, steps=0, seconds=0.0)
    best_key, best_state, stale = None, None, 0
    first_epoch, skip = 0, 0
    if resume is not None:
        best_state = resume.restore_phase(objective, optimizer)
        at = resume.loop
        result = PhaseResult(**at.result)
        best_key = tuple(at.best_key) if at.best_key is not None else None
        stale, first_epoch, skip = at.stale, at.epoch, at.steps - at.epoch_start_steps
        if average is not None:
            average.load_state_dict(resume.part("averaged"))
    resumed_seconds = result.seconds
    # in a log file (no TTY) a bar redrawn 10 times a second is noise: redraw every 5 s instead
    interval = 0.1 if sys.stderr.isatty() else 5.0
    bar = tqdm(
        total=total, desc=phase.name, disable=not rt.progress, leave=False, mininterval=interval
    )
    bar.update(result.steps)
    # one kernel for the whole phase: dev evaluation switches to the inference one and back
    with attention(model.encoder, rt.attention, rt.device, training=True, dropout=rt.dropout):
        for epoch in range(first_epoch, phase.epochs):
            model.train()
            if fixed_features:
                model.encoder.eval()
            objective.train()
            epoch_start_steps = result.steps
            # each epoch's order is a pure function of (seed, epoch): a resumed run sees the same batches
            batches = make_batches(phase, objective, train, seed * 1_000_003 + epoch)
            if epoch == first_epoch and skip:
                batches, epoch_start_steps = batches[skip:], result.steps - skip
            for idx in batches:
                if result.steps >= total:
                    break
                # under data parallelism idx is the global batch and this process trains on its share
                rows = shard(idx)
                batch = {k: v.to(rt.device) for k, v in collate(train, rows).items()}
                if features is not None:
                    batch["pooled"] = features[rows].to(rt.device)
                set_lr(optimizer, lr_factor(result.steps, total, warmup))
                with autocast(rt.device, rt.amp_dtype):
                    out = objective(Step(model, batch))
                if not torch.isfinite(out.loss):
                    raise NonFiniteLossError(
                        f"phase '{phase.name}', epoch {epoch}, step {result.steps}: the loss is "
                        f"{out.loss.item()} on the batch of examples {idx[:8]}{'...' if len(idx) > 8 else ''}. "
                        "Lower the learning rate, or use --set precision=fp32."
                    )
                out.loss.backward()
                average_gradients(trainable)
                if phase.max_grad_norm:
                    clip_gradients(trainable, phase.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                if average is not None:
                    average.update()
                result.steps += 1
                bar.update(1)
                bar.set_postfix(
                    loss=f"{out.loss.item():.4f}", refresh=False
                )  # redraws follow mininterval
                rt.log(
                    {
                        "phase": phase.name,
                        "epoch": epoch,
                        "step": result.steps,
                        "lr": optimizer.param_groups[0]["lr"],
                        "loss": out.loss.item(),
                        **{k: float(v) for k, v in out.parts.items()},
                    }
                )
                if checkpoint is not None and checkpoint.due(result.steps) and is_main_process():
                    result.seconds = resumed_seconds + time.perf_counter() - start
                    at = LoopState(
                        phase_index,
                        epoch,
                        result.steps,
                        stale,
                        list(best_key) if best_key is not None else None,
                        epoch_start_steps,
                        vars(result),
                    )
                    checkpoint.save(
                        model,
                        objective,
                        optimizer,
                        at,
                        best_state,
                        average.state_dict() if average is not None else None,
                    )
            if select:
                bank = bank_data if bank_data is not None else train
                with scored():
                    metrics = evaluate_dev(model, dev, rt, bank, infer)
                    result.dev_history.append({"epoch": epoch, **metrics})
                    rt.log({"phase": phase.name, "epoch": epoch, "dev": metrics})
                    # ties on a small dev set are common: the lower dev loss breaks them
                    key = (metrics[rt.eval_metric], -metrics["loss"])
                    if best_key is None or key > best_key:
                        best_key, stale = key, 0
                        best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                        result.best_epoch, result.best_dev = epoch, metrics
                    else:
                        stale += 1
                        if (
                            phase.early_stopping_patience is not None
                            and stale >= phase.early_stopping_patience
                        ):
                            break  # leaving the block puts the trained weights back
            if result.steps >= total:
                break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    elif average is not None:
        average.copy_to_model()
    result.seconds = resumed_seconds + time.perf_counter() - start
    return result
