"""The int8 back end: dynamic quantization of the linear layers (``--precision int8``).

Weights of every ``nn.Linear`` (qkv, proj, fc1, fc2: most of a Swin block's arithmetic) are stored
as int8 with one scale per output channel; activations are quantized on the fly per call with a
scale from their range, so no calibration data is needed. Convolutions, attention products,
normalisation and softmax stay in fp32. Runs on CPU (fbgemm/x86 kernels).

    >>> from swinir.backends.int8 import quantize_int8
    >>> q = quantize_int8(swinir.load_model("model.safetensors"))
    >>> with torch.inference_mode():
    ...     y = q(x)

The quantized module runs in :class:`~swinir.backends.torch_runner.TorchRunner` like any other.
The measured speed and the PSNR cost are in ``benchmarks/RESULTS.md``: on thin models (the bundled
``default``, lightweight) int8 is slower than fp32 on CPUs without VNNI, because the per-call
activation quantization costs more than the smaller GEMMs save. The ONNX Runtime back end has its
own int8 form (:func:`swinir.backends.onnxruntime.quantize_onnx`).
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from ..model import SwinIR


def quantize_int8(model: SwinIR, inplace: bool = False) -> SwinIR:
    """A CPU inference copy of ``model`` (eval mode) with int8 dynamic linear layers.

    Parameter names of the remaining fp32 layers are unchanged; the quantized layers keep their
    module names (``...attn.qkv``, ``...mlp.fc1``, ...) but hold packed int8 weights, so the
    result is for inference only (save the fp32 model, quantize after loading).
    """
    if not inplace:
        model = copy.deepcopy(model)
    model = model.eval().to("cpu", torch.float32)
    quantize_int8_linear(model)
    return model


def quantize_int8_linear(module: nn.Module) -> nn.Module:
    """Replace every ``nn.Linear`` inside ``module`` (in place) with its dynamic int8 form."""
    try:
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
    except ImportError as exc:  # pragma: no cover - depends on the torch build
        raise RuntimeError(f"this torch build has no dynamic quantization ({exc})") from None
    engines = torch.backends.quantized.supported_engines
    engine = next((e for e in ("x86", "fbgemm", "qnnpack") if e in engines), None)
    if engine is None:  # pragma: no cover - depends on the torch build
        raise RuntimeError(f"no int8 engine in this torch build (supported: {engines})")
    torch.backends.quantized.engine = engine
    with warnings.catch_warnings():
        # torch.ao.quantization warns that it moves to torchao; the eager API still works here.
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=UserWarning)
        # A bare Linear is wrapped so that quantize_dynamic swaps it as a child.
        holder = nn.Sequential(module) if isinstance(module, nn.Linear) else module
        quantize_dynamic(holder, {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True)
    return holder[0] if holder is not module else module


def is_quantized(model: nn.Module) -> bool:
    """Whether ``model`` holds dynamically quantized layers."""
    from torch.ao.nn.quantized import dynamic as qd

    return any(isinstance(m, qd.Linear) for m in model.modules())
