"""Exponential moving average of model weights, the weights that get evaluated and exported."""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn


class EMA:
    """Keeps ``module``, a frozen copy of the model whose floats track the live weights.

    After optimiser step ``t`` (1-based): ``ema = d * ema + (1 - d) * live`` with
    ``d = min(decay, (1 + t) / (10 + t))``, so the average is not dominated by the random
    initialisation early on. Buffers are copied as they are.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        d = min(self.decay, (1.0 + step) / (10.0 + step))
        live = model.state_dict()
        for name, ema in self.module.state_dict().items():
            src = live[name].detach()
            if ema.is_floating_point():
                ema.lerp_(src.to(ema.dtype), 1.0 - d)
            else:
                ema.copy_(src)

    def state_dict(self) -> dict[str, Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.module.load_state_dict(state)
