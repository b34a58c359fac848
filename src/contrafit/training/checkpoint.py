"""Checkpoints to resume a killed run: model, objective (proxies, decoders), optimizer, the loop's
position and best-so-far state, and every random number generator, in ONE safetensors file written
atomically (temp file + rename), so a crash mid-write leaves the previous checkpoint intact.

No pickle: tensors go in the safetensors body, everything else (optimizer hyper-parameters, RNG
states of Python and NumPy, loop counters, finished phases) in its JSON metadata.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from contrafit.errors import ContrafitError

CHECKPOINT_FILE = "checkpoint.safetensors"


@dataclass
class LoopState:
    """Where a phase stands: enough to continue it exactly."""

    phase_index: int
    epoch: int  # the epoch in progress (its batch order is a function of the seed and epoch)
    steps: int  # optimizer steps done in this phase
    stale: int = 0
    best_key: list[float] | None = None
    epoch_start_steps: int = 0  # steps done when the epoch began: the batches to skip on resume
    result: dict[str, Any] = field(default_factory=dict)  # the PhaseResult so far
    fresh: bool = False  # saved between phases: the phase at phase_index has not started


def generators(module: torch.nn.Module) -> dict[str, torch.Generator]:
    """Every ``torch.Generator`` an objective keeps (masking, deletion noise), by module path."""
    found = {}
    for name, sub in module.named_modules():
        for attr, value in vars(sub).items():
            if isinstance(value, torch.Generator):
                found[f"{name}.{attr}" if name else attr] = value
    return found


def _rng_meta() -> dict[str, Any]:
    version, state, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": [version, list(state), gauss],
        "numpy": [kind, keys.tolist(), pos, has_gauss, cached],
    }


def _set_rng_meta(meta: dict[str, Any]) -> None:
    version, state, gauss = meta["python"]
    random.setstate((version, tuple(state), gauss))
    kind, keys, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


def _under(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors saved under ``prefix.``, with that prefix taken off their names."""
    n = len(prefix) + 1
    return {k[n:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


class Checkpointer:
    """Saves at a step interval and at the end of every phase but the last; loads for --resume."""

    def __init__(self, folder: str | Path, every_steps: int | None, fingerprint: str):
        self.path = Path(folder) / CHECKPOINT_FILE
        self.every_steps = every_steps
        self.fingerprint = fingerprint  # the resolved run config: a resume must match it
        self.finished_phases: list[dict[str, Any]] = []
        self.carry: dict[str, torch.Tensor] = {}  # state from finished phases (learned proxies)

    def due(self, steps: int) -> bool:
        return bool(self.every_steps) and steps % self.every_steps == 0

    def save(
        self,
        model: torch.nn.Module,
        objective: torch.nn.Module | None,
        optimizer: torch.optim.Optimizer | None,
        loop: LoopState,
        best_state: dict[str, torch.Tensor] | None = None,
        averaged: dict[str, torch.Tensor] | None = None,
    ) -> None:
        tensors: dict[str, torch.Tensor] = {}
        tensors.update({f"model.{k}": v for k, v in model.state_dict().items()})
        if objective is not None:
            tensors.update({f"objective.{k}": v for k, v in objective.state_dict().items()})
            for name, gen in generators(objective).items():
                tensors[f"rng.gen.{name}"] = gen.get_state()
        if best_state is not None:
            tensors.update({f"best.{k}": v for k, v in best_state.items()})
        if averaged is not None:  # the phase's moving average of its weights (ema_decay)
            tensors.update({f"averaged.{k}": v for k, v in averaged.items()})
        optim_meta = None
        if optimizer is not None:
            sd = optimizer.state_dict()
            for pid, st in sd["state"].items():
                for name, value in st.items():
                    tensors[f"optim.{pid}.{name}"] = torch.as_tensor(value)
            optim_meta = sd["param_groups"]
        tensors["rng.torch"] = torch.get_rng_state()
        tensors.update({f"carry.{k}": v for k, v in self.carry.items()})
        # safetensors refuses tensors that share memory (tied weights): store contiguous copies
        tensors = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
        meta = {
            "fingerprint": self.fingerprint,
            "loop": json.dumps(vars(loop)),
            "finished_phases": json.dumps(self.finished_phases),
            "optimizer": json.dumps(optim_meta),
            "rng": json.dumps(_rng_meta()),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".checkpoint.", suffix=".tmp")
        os.close(fd)
        try:
            save_file(tensors, tmp, metadata=meta)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def load(self) -> Resume | None:
        if not self.path.exists():
            return None
        try:
            with safe_open(str(self.path), framework="pt") as f:
                meta = f.metadata()
                tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        except Exception as e:
            raise ContrafitError(
                f"{self.path}: cannot read the checkpoint ({e}); delete it to start over"
            ) from e
        if meta.get("fingerprint") != self.fingerprint:
            raise ContrafitError(
                f"{self.path}: the checkpoint was written by a run with another configuration "
                "(recipe, seed, model or overrides differ); resume with the same settings, or "
                "start a new run in another --output folder"
            )
        self.finished_phases = json.loads(meta["finished_phases"])
        self.carry = _under(tensors, "carry")
        return Resume(
            loop=LoopState(**json.loads(meta["loop"])),
            tensors=tensors,
            optimizer_groups=json.loads(meta["optimizer"]),
            rng=json.loads(meta["rng"]),
        )

    @staticmethod
    def remove_from(folder: str | Path) -> None:
        (Path(folder) / CHECKPOINT_FILE).unlink(missing_ok=True)


@dataclass
class Resume:
    loop: LoopState
    tensors: dict[str, torch.Tensor]
    optimizer_groups: list[dict[str, Any]] | None
    rng: dict[str, Any]

    def part(self, prefix: str) -> dict[str, torch.Tensor]:
        return _under(self.tensors, prefix)

    def restore_model(self, model: torch.nn.Module) -> None:
        model.load_state_dict(self.part("model"))

    def restore_phase(
        self, objective: torch.nn.Module, optimizer: torch.optim.Optimizer
    ) -> dict[str, torch.Tensor] | None:
        """Objective, optimizer and RNG states; returns the best-so-far weights, if any."""
        objective.load_state_dict(self.part("objective"))
        if self.optimizer_groups is not None:
            state: dict[int, dict[str, torch.Tensor]] = {}
            for key, value in self.part("optim").items():
                pid, name = key.split(".", 1)
                state.setdefault(int(pid), {})[name] = value
            optimizer.load_state_dict({"state": state, "param_groups": self.optimizer_groups})
        self.restore_rng(objective)
        best = self.part("best")
        return best or None

    def restore_rng(self, objective: torch.nn.Module) -> None:
        torch.set_rng_state(self.tensors["rng.torch"])
        for name, gen in generators(objective).items():
            gen.set_state(self.tensors[f"rng.gen.{name}"])
        _set_rng_meta(self.rng)
