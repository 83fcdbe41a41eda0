"""The ONNX Runtime back end, and ONNX export with dynamic batch, height and width.

    swinir export-onnx model.safetensors model.onnx          # checks ONNX Runtime against PyTorch
    swinir upscale photo.png --backend onnxruntime --model model.onnx

The exported graph takes (B, C, H, W) float32 in [0, 1] with **H and W multiples of the window
size** and returns (B, C, s*H, s*W); :class:`OnnxRunner` reflect-pads other sizes exactly as
:meth:`swinir.SwinIR.forward` does and crops the result, so outputs match PyTorch to ~1e-6.
Size-dependent tables (shift masks) are computed inside the graph from the input shape, so one
file serves every size; the relative-position biases are constants folded from the weights. The
model's config (scale, window, channels) is stored in the ONNX metadata.

Exporting uses ``torch.onnx.export(dynamo=True)`` (needs ``onnxscript``) and takes from tens of
seconds (lightweight) to a few minutes (large models) on a 2-core CPU, so
:meth:`OnnxRunner.from_model` keeps exported files in a cache (``$SWINIR_CACHE/onnx``) keyed by the
weights; ``swinir export-onnx`` writes one explicitly. int8 (:func:`quantize_onnx`) is ONNX
Runtime's dynamic quantization of the MatMul/Gemm weights.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..atomic import atomic_path
from ..model import SwinIR, SwinIRConfig
from ..windows import pad_to_window

# Bump when the exported graph (or the int8 recipe) changes, so that cached files are redone.
GRAPH_VERSION = "1"
QUANT_VERSION = "2"  # 2: reduce_range (7-bit weights; AVX2 u8s8 products saturate int16 otherwise)
OPSET = 18
METADATA_KEY = "swinir_config"


class OnnxError(ValueError):
    """A model that cannot be exported or run in ONNX Runtime (or a missing package), one line."""


class _Padded(nn.Module):
    """Graph entry point: window-multiple inputs only (padding happens outside, in numpy)."""

    def __init__(self, model: SwinIR) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model.forward_padded(x)


def _require(module: str, extra: str = "onnx") -> Any:
    try:
        return __import__(module)
    except ImportError:
        raise OnnxError(f"{module} is not installed (pip install 'swinir[{extra}]')") from None


def export_onnx(model: SwinIR, path: str | os.PathLike[str], check: bool = True) -> Path:
    """Write ``model`` as an ONNX graph with dynamic batch, height and width (multiples of the window).

    With ``check``, ONNX Runtime runs the file on a size different from the one traced and the
    result must match PyTorch within 1e-4 (else :class:`OnnxError`). The file is written atomically.
    """
    onnx = _require("onnx")
    _require("onnxscript")
    path = Path(path)
    cfg = model.config
    ws = cfg.window_size
    graph_model = copy.deepcopy(model).eval().to("cpu", torch.float32)
    graph_model.set_graph_mode(True)
    # Sizes of 0 or 1 are specialised by torch.export, so trace batch 2 and several windows a side.
    example = torch.rand(2, cfg.in_chans, 8 * ws, 6 * ws)
    dim = torch.export.Dim
    sizes = {0: dim("batch", min=1, max=4096), 2: ws * dim("hw", max=8192), 3: ws * dim("ww", max=8192)}
    dynamic = {"x": sizes}
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings(), _quiet():
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(
                _Padded(graph_model),
                (example,),
                dynamo=True,
                dynamic_shapes=dynamic,
                input_names=["input"],
                output_names=["output"],
                opset_version=OPSET,
                optimize=True,
                verbose=False,
            )
        except Exception as exc:
            raise OnnxError(f"export failed: {_first_line(exc)}") from None
    proto = program.model_proto
    meta = {
        METADATA_KEY: json.dumps(cfg.to_dict()),
        "swinir_graph_version": GRAPH_VERSION,
        "input": "float32 (B, C, H, W) in [0, 1], H and W multiples of window_size",
    }
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save_model(proto, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())
    if check:
        check_onnx(model, path)
    return path


def check_onnx(model: SwinIR, path: str | os.PathLike[str], atol: float = 1e-4) -> float:
    """Max abs difference between ONNX Runtime and PyTorch on an odd-sized batch; raises over ``atol``."""
    cfg = model.config
    ws = cfg.window_size
    x = torch.rand(1, cfg.in_chans, 3 * ws + 3, 5 * ws - 1, generator=torch.Generator().manual_seed(0))
    runner = OnnxRunner(path, threads=torch.get_num_threads())
    with torch.inference_mode():
        expected = model.eval()(x)
    diff = float((runner.forward(x) - expected).abs().max())
    if not diff <= atol:
        raise OnnxError(f"{path}: ONNX Runtime output differs from PyTorch by {diff:.3g} (> {atol:g})")
    return diff


def quantize_onnx(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Path:
    """int8 copy of an exported graph: MatMul/Gemm weights per-channel int8, activations dynamic."""
    _require("onnxruntime")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    onnx = _require("onnx")
    dst = Path(dst)
    with atomic_path(dst) as tmp, _quiet():
        quantize_dynamic(
            str(src),
            str(tmp),
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=True,
            op_types_to_quantize=["MatMul", "Gemm"],
        )
        proto = onnx.load(str(tmp))
        entry = proto.metadata_props.add()
        entry.key, entry.value = "swinir_precision", "int8"
        onnx.save_model(proto, str(tmp))
    return dst


class _quiet:
    """Silence the exporters' progress chatter (stdout, log warnings); errors still raise."""

    def __enter__(self) -> None:
        self._stdout = sys.stdout
        sys.stdout = io.StringIO()
        self._disabled = logging.root.manager.disable
        logging.disable(logging.WARNING)

    def __exit__(self, *exc: object) -> None:
        sys.stdout = self._stdout
        logging.disable(self._disabled)


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:300]


def weights_key(model: SwinIR) -> str:
    """Hash of the config, weights and graph version: the cache key of an export."""
    h = hashlib.sha256()
    h.update(json.dumps(model.config.to_dict(), sort_keys=True).encode())
    h.update(GRAPH_VERSION.encode())
    h.update(torch.__version__.encode())
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:20]


def cache_dir() -> Path:
    """Exported graphs: ``$SWINIR_CACHE/onnx``, else ``~/.cache/swinir/onnx``."""
    env = os.environ.get("SWINIR_CACHE")
    return (Path(env).expanduser() if env else Path.home() / ".cache" / "swinir") / "onnx"


class OnnxRunner:
    """Runs an exported SwinIR graph in ONNX Runtime (CPU); the Upscaler's ``onnxruntime`` back end.

    ``forward`` maps a CPU float32 batch (B, C, h, w) in [0, 1] of any size to (B, C, s*h, s*w).
    """

    def __init__(self, path: str | os.PathLike[str], threads: int | None = None) -> None:
        ort = _require("onnxruntime")
        path = Path(path)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = threads or torch.get_num_threads()
        opts.inter_op_num_threads = 1
        # No busy-waiting between operators: on a shared machine the spinning threads take the
        # cores from the threads doing work (measured 20-40% slower under load, and slower
        # neighbours).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise OnnxError(f"{path}: not a loadable ONNX model ({_first_line(exc)})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in meta:
            raise OnnxError(f"{path}: not a SwinIR export (no {METADATA_KEY} metadata; use export-onnx)")
        self.config = SwinIRConfig.from_dict(json.loads(meta[METADATA_KEY]))
        self.quantized = meta.get("swinir_precision") == "int8"
        self.path = path
        self.scale = self.config.upscale
        self.in_chans = self.config.in_chans
        self.window_size = self.config.window_size

    @classmethod
    def from_model(
        cls, model: SwinIR, precision: str = "fp32", threads: int | None = None, cache: Path | None = None
    ) -> OnnxRunner:
        """Export ``model`` (once: cached by weights) and open it, in fp32 or int8."""
        if precision not in ("fp32", "int8"):
            raise OnnxError(f"onnxruntime back end supports fp32 and int8, not {precision}")
        folder = cache or cache_dir()
        fp32 = folder / f"swinir-{weights_key(model)}.onnx"
        if not fp32.is_file():
            print(f"swinir: exporting the model to ONNX (one time, cached in {folder}) ...", file=sys.stderr)
            export_onnx(model, fp32, check=True)
        path = fp32
        if precision == "int8":
            path = fp32.with_name(f"{fp32.stem}-int8v{QUANT_VERSION}.onnx")
            if not path.is_file():
                quantize_onnx(fp32, path)
        return cls(path, threads)

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], precision: str = "fp32", threads: int | None = None
    ) -> OnnxRunner:
        """Open an exported file; ``int8`` quantizes it (once, into the cache) unless it already is."""
        path = Path(path)
        if precision == "int8" and not cls(path, threads).quantized:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:20]
            int8 = cache_dir() / f"{path.stem}-{digest}-int8v{QUANT_VERSION}.onnx"
            if not int8.is_file():
                quantize_onnx(path, int8)
            path = int8
        elif precision not in ("fp32", "int8"):
            raise OnnxError(f"onnxruntime back end supports fp32 and int8, not {precision}")
        return cls(path, threads)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, h, w) float32 CPU in [0, 1] -> (B, C, s*h, s*w) float32 CPU."""
        h, w = x.shape[-2:]
        padded = pad_to_window(x.detach().to("cpu", torch.float32), self.window_size)
        inp = np.ascontiguousarray(padded.numpy())
        out = self.session.run(None, {self.session.get_inputs()[0].name: inp})[0]
        return torch.from_numpy(out[..., : h * self.scale, : w * self.scale].copy())
