"""The Python API, in the scikit-learn spirit: fit, predict, predict_proba, encode, save, load."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from contrafit import __version__
from contrafit.config import InferenceConfig, RunConfig, apply_overrides, from_plain, to_plain
from contrafit.data.batching import encode as tokenize
from contrafit.data.labels import LabelMap
from contrafit.data.loading import TextDataset, load_dataset
from contrafit.errors import ContrafitError, ModelLoadError
from contrafit.evaluation.metrics import full_report
from contrafit.inference import run_inference
from contrafit.io import atomic_write_json
from contrafit.modeling.model import TextClassifier
from contrafit.scoring import Bank, probabilities
from contrafit.training import trainer
from contrafit.training.checkpoint import Checkpointer
from contrafit.training.phase_cache import PhaseCache
from contrafit.training.recipes import recipe_plain, split_run_settings
from contrafit.training.runtime import resolve_device, resolve_precision

META_FILE = "contrafit.json"
HEAD_FILE = "head.safetensors"
BANK_FILE = "bank.safetensors"
FORMAT_VERSION = 1

Inputs = TextDataset | str | Path | Sequence[str] | Any


def build_run_config(
    recipe: str = "default",
    model: str | None = None,
    seed: int = 42,
    device: str = "auto",
    precision: str = "auto",
    overrides: Sequence[str] = (),
) -> RunConfig:
    """Recipe (name or YAML) + run settings + ``key=value`` overrides -> a validated RunConfig."""
    recipe_part, settings = split_run_settings(recipe_plain(recipe), f"recipe {recipe}")
    plain: dict[str, Any] = {
        "recipe": recipe_part,
        "seed": seed,
        "device": device,
        "precision": precision,
        **settings,  # the recipe's own inference and dropout, which overrides still change
    }
    if model is not None:
        plain["recipe"].setdefault("model", {})["name_or_path"] = model
    apply_overrides(plain, list(overrides))
    return from_plain(RunConfig, plain, "config")


class ContrafitClassifier:
    def __init__(
        self,
        model: str | None = None,
        recipe: str = "default",
        *,
        seed: int = 42,
        device: str = "auto",
        precision: str = "auto",
        overrides: Sequence[str] = (),
        config: RunConfig | None = None,
        progress: bool = True,
    ):
        self.config = config or build_run_config(recipe, model, seed, device, precision, overrides)
        self.progress = progress
        self.model_: TextClassifier | None = None
        self.tokenizer_ = None
        self.label_map_: LabelMap | None = None
        self.bank_: Bank | None = None
        self.history_: list[dict[str, Any]] = []
        self.train_seconds_: float | None = None
        self.label_texts_added_ = 0  # templated label texts fit() trained on beside the data
        self.label_name_agreement_: float | None = None  # the kappa that set their count

    # --- training --------------------------------------------------------------------------------

    def fit(
        self,
        X: Inputs,
        y: Sequence[str] | None = None,
        *,
        text_pairs: Sequence[str] | None = None,
        dev: Inputs | None = None,
        unlabeled: Inputs | None = None,
        log=None,
        checkpoint_dir: str | Path | None = None,
        checkpoint_every: int | None = 200,
        resume: bool = False,
        phase_dir: str | Path | None = None,
        phase_cache: str | Path | None = None,
    ) -> ContrafitClassifier:
        """Train on ``X`` (texts with labels ``y``, or a dataset/file that has labels).

        With ``checkpoint_dir``, the run is checkpointed every ``checkpoint_every`` optimizer steps
        and between phases; ``resume=True`` continues from the checkpoint there (same config).
        With ``phase_dir``, the model after each phase is kept in ``phase_dir/NN-name`` (a folder
        ``load`` reads), so a phase's output can be inspected or reused. With ``phase_cache``, the
        model after each phase but the last is cached there, and a fit whose first phases match a
        cached fit's (same model, data, seed and settings) starts after them."""
        train_data = _as_dataset(X, y, text_pairs, require_labels=True)
        dev_data = _as_dataset(dev, require_labels=True) if dev is not None else None
        extra = _as_dataset(unlabeled, require_labels=False) if unlabeled is not None else None
        checkpoint = None
        if checkpoint_dir is not None:
            fingerprint = json.dumps(self.config.to_dict(), sort_keys=True)
            checkpoint = Checkpointer(checkpoint_dir, checkpoint_every, fingerprint)
        on_phase_end = None
        if phase_dir is not None:

            def on_phase_end(i, done, model, tokenizer, label_map):
                folder = Path(phase_dir) / f"{i:02d}-{done[-1].name}"
                history = [vars(p) for p in done]
                write_model_folder(
                    folder, model, tokenizer, label_map.labels, self.config, history, None, True
                )

        start = time.perf_counter()
        result = trainer.train(
            self.config,
            train_data,
            dev_data,
            extra,
            log,
            self.progress,
            checkpoint,
            resume,
            on_phase_end,
            PhaseCache(phase_cache) if phase_cache is not None else None,
        )
        self.train_seconds_ = time.perf_counter() - start
        self.model_, self.tokenizer_, self.label_map_ = (
            result.model,
            result.tokenizer,
            result.label_map,
        )
        self.bank_ = result.bank
        self.history_ = [vars(p) for p in result.phases]
        self.label_texts_added_ = result.label_texts_added
        self.label_name_agreement_ = result.label_name_agreement
        return self

    # --- inference -------------------------------------------------------------------------------

    @property
    def classes_(self) -> list[str]:
        return self._fitted().labels

    def _fitted(self) -> LabelMap:
        if self.model_ is None or self.label_map_ is None:
            raise ContrafitError("this classifier is not trained yet: call fit() or load() first")
        return self.label_map_

    def _forward(self, X: Inputs, text_pairs=None) -> tuple[torch.Tensor, torch.Tensor]:
        self._fitted()
        data = _as_dataset(X, None, text_pairs, require_labels=False)
        device = resolve_device(self.config.device)
        self.model_.to(device)
        encoded = tokenize(data, self.tokenizer_, self.config.recipe.model.max_length)
        return run_inference(
            self.model_,
            encoded,
            self.config.eval_batch_size,
            device,
            resolve_precision(self.config.precision, device),
            self.config.attention,
        )

    def predict_proba(
        self, X: Inputs, text_pairs: Sequence[str] | None = None, inference: str | None = None
    ) -> np.ndarray:
        """Class probabilities, shape (n, classes), columns in the order of ``classes_``.
        ``inference`` (head, proxy, knn) overrides the mode saved with the model."""
        logits, emb = self._forward(X, text_pairs)
        return probabilities(logits, emb, self._inference(inference), self.bank_).numpy()

    def predict(
        self, X: Inputs, text_pairs: Sequence[str] | None = None, inference: str | None = None
    ) -> list[str]:
        proba = self.predict_proba(X, text_pairs, inference)
        return self._fitted().decode(proba.argmax(-1).tolist())

    def encode(
        self, X: Inputs, text_pairs: Sequence[str] | None = None, normalize: bool = True
    ) -> np.ndarray:
        """Pooled sentence embeddings, shape (n, dim); L2-normalised unless ``normalize=False``."""
        _, emb = self._forward(X, text_pairs)
        if normalize:
            emb = torch.nn.functional.normalize(emb, dim=-1)
        return emb.numpy()

    def _inference(self, mode: str | None) -> InferenceConfig:
        """The saved inference settings, with ``mode`` (validated) in place of the saved one."""
        if mode is None:
            return self.config.inference
        return from_plain(
            InferenceConfig, {**to_plain(self.config.inference), "mode": mode}, "inference"
        )

    def available_inference_modes(self) -> list[str]:
        if self.bank_ is None:
            return ["head"]
        return ["head", "knn", "logreg"] + (["proxy"] if self.bank_.proxies is not None else [])

    def evaluate_modes(self, data: Inputs) -> dict[str, dict[str, Any]]:
        """Metrics of every available inference mode, from one forward pass over ``data``."""
        return self.evaluate_modes_and_embed(data)[0]

    def evaluate_modes_and_embed(
        self, data: Inputs
    ) -> tuple[dict[str, dict[str, Any]], np.ndarray]:
        """``evaluate_modes`` plus the (n, dim) L2-normalised embeddings of the same pass."""
        dataset = _as_dataset(data, require_labels=True)
        y_true = self._fitted().encode(dataset.labels, dataset.source)
        logits, emb = self._forward(dataset)
        out = {}
        for mode in self.available_inference_modes():
            proba = probabilities(logits, emb, self._inference(mode), self.bank_)
            y_pred = proba.argmax(-1).tolist()
            out[mode] = full_report(y_true, y_pred, self.classes_)
        return out, torch.nn.functional.normalize(emb, dim=-1).numpy()

    def evaluate(self, data: Inputs, inference: str | None = None) -> dict[str, Any]:
        """Accuracy, macro-F1, MCC, per-class report and confusion matrix on labeled ``data``."""
        dataset = _as_dataset(data, require_labels=True)
        y_true = self._fitted().encode(dataset.labels, dataset.source)
        y_pred = self.predict_proba(dataset, inference=inference).argmax(-1).tolist()
        return full_report(y_true, y_pred, self.classes_)

    # --- persistence -----------------------------------------------------------------------------

    def save(self, path: str | Path, overwrite: bool = False) -> None:
        """HF-style folder: encoder (config.json + model.safetensors), tokenizer, head weights and
        contrafit.json (labels, model and run config). Written to a temp folder, then renamed."""
        label_map = self._fitted()
        write_model_folder(
            path,
            self.model_,
            self.tokenizer_,
            label_map.labels,
            self.config,
            self.history_,
            self.bank_,
            overwrite,
        )

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> ContrafitClassifier:
        from transformers import AutoModel, AutoTokenizer

        path = Path(path)
        meta = _read_meta(path)
        for required in (HEAD_FILE, "config.json"):
            if not (path / required).exists():
                raise ModelLoadError(f"{path}: missing {required}; the saved model is incomplete")
        if not any(path.glob("model*.safetensors")):
            raise ModelLoadError(
                f"{path}: no model*.safetensors encoder weights (pickled weights are not loaded, "
                "they can run arbitrary code)"
            )
        try:
            config = from_plain(RunConfig, meta["run_config"], f"{path / META_FILE}: run_config")
            if device is not None:
                config.device = device
            encoder = AutoModel.from_pretrained(path, use_safetensors=True)
            tokenizer = AutoTokenizer.from_pretrained(path)
            model = TextClassifier(encoder, config.recipe.model, len(meta["labels"]))
            model.head.load_state_dict(_load_tensors(path / HEAD_FILE))
        except (OSError, ValueError, RuntimeError, KeyError) as e:
            raise ModelLoadError(
                f"{path}: cannot load the saved model: {str(e).splitlines()[0]}"
            ) from None
        clf = cls(config=config, progress=False)
        clf.model_, clf.tokenizer_ = model.eval(), tokenizer
        clf.label_map_ = LabelMap(meta["labels"])
        if (path / BANK_FILE).exists():
            clf.bank_ = Bank.from_tensors(_load_tensors(path / BANK_FILE))
        clf.history_ = meta.get("history", [])
        return clf


def write_model_folder(
    path: str | Path,
    model: TextClassifier,
    tokenizer,
    labels: list[str],
    config: RunConfig,
    history: list[dict[str, Any]],
    bank: Bank | None = None,
    overwrite: bool = False,
) -> None:
    """A folder ``ContrafitClassifier.load`` reads, written to a temp folder and then renamed."""
    path = Path(path)
    if path.exists() and any(path.iterdir()) and not overwrite:
        raise ContrafitError(f"{path}: already holds files; pass overwrite=True to replace them")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        model.encoder.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        head = {k: v.detach().cpu().contiguous() for k, v in model.head.state_dict().items()}
        save_file(head, tmp / HEAD_FILE)
        if bank is not None:
            save_file(bank.tensors(), tmp / BANK_FILE)
        meta = {
            "format_version": FORMAT_VERSION,
            "contrafit_version": __version__,
            "labels": labels,
            "run_config": config.to_dict(),
            "history": history,
        }
        atomic_write_json(tmp / META_FILE, meta)
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _load_tensors(file: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(file)
    except Exception as e:  # safetensors raises its own error type on a damaged file
        raise ModelLoadError(
            f"{file}: not a readable safetensors file ({str(e).splitlines()[0]}); "
            "re-save the model or copy the file again"
        ) from None


def _read_meta(path: Path) -> dict[str, Any]:
    if not path.is_dir():
        raise ModelLoadError(
            f"{path}: not a folder; pass the folder written by `contrafit train` (DIR/model)"
        )
    meta_path = path / META_FILE
    if not meta_path.exists():
        raise ModelLoadError(f"{path}: no {META_FILE}; is this a folder saved by contrafit?")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelLoadError(f"{meta_path}: corrupt ({e}); save the model again") from None
    if (
        meta.get("format_version") != FORMAT_VERSION
        or "labels" not in meta
        or "run_config" not in meta
    ):
        raise ModelLoadError(
            f"{meta_path}: unknown format; expected format_version {FORMAT_VERSION}"
        )
    return meta


def _as_dataset(
    X: Inputs, y: Sequence[str] | None = None, text_pairs=None, require_labels: bool = True
) -> TextDataset:
    if isinstance(X, TextDataset):
        dataset = X
    elif isinstance(X, (str, Path)) or hasattr(X, "column_names"):
        dataset = load_dataset(X, require_labels=require_labels)
    else:
        texts = list(X)
        if not all(isinstance(t, str) and t.strip() for t in texts):
            bad = next(i for i, t in enumerate(texts) if not (isinstance(t, str) and t.strip()))
            raise ContrafitError(f"input {bad}: expected a non-empty string, got {texts[bad]!r}")
        dataset = TextDataset(
            texts,
            [str(v) for v in y] if y is not None else None,
            list(text_pairs) if text_pairs is not None else None,
        )
    if require_labels and dataset.labels is None:
        raise ContrafitError(
            f"{dataset.source}: labels are required (pass y, or a file with labels)"
        )
    return dataset
