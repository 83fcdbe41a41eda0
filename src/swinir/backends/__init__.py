"""Back ends that run a SwinIR model for :class:`swinir.Upscaler`, and the function that picks one.

A *runner* maps a CPU float32 batch (B, C, h, w) in [0, 1] of any size to (B, C, s*h, s*w); the
Upscaler's tiling, colour handling and file I/O sit on top and never see which one runs:

- :mod:`.torch_runner`: the PyTorch module on CPU, CUDA or MPS, in fp32 or bf16;
- :mod:`.int8`: the same module with dynamically quantized int8 linear layers (CPU);
- :mod:`.onnxruntime`: an ONNX export of the model (exported once, cached) in ONNX Runtime,
  fp32 or int8 (CPU);
- :mod:`.openvino`: the model converted per tile shape (once, cached) in OpenVINO, fp32 (CPU).

A new back end is a module here with a class that satisfies :class:`Runner`, plus a branch in
:func:`make_runner`. One that compiles per input shape (``openvino``) also has
``cached_shapes()`` (the (B, C, H, W) shapes it has converted) and ``prepare(shapes)`` (convert or
load them now): the Upscaler asks it for its shapes when planning tiles, and converts what a run
needs before the first image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import torch
from torch import Tensor

from ..checkpoint import load_model
from ..model import SwinIRConfig

PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "int8")
BACKENDS: tuple[str, ...] = ("torch", "onnxruntime", "openvino")
# Back ends that run on the CPU only.
CPU_BACKENDS: tuple[str, ...] = ("onnxruntime", "openvino")
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
    if (backend in CPU_BACKENDS or precision == "int8") and device.type != "cpu":
        raise ValueError(f"{backend} {precision} runs on the CPU only (use --device cpu)")
    if backend == "openvino":
        from .openvino import OpenVinoRunner, require_openvino

        if precision != "fp32":
            raise ValueError(f"the openvino back end runs fp32 only, not {precision}")
        if weights.suffix.lower() == ".onnx":
            raise ValueError(f"{weights}: the openvino back end converts weights, not an ONNX file")
        require_openvino()  # before loading the weights: a missing extra answers at once
        return OpenVinoRunner(load_model(weights, img_range=img_range))
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

        params = sum(p.numel() for p in model.parameters())
        return TorchRunner(quantize_int8(model, inplace=True), model.config, device, "fp32", params)
    return TorchRunner(model, model.config, device, precision)


# Widths below which int8 linear layers cost more than they save on CPU (the per-call activation
# quantization): measured slower than fp32 for the bundled model (embed 32: 19.8 s vs 16.7 s) and
# lightweight (embed 60: 3.31 s vs 3.09 s), faster for the seed preset (embed 180: 1.5x).
THIN_EMBED_DIM = 96


def cpu_has_native_bf16() -> bool:
    """Whether this CPU has bf16 arithmetic (AVX512-BF16 or AMX); without it bf16 is emulated."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            flags = f.read()
    except OSError:  # not Linux: assume emulated, the common case
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def known_slower(config: SwinIRConfig, device: torch.device, precision: str, backend: str) -> str | None:
    """A warning when this choice was measured slower than fp32 PyTorch for such a model here.

    The measurements are in benchmarks/RESULTS.md and the README's speed section.
    """
    if device.type != "cpu":
        return None
    thin = config.embed_dim < THIN_EMBED_DIM
    if backend == "onnxruntime" and precision == "fp32":
        return (
            "note: --backend onnxruntime runs fp32 models slower than the default torch back end "
            "on CPU (measured 5-30% slower)"
        )
    if precision == "int8" and thin:
        what = "--backend onnxruntime --precision int8" if backend == "onnxruntime" else "--precision int8"
        return (
            f"note: {what} is slower than fp32 for thin models like this one (embed_dim "
            f"{config.embed_dim}); it pays off from about {THIN_EMBED_DIM} (measured 7-18% slower here)"
        )
    if precision == "bf16" and not cpu_has_native_bf16():
        return (
            "note: this CPU has no native bf16 (AVX512-BF16/AMX), so --precision bf16 is emulated and "
            "several times slower than fp32 (measured 6x for the default model)"
        )
    return None


# OpenVINO ran fp32 models at least this much faster than PyTorch once converted: 1.35x on the
# 2-core AMD (AVX2) machine of issue 13, 1.5-2.6x on the 2-core Xeon (AVX-512) of
# benchmarks/RESULTS.md ("OpenVINO").
OPENVINO_SPEEDUP = 1.3


def known_faster(config: SwinIRConfig, device: torch.device, precision: str, backend: str) -> str | None:
    """A note when a back end measured faster than this choice is installed (CPU, fp32 only).

    OpenVINO is not the default: each new tile shape costs a one-time conversion of tens of
    seconds, so it only pays off over several images or a second run.
    """
    if device.type != "cpu" or precision != "fp32" or backend != "torch":
        return None
    from .openvino import available

    if not available():
        return None
    return (
        f"note: --backend openvino ran fp32 models {OPENVINO_SPEEDUP:g}x or more faster than torch on "
        "CPUs like this one, after a one-time conversion per tile shape (tens of seconds, cached)"
    )
