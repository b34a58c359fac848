"""Peers run in the same harness as our recipes: same backbone, same splits, same scoring.

SetFit (Tunstall et al. 2022) runs with its documented defaults (``TrainingArguments()``: body
lr 2e-5, batch 16, one epoch of oversampled cosine-similarity pairs, a logistic-regression head),
changing only what does not touch the result: no checkpoints, no logging integrations, the cell's
seed. Install it with ``pip install 'contrafit[peers]'``. ``setfit-label-texts`` is the same run
on the train texts plus SetFit's ``get_templated_dataset`` at its defaults (2 texts per class,
"This sentence is {}"): SetFit with the label names, beside a recipe that uses them.
"""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path
from typing import Any

from contrafit.bench.tasks import Splits
from contrafit.data.label_texts import with_label_texts
from contrafit.data.labels import LabelMap
from contrafit.data.loading import TextDataset
from contrafit.errors import ConfigError
from contrafit.evaluation.metrics import full_report, summary_metrics
from contrafit.modeling.encoder import resolve_model_path


def setfit_trainer(train: TextDataset, seed: int, model: str | None, out: Path, **args: Any):
    """(SetFit's Trainer with its defaults on ``train``, its model, the label map). ``args`` are
    further TrainingArguments (the speed benchmark's ``max_steps``)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder needs no hub; never wait on one
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    if train.is_pair:
        raise ConfigError(f"{train.source}: the SetFit peer takes single texts, not text pairs")
    labels = LabelMap.from_labels(train.labels, train.source)
    setfit_model = SetFitModel.from_pretrained(resolve_model_path(model or "default"))
    training_args = TrainingArguments(
        output_dir=str(out / "setfit"),
        seed=seed,
        report_to="none",
        save_strategy="no",
        show_progress_bar=False,
        **args,
    )
    trainer = Trainer(
        model=setfit_model,
        args=training_args,
        train_dataset=Dataset.from_dict(
            {"text": train.texts, "label": labels.encode(train.labels, train.source)}
        ),
    )
    return trainer, setfit_model, labels


# get_templated_dataset's defaults (setfit 1.x): template "This sentence is {}", sample_size 2
SETFIT_LABEL_TEMPLATE, SETFIT_LABEL_COPIES = "This sentence is {}", 2


def run_setfit(
    splits: Splits, seed: int, model: str | None, out: Path, label_texts: bool = False
) -> dict[str, Any]:
    test, train = splits.test, splits.train
    if label_texts:
        train = with_label_texts(train, SETFIT_LABEL_TEMPLATE, SETFIT_LABEL_COPIES)
    trainer, setfit_model, labels = setfit_trainer(train, seed, model, out)
    start = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    predicted = [int(p) for p in setfit_model.predict(test.texts)]
    predict_seconds = time.perf_counter() - start
    metrics = full_report(labels.encode(test.labels, test.source), predicted, labels.labels)
    dev_accuracy = None
    if (scored := splits.scoring_dev) is not None:  # SetFit never selects on dev
        dev_pred = [int(p) for p in setfit_model.predict(scored.texts)]
        dev_true = labels.encode(scored.labels, scored.source)
        dev_accuracy = summary_metrics(dev_true, dev_pred)["accuracy"]
    return {
        "metrics": metrics,
        "dev_accuracy": dev_accuracy,
        "train_seconds": train_seconds,
        "predict_seconds": predict_seconds,
    }


def run_setfit_label_texts(splits: Splits, seed: int, model: str | None, out: Path) -> dict:
    return run_setfit(splits, seed, model, out, label_texts=True)


PEERS = {
    "setfit": ("setfit", run_setfit),
    "setfit-label-texts": ("setfit", run_setfit_label_texts),
}
SINGLE_TEXT_PEERS = set(PEERS)  # peers that cannot take text pairs


def peer_problem(name: str) -> str | None:
    module, _ = PEERS[name]
    if importlib.util.find_spec(module) is None:
        return f"peer {name!r} needs the {module} package: pip install 'contrafit[peers]'"
    return None
