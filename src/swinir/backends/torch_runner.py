"""The PyTorch runner: a :class:`~swinir.model.SwinIR` module on a device, in fp32 or bf16."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..model import SwinIRConfig


class TorchRunner:
    """Runs a SwinIR module (plain, or with int8 layers from :mod:`swinir.backends.int8`).

    ``forward`` maps a CPU float32 batch (B, C, h, w) in [0, 1] to (B, C, s*h, s*w) float32 CPU.
    """

    def __init__(
        self,
        model: nn.Module,
        config: SwinIRConfig,
        device: torch.device,
        precision: str,
        params: int | None = None,
    ) -> None:
        self.device = device
        # Parameters of the network (before quantization packs them away), for a run's header.
        self.params = params if params is not None else sum(p.numel() for p in model.parameters())
        self.dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        self.model = model.eval().to(device=device, dtype=self.dtype)
        self.config = config
        self.scale = config.upscale
        self.in_chans = config.in_chans
        self.window_size = config.window_size

    def forward(self, x: Tensor) -> Tensor:
        with torch.inference_mode():
            y = self.model(x.to(device=self.device, dtype=self.dtype))
        return y.to(device="cpu", dtype=torch.float32)
