"""An exponential moving average of a phase's trainable weights (Polyak averaging; SWA,
Izmailov et al. 2018, averages along the trajectory the same way).

Why: a few-shot phase takes steps of 8 texts, each a noisy estimate of the gradient, and picks its
epoch on a dev split of a few dozen texts; the averaged weights follow the trajectory without the
last steps' noise. The update is torch's own (``torch.optim.swa_utils.get_ema_multi_avg_fn``:
one foreach lerp over the weights a step), kept beside the live weights rather than in a copy of
the model, so dev evaluation and the phase's best-epoch state see the averaged ones by swapping
them in.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch.optim.swa_utils import get_ema_multi_avg_fn


class WeightAverage:
    """``averaged = decay · averaged + (1 - decay) · weights`` after each optimizer step,
    starting from the weights the phase begins with."""

    def __init__(self, params: list[torch.nn.Parameter], decay: float):
        self.params = params
        self.averaged = [p.detach().clone() for p in params]
        self._update = get_ema_multi_avg_fn(decay)

    @torch.no_grad()
    def update(self) -> None:
        self._update(self.averaged, [p.detach() for p in self.params], None)

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """The averaged weights in the model for the block; the trained ones after it."""
        live = [p.detach().clone() for p in self.params]
        _copy(self.params, self.averaged)
        try:
            yield
        finally:
            _copy(self.params, live)

    def copy_to_model(self) -> None:
        """Leave the averaged weights in the model (the phase's result)."""
        _copy(self.params, self.averaged)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {str(i): t for i, t in enumerate(self.averaged)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if len(state) != len(self.averaged):
            raise ValueError(
                f"the checkpoint holds {len(state)} averaged weights, the phase trains "
                f"{len(self.averaged)}"
            )
        for i, t in enumerate(self.averaged):
            t.copy_(state[str(i)])


@torch.no_grad()
def _copy(params: list[torch.nn.Parameter], values: list[torch.Tensor]) -> None:
    for p, v in zip(params, values, strict=True):
        p.copy_(v)
