"""A cache of models after a phase, shared across runs.

Recipes often begin with the same phases: ``dae-ft`` and ``dae-cl-ft`` post-train the same DAE
phase, ``cmlm-ce`` and ``cmlm-scl`` the same CMLM phase, and a search over fine-tuning settings
repeats one post-training phase per variant. A phase's output is a function of everything before
it: the model, the phases up to it, the seed, the runtime settings and the data. Its key hashes
all of them, so a run whose first phases match a cached run's starts after them, with the same
weights it would have computed (each phase reseeds from the run's seed and its own index).

An entry is a between-phase checkpoint (one safetensors file, written atomically), so a cache hit
is the same code path as resuming a run that stopped between phases.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import contrafit
from contrafit.config import RunConfig
from contrafit.data.loading import TextDataset
from contrafit.training.checkpoint import Checkpointer, Resume

logger = logging.getLogger(__name__)


def data_digest(*datasets: TextDataset | None) -> str:
    """One hash over the texts, pairs and labels of every dataset (None included, by position)."""
    h = hashlib.sha256()
    for data in datasets:
        columns = [] if data is None else [data.texts, data.text_pairs, data.labels]
        h.update(json.dumps(columns, ensure_ascii=False).encode())
        h.update(b"\x00")
    return h.hexdigest()


def _weights_stamp(model_path: str) -> list[Any]:
    """Names, sizes and modification times of a local model folder's weights (a hub name: [])."""
    folder = Path(model_path)
    if not folder.is_dir():
        return []
    return [
        (f.name, f.stat().st_size, f.stat().st_mtime_ns)
        for f in sorted(folder.glob("*.safetensors"))
    ]


# phase settings added after the cache's entries were first written: left out of the key while
# they hold their default (the behaviour before they existed), so those entries stay valid. Named
# one by one, not "every field at its default": a default that later changed would then key the
# old behaviour and the new one alike
_ADDED_LATER = {"ema_decay": None, "pseudo_pick": "per_class", "pseudo_teacher": "head"}


def _phase_for_key(phase: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in phase.items() if k not in _ADDED_LATER or v != _ADDED_LATER[k]}


def phase_keys(config: RunConfig, model_path: str, data: str) -> list[str]:
    """The cache key of the model after each phase of ``config``'s recipe."""
    plain = config.to_dict()
    recipe = plain.pop("recipe")
    recipe["phases"] = [_phase_for_key(p) for p in recipe["phases"]]
    base = {
        "contrafit": contrafit.__version__,
        "run": plain,  # seed, device, precision, dev metric, inference (kNN dev selection)
        "model": recipe["model"],
        "weights": [model_path, _weights_stamp(model_path)],
        "data": data,
    }
    keys = []
    for i in range(len(recipe["phases"])):
        text = json.dumps({**base, "phases": recipe["phases"][: i + 1]}, sort_keys=True)
        keys.append(hashlib.sha256(text.encode()).hexdigest()[:32])
    return keys


class PhaseCache:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def entry(self, key: str) -> Checkpointer:
        return Checkpointer(self.folder / key, None, key)

    def latest(self, keys: list[str]) -> tuple[Resume, Checkpointer] | None:
        """The deepest cached phase among ``keys`` but the last (a run's final model is its
        result, not a cache entry): the state to start from and its entry, which holds the
        finished phases and carried tensors."""
        for key in reversed(keys[:-1]):
            entry = self.entry(key)
            state = entry.load()
            if state is not None:
                _touch(self.folder / key)  # a use: eviction drops the least recently used
                return state, entry
        return None

    def evict(self, max_bytes: int, spare_seconds: float = 600.0) -> int:
        """Delete the least recently used entries until the cache holds at most ``max_bytes``;
        return the bytes freed. An entry written or used in the last ``spare_seconds`` is kept
        whatever its size: another process sharing the folder may be writing or reading it."""
        if not self.folder.is_dir():
            return 0
        entries = [(_last_use(p), _size(p), p) for p in self.folder.iterdir() if p.is_dir()]
        total = sum(size for _, size, _ in entries)
        freed, now = 0, time.time()
        for used, size, path in sorted(entries):
            if total - freed <= max_bytes:
                break
            if now - used < spare_seconds:
                continue
            shutil.rmtree(path, ignore_errors=True)
            freed += size
        if freed:
            logger.info("phase cache %s: evicted %.1f GB", self.folder, freed / 1e9)
        return freed


def _touch(path: Path) -> None:
    # evicted meanwhile by another process: the state is already loaded
    with contextlib.suppress(OSError):
        os.utime(path)


def _last_use(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _size(path: Path) -> int:
    total = 0
    for f in path.rglob("*"):
        with contextlib.suppress(OSError):  # deleted meanwhile
            total += f.stat().st_size if f.is_file() else 0
    return total
