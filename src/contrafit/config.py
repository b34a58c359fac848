"""Typed, strict configuration. Unknown keys are errors; the resolved config is saved with each run.

A run is: a model spec, a recipe (a list of phases), and run settings (seed, device, precision).
Each phase names its objectives; objective-specific keys are passed to the objective's constructor,
which rejects unknown ones (see ``contrafit.objectives.build_objective``).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Literal, get_args, get_origin, get_type_hints

import yaml

from contrafit.errors import ConfigError

DEFAULT_MODEL = "default"


@dataclass
class ModelConfig:
    name_or_path: str = field(
        default=DEFAULT_MODEL,
        metadata={"help": "HF model name or folder; 'default' = offline all-MiniLM-L6-v2"},
    )
    pooling: Literal["mean", "cls"] = field(default="mean", metadata={"help": "token pooling"})
    head: Literal["linear", "mlp"] = field(default="linear", metadata={"help": "classifier head"})
    head_hidden: int = field(default=256, metadata={"help": "hidden size of the mlp head"})
    head_dropout: float = field(default=0.1, metadata={"help": "dropout before the head"})
    max_length: int = field(default=128, metadata={"help": "tokens per input (truncated beyond)"})

    def __post_init__(self) -> None:
        _check_positive(self, "head_hidden", "max_length")
        if not 0.0 <= self.head_dropout < 1.0:
            raise ConfigError(f"model.head_dropout must be in [0, 1), got {self.head_dropout}")


@dataclass
class ObjectiveConfig:
    name: str = field(metadata={"help": "registered objective name (see `contrafit objectives`)"})
    weight: float = field(default=1.0, metadata={"help": "weight in the phase's weighted sum"})
    params: dict[str, Any] = field(default_factory=dict, metadata={"help": "objective arguments"})
    epo: bool = field(
        default=True,
        metadata={"help": "with combine: epo, false adds this term with its fixed weight instead"},
    )

    @classmethod
    def from_dict(cls, raw: Any, where: str) -> ObjectiveConfig:
        # YAML writes objectives flat: {name: cross_entropy, weight: 1, label_smoothing: 0.1}
        if isinstance(raw, str):
            return cls(name=raw)
        if not isinstance(raw, dict) or "name" not in raw:
            raise ConfigError(
                f"{where}: an objective must be a name or a mapping with 'name', got {raw!r}"
            )
        raw = dict(raw)
        params = dict(raw.pop("params", {}) or {})
        name, weight = raw.pop("name"), raw.pop("weight", 1.0)
        epo = raw.pop("epo", True)
        if not isinstance(epo, bool):
            raise ConfigError(f"{where}: epo must be true or false, got {epo!r}")
        params.update(raw)
        return cls(name=str(name), weight=float(weight), params=params, epo=epo)

    def to_dict(self) -> dict[str, Any]:
        extra = {} if self.epo else {"epo": False}
        return {"name": self.name, "weight": self.weight, **extra, **self.params}


@dataclass
class PhaseConfig:
    name: str = field(metadata={"help": "phase name (unique in the recipe)"})
    objectives: list[ObjectiveConfig] = field(default_factory=list)
    combine: Literal["sum", "epo"] = field(
        default="sum",
        metadata={
            "help": "sum: Σ weight·loss (linear scalarisation); epo: Exact Pareto Optimal "
            "search with the weights as the preference vector"
        },
    )
    data: Literal["labeled", "unlabeled", "pseudo"] = field(
        default="labeled",
        metadata={
            "help": "labeled examples; unlabeled task text (post-training); or pseudo: the labeled "
            "examples plus unlabeled texts labeled by the model so far (self-training)"
        },
    )
    pseudo_per_class: int = field(
        default=32, metadata={"help": "data: pseudo: most confident unlabeled texts per class"}
    )
    pseudo_pool: int = field(
        default=2000, metadata={"help": "data: pseudo: unlabeled texts scored (a seeded sample)"}
    )
    pseudo_pick: Literal["per_class", "confident"] = field(
        default="per_class",
        metadata={
            "help": "data: pseudo: per_class, the most confident texts of each predicted class; "
            "confident, the same quota but only among the 2 x per_class x classes most confident "
            "texts overall, so a class the model is rarely sure of gets few"
        },
    )
    pseudo_teacher: Literal["head", "inference"] = field(
        default="head",
        metadata={
            "help": "data: pseudo: what labels the pool: the head's softmax, or the run's "
            "inference mode (e.g. logreg, fitted on the labeled texts' embeddings)"
        },
    )
    augment: Literal["none", "imbalance", "extra"] = field(
        default="none",
        metadata={
            "help": "labeled phases: imbalance correction with stop-word-deletion copies "
            "(imbalance: max_ratio 4, extra: max_ratio 20; min_ratio 1.5)"
        },
    )
    epochs: int = field(default=1, metadata={"help": "passes over the phase's data"})
    max_steps: int | None = field(default=None, metadata={"help": "stop after this many steps"})
    batch_size: int = 16
    lr: float = field(default=2e-5, metadata={"help": "learning rate of the encoder"})
    head_lr: float | None = field(default=None, metadata={"help": "head lr (default: lr)"})
    weight_decay: float = 0.01
    warmup_ratio: float = field(default=0.1, metadata={"help": "share of steps for linear warm-up"})
    max_grad_norm: float | None = field(default=1.0, metadata={"help": "gradient clipping"})
    freeze: list[Literal["encoder", "embeddings", "head"]] = field(default_factory=list)
    frozen_dropout: bool = field(
        default=False,
        metadata={
            "help": "a frozen encoder keeps its dropout (it runs at every step, in train mode) "
            "instead of giving fixed features computed once for the phase"
        },
    )
    select_best: bool = field(
        default=True, metadata={"help": "evaluate on dev each epoch and keep the best weights"}
    )
    early_stopping_patience: int | None = field(
        default=None, metadata={"help": "stop after this many epochs without dev improvement"}
    )
    epoch_batches: Literal["ceil", "floor"] = field(
        default="ceil",
        metadata={
            "help": "batches an epoch: ceil(texts / batch_size), or floor (a last partial batch "
            "is left out; a class-balanced sampler then draws fewer repeats)"
        },
    )
    ema_decay: float | None = field(
        default=None,
        metadata={
            "help": "keep an exponential moving average of the trainable weights (this decay a "
            "step); dev scores, and the phase keeps, the averaged weights"
        },
    )

    def __post_init__(self) -> None:
        check_name(self.name, "phase name")
        if not self.objectives:
            raise ConfigError(f"phase '{self.name}': needs at least one objective")
        _check_positive(self, "epochs", "batch_size", "pseudo_per_class", "pseudo_pool")
        if self.max_steps is not None and self.max_steps <= 0:
            raise ConfigError(f"phase '{self.name}': max_steps must be > 0, got {self.max_steps}")
        if self.lr <= 0:
            raise ConfigError(f"phase '{self.name}': lr must be > 0, got {self.lr}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError(f"phase '{self.name}': warmup_ratio must be in [0, 1)")
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise ConfigError(
                f"phase '{self.name}': ema_decay must be in (0, 1) (e.g. 0.9), or null for no "
                f"averaging; got {self.ema_decay}"
            )
        if self.augment != "none" and self.data != "labeled":
            raise ConfigError(f"phase '{self.name}': augment: {self.augment} needs data: labeled")


@dataclass
class LabelTextsConfig:
    """Label names as extra training texts (contrafit.data.label_texts)."""

    copies: int = field(
        default=0,
        metadata={
            "help": "templated texts per class added to the training texts (at least, with "
            "agreement_scale); 0 adds none"
        },
    )
    template: str = field(
        default="This sentence is {}.",
        metadata={"help": "where the label's name goes: '{}' ('_' in a name reads as a space)"},
    )
    agreement_scale: float = field(
        default=0.0,
        metadata={
            "help": "when > 0, a class gets max(copies, round(agreement_scale x kappa x labeled "
            "texts per class)) label texts; kappa: how much better than chance the label texts "
            "alone label the training texts (nearest by cosine, the pre-trained encoder)"
        },
    )

    def __post_init__(self) -> None:
        if self.copies < 0:
            raise ConfigError(f"label_texts.copies must be >= 0, got {self.copies}")
        if self.agreement_scale < 0:
            raise ConfigError(
                f"label_texts.agreement_scale must be >= 0, got {self.agreement_scale}"
            )
        if self.template.count("{}") != 1:
            raise ConfigError(
                "label_texts.template must hold one '{}' where the label's name goes, e.g. "
                f"'This sentence is {{}}.'; got {self.template!r}"
            )


@dataclass
class RecipeConfig:
    name: str
    description: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    phases: list[PhaseConfig] = field(default_factory=list)
    weight_interpolation: float = field(
        default=1.0,
        metadata={
            "help": "WiSE-FT (Wortsman et al. 2022): after the last phase the encoder's weights "
            "become a·trained + (1-a)·pre-trained; 1 keeps the trained weights"
        },
    )
    label_texts: LabelTextsConfig = field(default_factory=LabelTextsConfig)

    def __post_init__(self) -> None:
        if not self.phases:
            raise ConfigError(f"recipe '{self.name}': needs at least one phase")
        if not 0.0 <= self.weight_interpolation <= 1.0:
            raise ConfigError(
                f"recipe '{self.name}': weight_interpolation must be in [0, 1], got "
                f"{self.weight_interpolation}"
            )
        names = [p.name for p in self.phases]
        if len(set(names)) != len(names):
            raise ConfigError(f"recipe '{self.name}': phase names must be unique, got {names}")


@dataclass
class InferenceConfig:
    mode: Literal["head", "proxy", "knn", "logreg"] = field(
        default="head",
        metadata={
            "help": "head softmax, proxy mixture, kNN on train embeddings, or logistic regression "
            "fitted on them"
        },
    )
    head_weight: float = field(default=0.4, metadata={"help": "β in β·head + (1-β)·proxy"})
    proxy_scale: float = field(default=20.0, metadata={"help": "scale of cosine proxy logits"})
    knn_k: int = field(default=5, metadata={"help": "neighbours for knn"})
    knn_temperature: float = field(default=0.05, metadata={"help": "softmax temperature of votes"})
    logreg_c: float = field(default=1.0, metadata={"help": "inverse L2 strength of logreg"})
    logreg_class_weight: Literal["none", "balanced"] = field(
        default="none",
        metadata={
            "help": "balanced weighs each class by 1/its share of the train texts, so rare "
            "classes are not given up for accuracy (no effect on K-per-class data)"
        },
    )
    epoch_selection: Literal["auto", "head", "inference"] = field(
        default="auto",
        metadata={
            "help": "what scores each epoch on dev to pick a phase's best: inference = the "
            "predictions the saved model will make (knn or logreg over the training texts, "
            "re-embedded each epoch), head = the linear head (no extra pass); auto = inference "
            "for knn, head otherwise"
        },
    )

    def __post_init__(self) -> None:
        if not 0.0 <= self.head_weight <= 1.0:
            raise ConfigError(f"inference.head_weight must be in [0, 1], got {self.head_weight}")
        _check_positive(self, "proxy_scale", "knn_k", "knn_temperature", "logreg_c")

    def selects_epochs(self) -> bool:
        """Whether training scores dev epochs by this mode's predictions rather than the head's.
        Checked when training starts (a saved model's mode may be switched at predict time)."""
        if self.epoch_selection == "inference" and self.mode not in ("knn", "logreg"):
            raise ConfigError(
                f"inference.epoch_selection=inference needs inference.mode knn or logreg (got "
                f"{self.mode!r}): with {self.mode} inference the head picks the epoch; use auto"
            )
        if self.epoch_selection == "auto":
            return self.mode == "knn"
        return self.epoch_selection == "inference"


@dataclass
class RunConfig:
    recipe: RecipeConfig
    seed: int = field(default=42, metadata={"help": "seeds sampling, initialisation and batching"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda, cuda:1, mps"})
    precision: Literal["auto", "fp32", "bf16", "fp16"] = field(
        default="auto", metadata={"help": "autocast dtype; auto = bf16 where the hardware has it"}
    )
    attention: Literal["auto", "eager", "sdpa"] = field(
        default="auto",
        metadata={"help": "attention kernel; auto = eager to train on a CPU, sdpa otherwise"},
    )
    # packed masks make a CPU training step 1.16-1.20x faster; the default recipe names them (its
    # accuracy check: round 14 of benchmarks/powered-fresh.yaml), other recipes keep torch's
    dropout: Literal["torch", "packed"] = field(
        default="torch",
        metadata={
            "help": "dropout masks while training: torch's, or packed (4 per random number; a "
            "CPU draws torch's on one thread); a recipe may name its own (the default: packed)"
        },
    )
    eval_metric: Literal["accuracy", "macro_f1", "mcc"] = field(
        default="accuracy", metadata={"help": "dev metric that picks the best checkpoint"}
    )
    eval_batch_size: int = 64
    inference: InferenceConfig = field(default_factory=InferenceConfig)

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)


# --- generic strict (de)serialisation ------------------------------------------------------------


def to_plain(obj: Any) -> Any:
    if isinstance(obj, ObjectiveConfig):
        return obj.to_dict()
    if dataclasses.is_dataclass(obj):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list):
        return [to_plain(x) for x in obj]
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    return obj


def from_plain(cls: type, raw: Any, where: str) -> Any:
    """Build dataclass ``cls`` from plain data; unknown keys and wrong types are ConfigErrors."""
    if cls is ObjectiveConfig:
        return ObjectiveConfig.from_dict(raw, where)
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__} {raw!r}")
    hints = get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed keys are {sorted(known)}")
    kwargs = {k: _coerce(hints[k], v, f"{where}.{k}") for k, v in raw.items()}
    try:
        return cls(**kwargs)
    except TypeError as e:  # a required key is missing
        raise ConfigError(f"{where}: {e}") from None


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin, args = get_origin(tp), get_args(tp)
    if dataclasses.is_dataclass(tp):
        return from_plain(tp, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_coerce(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return value
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where}: expected one of {list(args)}, got {value!r}")
        return value
    if args and type(None) in args:  # Optional[X]
        if value is None:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, where)
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):  # YAML 1.1 reads 1e-4 as a string
        try:
            return float(value)
        except ValueError:
            pass
    if tp in (int, float, str, bool) and not (
        isinstance(value, tp) and not (tp is int and isinstance(value, bool))
    ):
        raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}")
    return value


def _check_positive(obj: Any, *names: str) -> None:
    for n in names:
        if getattr(obj, n) <= 0:
            raise ConfigError(f"{type(obj).__name__}.{n} must be > 0, got {getattr(obj, n)}")


# --- overrides: --set key=value ------------------------------------------------------------------


def apply_overrides(plain: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key=value`` overrides to a plain run config.

    Keys are dotted paths: ``seed=13``, ``recipe.model.pooling=cls``, ``recipe.phases.0.lr=3e-5``
    or by phase name ``recipe.phases.finetune.epochs=5``. The shorthand ``phases.*.lr=1e-5`` sets a
    key in every phase; ``model.X`` and ``phases.X`` are short for ``recipe.model.X`` and
    ``recipe.phases.X``. Values are parsed as YAML (numbers, booleans, lists).
    """
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. --set phases.0.lr=3e-5")
        key, raw_value = item.split("=", 1)
        value = yaml.safe_load(raw_value) if raw_value else ""
        parts = key.strip().split(".")
        if parts[0] in ("model", "phases"):
            parts = ["recipe", *parts]
        _set_path(plain, parts, value, item)
    return plain


def _set_path(node: Any, parts: list[str], value: Any, item: str) -> None:
    head, rest = parts[0], parts[1:]
    if isinstance(node, list):
        if head == "*":
            targets = node
        elif head.isdigit() and int(head) < len(node):
            targets = [node[int(head)]]
        else:
            targets = [n for n in node if isinstance(n, dict) and n.get("name") == head]
        if not targets:
            names = [n.get("name") for n in node if isinstance(n, dict)]
            raise ConfigError(
                f"--set {item!r}: no element {head!r}; choose an index or one of {names}"
            )
        for t in targets:
            if rest:
                _set_path(t, rest, value, item)
        return
    if not isinstance(node, dict):
        raise ConfigError(f"--set {item!r}: {head!r} is not inside a mapping")
    if not rest:
        node[head] = value
        return
    if head not in node:
        # a section the YAML left at its defaults (e.g. recipe.label_texts): the strict
        # dataclass build that follows still refuses a key no config has
        node[head] = {}
    _set_path(node[head], rest, value, item)


_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


def check_name(name: str, what: str) -> str:
    """Names that become folder names (phases, bench tasks and recipes) must stay one plain path
    component, so that nothing a config says can write outside the output folder."""
    if not isinstance(name, str) or not _SAFE_NAME.fullmatch(name) or ".." in name:
        raise ConfigError(
            f"{what} {name!r}: use letters, digits and . _ + - only (it names a folder; "
            "no slashes, no '..')"
        )
    return name


def load_yaml(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)  # safe loader: no arbitrary Python objects
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {e}") from None
