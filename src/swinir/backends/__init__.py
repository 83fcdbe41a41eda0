"""Back ends that run a SwinIR model for :class:`swinir.Upscaler`, and the function that picks one.

A *runner* maps a CPU float32 batch (B, C, h, w) in [0, 1] of any size to (B, C, s*h, s*w); the
Upscaler's tiling, colour handling and file I/O sit on top and never see which one runs:

- :mod:`.torch_runner`: the PyTorch module on CPU, CUDA or MPS, in fp32 or bf16;
- :mod:`.int8`: the same module with dynamically quantized int8 linear layers (CPU);
- :mod:`.onnxruntime`: an ONNX export of the model (exported once, cached) in ONNX Runtime,
  fp32 or int8 (CPU).

A new back end is a module here with a class that satisfies :class:`Runner`, plus a branch in
:func:`make_runner`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import torch
from torch import Tensor

from ..checkpoint import load_model
from ..model import SwinIRConfig

PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "int8")
BACKENDS: tuple[str, ...] = ("torch", "onnxruntime")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")


class Runner(Protocol):
    """What the Upscaler needs from a model back end."""

    config: SwinIRConfig
    scale: int
    in_chans: int
    window_size: int

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, h, w) float32 CPU in [0, 1] -> (B, C, s*h, s*w) float32 CPU (not clipped)."""
        ...


def pick_device(device: str = "auto") -> torch.device:
    """``auto``: CUDA, then Apple MPS, then CPU; a named device must be available."""
    if device not in DEVICES and not device.startswith("cuda:"):
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    mps = getattr(torch.backends, "mps", None)
    mps_ok = bool(mps is not None and mps.is_available())
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if mps_ok else torch.device("cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available (use --device cpu or auto)")
    if device == "mps" and not mps_ok:
        raise ValueError("device 'mps' requested but Apple MPS is not available (use --device cpu or auto)")
    return torch.device(device)


def make_runner(
    weights: Path, device: torch.device, precision: str, img_range: float | None, backend: str = "torch"
) -> Runner:
    """The runner for ``weights`` (a checkpoint, or an ``.onnx`` export for ``onnxruntime``)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if (backend == "onnxruntime" or precision == "int8") and device.type != "cpu":
        raise ValueError(f"{backend} {precision} runs on the CPU only (use --device cpu)")
    if backend == "onnxruntime":
        from .onnxruntime import OnnxRunner

        if precision == "bf16":
            raise ValueError("the onnxruntime back end runs fp32 or int8, not bf16")
        if weights.suffix.lower() == ".onnx":
            return OnnxRunner.from_file(weights, precision)
        return OnnxRunner.from_model(load_model(weights, img_range=img_range), precision)
    if weights.suffix.lower() == ".onnx":
        raise ValueError(f"{weights}: an ONNX file needs --backend onnxruntime")
    from .torch_runner import TorchRunner

    model = load_model(weights, img_range=img_range)
    if precision == "int8":
        from .int8 import quantize_int8

        return TorchRunner(quantize_int8(model, inplace=True), model.config, device, "fp32")
    return TorchRunner(model, model.config, device, precision)
