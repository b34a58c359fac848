"""Shared fixtures: a tiny offline encoder (built from a config, milliseconds a step) and toy data."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

POSITIVE = ["good", "great", "excellent", "wonderful", "superb", "lovely", "fine", "brilliant"]
NEGATIVE = ["bad", "awful", "terrible", "horrible", "poor", "dreadful", "nasty", "worst"]
FILLER = ["the", "movie", "was", "really", "plot", "acting", "film", "quite", "story", "very"]


def toy_rows(n_per_class: int, seed: int) -> list[dict]:
    """A separable sentiment task: the label is decided by which word list a text draws from."""
    rng = random.Random(seed)
    rows = []
    for label, words in (("pos", POSITIVE), ("neg", NEGATIVE)):
        for _ in range(n_per_class):
            tokens = rng.sample(FILLER, 4) + rng.sample(words, 2)
            rng.shuffle(tokens)
            rows.append({"text": " ".join(tokens), "label": label})
    rng.shuffle(rows)
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    """A 2-layer, hidden-32 BERT with random weights and the offline MiniLM tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from contrafit.modeling.encoder import resolve_model_path

    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("default"))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    import torch

    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def toy_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("toy")
    return {
        "train": write_jsonl(folder / "train.jsonl", toy_rows(16, seed=1)),
        "dev": write_jsonl(folder / "dev.jsonl", toy_rows(8, seed=2)),
        "test": write_jsonl(folder / "test.jsonl", toy_rows(20, seed=3)),
    }


# fast settings for the tiny model: the toy task is learned in a few epochs at a high lr
TINY = ["phases.*.epochs=12", "phases.*.lr=3e-3", "model.max_length=32"]
