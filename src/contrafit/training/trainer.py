"""Run a recipe: load the encoder, tokenise once, run each phase in order on the same model."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch

from contrafit.config import PhaseConfig, RunConfig
from contrafit.data.augment import PRESETS, correct_imbalance
from contrafit.data.batching import Encoded, encode
from contrafit.data.label_texts import (
    copies_for_agreement,
    gets_label_texts,
    name_agreement,
    with_label_texts,
)
from contrafit.data.labels import LabelMap
from contrafit.data.loading import TextDataset
from contrafit.distributed import init_from_environment, is_main_process
from contrafit.errors import ConfigError
from contrafit.modeling.encoder import load_encoder, resolve_model_path
from contrafit.modeling.model import TextClassifier
from contrafit.objectives.base import TaskInfo
from contrafit.objectives.registry import build_objective
from contrafit.scoring import Bank, probabilities
from contrafit.training.checkpoint import Checkpointer, LoopState
from contrafit.training.loop import PhaseResult, Runtime, build_bank, inference_of, run_phase
from contrafit.training.phase_cache import PhaseCache, data_digest, phase_keys
from contrafit.training.pseudo import PICKS, sample_texts, with_pseudo_labels
from contrafit.training.runtime import resolve_device, resolve_precision, seed_everything

logger = logging.getLogger("contrafit")


@dataclass
class Trained:
    model: TextClassifier
    tokenizer: Any
    label_map: LabelMap
    phases: list[PhaseResult]
    bank: Bank
    label_texts_added: int = 0  # templated label texts that joined the training texts
    label_name_agreement: float | None = None  # kappa that set their count (agreement_scale)


def make_runtime(config: RunConfig, log: Callable[[dict], None] | None, progress: bool) -> Runtime:
    init_from_environment()  # under `accelerate launch`: join the process group
    device = resolve_device(config.device)
    if not is_main_process():  # one process reports; all of them train
        log, progress = None, False
    return Runtime(
        device=device,
        amp_dtype=resolve_precision(config.precision, device),
        eval_metric=config.eval_metric,
        eval_batch_size=config.eval_batch_size,
        attention=config.attention,
        dropout=config.dropout,
        dev_inference=config.inference if config.inference.selects_epochs() else None,
        log=log or (lambda record: None),
        progress=progress,
    )


def add_label_texts(
    data: TextDataset,
    dev: TextDataset | None,
    config: RunConfig,
    model: TextClassifier,
    tokenizer: Any,
    rt: Runtime,
) -> tuple[TextDataset, float | None]:
    """``data`` plus the recipe's label texts, and the names' agreement (kappa) when
    ``agreement_scale`` set their count; with it, as many per class as the
    names earn with the model as loaded (before any phase trains it) on ``data`` and ``dev``: at
    16 texts a class, one split's kappa alone moves by about 0.15 from sample to sample."""
    settings = config.recipe.label_texts
    if not gets_label_texts(data) or not settings.copies:
        return data, None  # text pairs, labels that are only numbers, or label texts off
    copies, agreement = settings.copies, None
    if settings.agreement_scale:
        max_len = config.recipe.model.max_length

        def embed(texts: list[str]) -> torch.Tensor:
            encoded = encode(TextDataset(texts, source=data.source), tokenizer, max_len)
            return inference_of(rt)(model, encoded)[1]

        known = (
            data if dev is None else TextDataset(data.texts + dev.texts, data.labels + dev.labels)
        )
        agreement = name_agreement(known, settings.template, embed)
        copies = copies_for_agreement(data, agreement, settings.agreement_scale, copies)
        rt.log({"label_name_agreement": round(agreement, 4)})
    grown = with_label_texts(data, settings.template, copies)
    rt.log({"label_texts_added": len(grown) - len(data)})
    return grown, agreement


def train(
    config: RunConfig,
    train_data: TextDataset,
    dev_data: TextDataset | None = None,
    unlabeled: TextDataset | None = None,
    log: Callable[[dict], None] | None = None,
    progress: bool = True,
    checkpoint: Checkpointer | None = None,
    resume: bool = False,
    on_phase_end: Callable[..., None] | None = None,
    phase_cache: PhaseCache | None = None,
) -> Trained:
    """Run the recipe's phases in order on one model. With ``checkpoint``, the run is saved at its
    interval and between phases; ``resume`` continues from that checkpoint when there is one.
    With ``phase_cache``, the model after each phase but the last is kept there, and a run starts
    after the deepest phase another run (or this one) already computed with the same inputs."""
    if train_data.labels is None:
        raise ConfigError(f"{train_data.source}: training data needs a label column")
    label_map = LabelMap.from_labels(train_data.labels, train_data.source)  # label texts add none
    dev_ids = None
    if dev_data is not None:
        if dev_data.labels is None:
            raise ConfigError(f"{dev_data.source}: dev data needs a label column")
        dev_ids = label_map.encode(dev_data.labels, dev_data.source)

    rt = make_runtime(config, log, progress)
    encoder, tokenizer = load_encoder(config.recipe.model.name_or_path)
    alpha = config.recipe.weight_interpolation
    # a copy, not the live tensors: training updates those in place
    pretrained = None if alpha == 1.0 else {k: v.clone() for k, v in encoder.state_dict().items()}
    seed_everything(config.seed)  # the head's initialisation depends on the seed only
    model = TextClassifier(encoder, config.recipe.model, len(label_map)).to(rt.device)

    max_len = config.recipe.model.max_length
    n_given = len(train_data)
    train_data, agreement = add_label_texts(train_data, dev_data, config, model, tokenizer, rt)
    label_texts_added = len(train_data) - n_given
    train_ids = label_map.encode(train_data.labels, train_data.source)
    labeled = encode(train_data, tokenizer, max_len, train_ids)
    dev = encode(dev_data, tokenizer, max_len, dev_ids) if dev_data is not None else None
    unlabeled_enc = None
    if any(p.data == "unlabeled" for p in config.recipe.phases):
        # post-training phases read the training texts plus any extra unlabeled text
        texts = train_data.texts + (unlabeled.texts if unlabeled is not None else [])
        unlabeled_enc = encode(TextDataset(texts, source="unlabeled"), tokenizer, max_len)

    counts = Counter(train_ids)
    task = TaskInfo(
        num_classes=len(label_map),
        embedding_dim=model.embedding_dim,
        class_counts=tuple(counts[i] for i in range(len(label_map))),
        vocab_size=len(tokenizer),
        seed=config.seed,
        tokenizer=tokenizer,
        encoder_config=encoder.config,
        model_path=resolve_model_path(config.recipe.model.name_or_path),
    )
    results, proxies = [], None
    state = checkpoint.load() if checkpoint is not None and resume else None
    source = checkpoint  # where the finished phases and carried tensors of `state` are
    keys: list[str] = []
    if phase_cache is not None:
        digest = data_digest(train_data, dev_data, unlabeled)
        keys = phase_keys(config, task.model_path, digest)
        if state is None:
            hit = phase_cache.latest(keys)
            if hit is not None:
                state, source = hit
                rt.log({"reused_phases": state.loop.phase_index, "cache": str(source.path)})
    if state is not None:
        state.restore_model(model)
        results = [PhaseResult(**r) for r in source.finished_phases]
        proxies = source.carry.get("proxies")
        if source is not checkpoint:  # started from the cache: mark its phases as reused
            results = [replace(r, reused=True) for r in results]
            if checkpoint is not None:  # this run's own checkpoints carry them from now on
                checkpoint.finished_phases = [vars(r) for r in results]
                checkpoint.carry.update(source.carry)
        else:
            rt.log({"resumed": state.loop.phase_index, "step": state.loop.steps})
    for i, phase in enumerate(config.recipe.phases):
        if state is not None and i < state.loop.phase_index:
            continue  # finished before the interruption
        seed_everything(config.seed + i)
        objective = build_objective(
            phase.objectives, replace(task, seed=config.seed + i), phase.combine
        )
        objective.bind(model)
        data: Encoded | None = labeled if phase.data != "unlabeled" else unlabeled_enc
        # a checkpoint saved inside this phase continues it; one saved between phases starts it
        mid_phase = state is not None and i == state.loop.phase_index and not state.loop.fresh
        if phase.data == "pseudo":
            data = self_training_data(
                phase,
                i,
                model,
                labeled,
                train_data.texts,
                unlabeled,
                tokenizer,
                config,
                rt,
                checkpoint,
                mid_phase,
            )
        if phase.augment != "none":
            max_ratio, min_ratio = PRESETS[phase.augment]
            grown = correct_imbalance(train_data, config.seed + i, max_ratio, min_ratio)
            data = encode(grown, tokenizer, max_len, label_map.encode(grown.labels))
        if data is not None and "labels" in objective.needs.fields and data.labels is None:
            raise ConfigError(
                f"phase '{phase.name}': its objectives need labels but the phase reads "
                "unlabeled text; set data: labeled"
            )
        if data is None:  # self-training with no unlabeled text: nothing to add, phase skipped
            results.append(PhaseResult(phase.name, steps=0, seconds=0.0))
        else:
            results.append(
                run_phase(
                    model,
                    objective,
                    phase,
                    data,
                    dev,
                    rt,
                    seed=config.seed + i,
                    checkpoint=checkpoint,
                    phase_index=i,
                    resume=state if mid_phase else None,
                    bank_data=labeled,  # the bank build_bank saves below
                )
            )
        phase_proxies = objective.class_proxies()
        proxies = phase_proxies if phase_proxies is not None else proxies
        if on_phase_end is not None and is_main_process():
            on_phase_end(i, results, model, tokenizer, label_map)
        if i + 1 < len(config.recipe.phases) and is_main_process():
            targets = [checkpoint] if checkpoint is not None else []
            if keys:
                targets.append(phase_cache.entry(keys[i]))
            for target in targets:
                if target is checkpoint or not target.path.exists():
                    save_between_phases(target, model, results, proxies, i + 1)
    if pretrained is not None:
        interpolate_weights(model.encoder, pretrained, alpha)
        rt.log({"weight_interpolation": alpha})
    bank = build_bank(model, labeled, rt, proxies)
    return Trained(model, tokenizer, label_map, results, bank, label_texts_added, agreement)


@torch.no_grad()
def interpolate_weights(
    encoder: torch.nn.Module, pretrained: dict[str, torch.Tensor], alpha: float
) -> None:
    """WiSE-FT: every floating-point weight becomes alpha·trained + (1 - alpha)·pre-trained, in
    place (integer buffers such as position ids are left alone). After the phases, so the phase
    cache keeps the trained weights and any alpha can start from them."""
    seen: set[int] = set()  # a tied weight is listed under each of its names: move it once
    for name, tensor in encoder.state_dict().items():
        if tensor.is_floating_point() and tensor.data_ptr() not in seen:
            seen.add(tensor.data_ptr())
            tensor.lerp_(pretrained[name].to(tensor.device, tensor.dtype), 1.0 - alpha)


def save_between_phases(
    target: Checkpointer,
    model: TextClassifier,
    results: list[PhaseResult],
    proxies: torch.Tensor | None,
    next_phase: int,
) -> None:
    target.finished_phases = [vars(r) for r in results]
    if proxies is not None:
        target.carry["proxies"] = proxies.detach()
    target.save(model, None, None, LoopState(next_phase, 0, 0, fresh=True))


def self_training_data(
    phase: PhaseConfig,
    index: int,
    model: TextClassifier,
    labeled: Encoded,
    labeled_texts: list[str],
    unlabeled: TextDataset | None,
    tokenizer,
    config: RunConfig,
    rt: Runtime,
    checkpoint: Checkpointer | None,
    mid_phase: bool,
) -> Encoded | None:
    """The labeled examples plus the pool texts the model is most sure of at the phase's start
    (None without unlabeled text). The choice is kept in the checkpoint: a resumed phase trains on
    the same examples."""
    known = set(labeled_texts)  # a labeled text keeps its own label
    pool = [t for t in unlabeled.texts if t not in known] if unlabeled is not None else []
    if not pool:
        logger.warning(
            "phase '%s' self-trains on unlabeled task text and none was given (--unlabeled FILE): "
            "the phase is skipped",
            phase.name,
        )
        return None
    texts = sample_texts(pool, phase.pseudo_pool, config.seed + index)
    scored = encode(
        TextDataset(texts, source="unlabeled"), tokenizer, config.recipe.model.max_length
    )
    key = f"pseudo.{phase.name}"
    if mid_phase and checkpoint is not None and f"{key}.rows" in checkpoint.carry:
        rows = checkpoint.carry[f"{key}.rows"].tolist()
        labels = checkpoint.carry[f"{key}.labels"].tolist()
    else:
        logits, embeddings = inference_of(rt)(model, scored)
        if phase.pseudo_teacher == "inference":  # the run's inference mode, fitted on the labels
            bank = build_bank(model, labeled, rt)
            probs = probabilities(logits, embeddings, config.inference, bank)
        else:
            probs = logits.softmax(-1)
        rows, labels = PICKS[phase.pseudo_pick](probs, phase.pseudo_per_class)
    if checkpoint is not None:
        checkpoint.carry[f"{key}.rows"] = torch.tensor(rows, dtype=torch.long)
        checkpoint.carry[f"{key}.labels"] = torch.tensor(labels, dtype=torch.long)
    rt.log(
        {
            "phase": phase.name,
            "pseudo_labeled": len(rows),
            "per_class": dict(sorted(Counter(labels).items())),
        }
    )
    return with_pseudo_labels(labeled, scored, rows, labels)
