"""The OpenVINO back end (``--backend openvino``, CPU, fp32), converted once per tile shape.

    pip install 'swinir[openvino]'
    swinir upscale photos/ -o big/ --backend openvino

The network is captured in graph mode with the ``plain4d`` attention form
(:meth:`swinir.SwinIR.set_graph_mode`): q, k and v as three projections, every tensor 4-D, the
relative-position bias and the shift mask added one after the other, the mask as a second graph
input (built from the size inside the graph, OpenVINO would fold it into every block's bias: 1.2 GB
for lightweight at 256x256). In that form OpenVINO's CPU
plugin fuses the attention of every block, shifted ones included, into its multi-head-attention
kernels. It is the same network with the same weights, so outputs match PyTorch to ~1e-5.

OpenVINO compiles for static shapes, so a graph is converted (``torch.export`` then
``openvino.convert_model``, tens of seconds) for each input shape (batch, channels, height, width
padded to the window) and saved with ``openvino.save_model`` into ``$SWINIR_CACHE/openvino``
(else ``~/.cache/swinir/openvino``), keyed by the weights and the shape: the conversion is paid once
per model and shape, later runs read the saved graph and only compile it (about a second).
:class:`OpenVinoRunner` converts a shape the first time a tile of that shape arrives, or up front
through :meth:`OpenVinoRunner.prepare` (what the Upscaler does before an image), and records what it
converted or loaded, and how long it took, in :attr:`OpenVinoRunner.events`.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..model import SwinIR
from ..windows import pad_to_window, shifted_window_mask

# Bump when the converted graph changes, so that cached conversions are redone.
GRAPH_VERSION = "2"  # 2: the shift mask is an input
# Compiled models kept in memory per runner (one per shape); a run needs one or a few.
MAX_COMPILED = 8

Shape = tuple[int, int, int, int]  # (B, C, H, W), H and W multiples of the window


class OpenVinoError(ValueError):
    """A model that cannot be converted or run in OpenVINO (or the package missing), one line."""


def require_openvino() -> Any:
    """The ``openvino`` module, or :class:`OpenVinoError` saying how to install it."""
    try:
        import openvino
    except ImportError:
        raise OpenVinoError("openvino is not installed (pip install 'swinir[openvino]')") from None
    return openvino


def available() -> bool:
    """Whether the ``openvino`` package is installed (without importing it, which takes a while)."""
    return importlib.util.find_spec("openvino") is not None


def cache_dir() -> Path:
    """Converted graphs: ``$SWINIR_CACHE/openvino``, else ``~/.cache/swinir/openvino``."""
    env = os.environ.get("SWINIR_CACHE")
    return (Path(env).expanduser() if env else Path.home() / ".cache" / "swinir") / "openvino"


def weights_key(model: SwinIR) -> str:
    """Hash of the config, the weights, the graph version and the converter versions."""
    ov = require_openvino()
    h = hashlib.sha256()
    h.update(json.dumps(model.config.to_dict(), sort_keys=True).encode())
    h.update(f"{GRAPH_VERSION}/{torch.__version__}/{ov.__version__}".encode())
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:20]


def shape_name(shape: Shape) -> str:
    return "x".join(str(v) for v in shape)


@dataclass(frozen=True)
class Conversion:
    """What :class:`OpenVinoRunner` did for one shape: converted it (``converted``) or read it from
    the cache, in ``convert_s`` seconds (conversion and saving, or reading), then ``compile_s``."""

    shape: Shape
    converted: bool
    convert_s: float
    compile_s: float

    def describe(self) -> str:
        what = "converted" if self.converted else "loaded from the cache"
        return (
            f"{shape_name(self.shape)} {what} in {self.convert_s:.1f} s, compiled in {self.compile_s:.1f} s"
        )


class _Padded(nn.Module):
    """Graph entry point: window-multiple inputs only (padding happens outside the graph), and the
    shift mask as a second input (see :meth:`swinir.SwinIR.forward_padded` for why)."""

    def __init__(self, model: SwinIR) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor, shift_mask: Tensor) -> Tensor:
        return self.model.forward_padded(x, shift_mask)


def shift_mask(height: int, width: int, window_size: int) -> Tensor:
    """The (nW, 1, N, N) mask input of a converted graph for ``height`` x ``width`` inputs."""
    shift = window_size // 2
    if shift == 0:  # window 1: no shifted blocks, the input is unused
        return torch.zeros(height * width, 1, 1, 1)
    return shifted_window_mask(height, width, window_size, shift).unsqueeze(1)


def convert(model: SwinIR, shape: Shape) -> Any:
    """The OpenVINO model (``openvino.Model``) of ``model`` for inputs of exactly ``shape``."""
    ov = require_openvino()
    graph = copy.deepcopy(model).eval().to("cpu", torch.float32)
    graph.set_graph_mode(True, attention="plain4d")
    example = (torch.zeros(shape), shift_mask(shape[2], shape[3], model.config.window_size))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            program = torch.export.export(_Padded(graph), example)
            return ov.convert_model(program)
        except Exception as exc:
            raise OpenVinoError(f"conversion to OpenVINO failed: {_first_line(exc)}") from None


def save(ov_model: Any, folder: Path) -> Path:
    """Write ``ov_model`` as ``folder/model.xml`` (+ ``.bin``), fp32 weights, atomically: the files
    go to a temporary folder beside it that is renamed into place."""
    ov = require_openvino()
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        # fp32 weights: save_model halves them to fp16 by default, which breaks the 1e-4 match.
        ov.save_model(ov_model, str(tmp / "model.xml"), compress_to_fp16=False)
        try:
            os.replace(tmp, folder)
        except OSError:  # another process saved the same shape first; theirs is as good
            if not (folder / "model.xml").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder / "model.xml"


class OpenVinoRunner:
    """Runs a SwinIR model in OpenVINO on the CPU; the Upscaler's ``openvino`` back end.

    ``forward`` maps a CPU float32 batch (B, C, h, w) in [0, 1] of any size to (B, C, s*h, s*w):
    the input is reflect-padded to the window as :meth:`swinir.SwinIR.forward` does, run at the
    converted shape (a smaller batch is padded to a converted larger one) and cropped back.

    Args:
        model: the network (kept on the CPU for conversions of new shapes).
        threads: inference threads (default: ``torch.get_num_threads()``).
        cache: where converted graphs are saved (default: :func:`cache_dir`).
        log: called with a line when a shape is converted (default: printed to stderr).
    """

    def __init__(
        self,
        model: SwinIR,
        threads: int | None = None,
        cache: Path | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        ov = require_openvino()
        self.model = model.eval().to("cpu", torch.float32)
        self.config = model.config
        self.scale = self.config.upscale
        self.in_chans = self.config.in_chans
        self.window_size = self.config.window_size
        self.params = sum(p.numel() for p in model.parameters())
        self.threads = threads or torch.get_num_threads()
        self.key = weights_key(self.model)
        self.folder = (cache or cache_dir()) / f"swinir-{self.key}"
        self.log = log if log is not None else _stderr
        self.events: list[Conversion] = []
        self._core = ov.Core()
        self._compiled: dict[Shape, Any] = {}
        self._masks: dict[tuple[int, int], np.ndarray] = {}

    # -- shapes ------------------------------------------------------------------------------

    def input_shape(self, batch: int, height: int, width: int) -> Shape:
        """The shape a (batch, C, height, width) tile runs at: the size padded to the window."""
        ws = self.window_size
        return (batch, self.in_chans, height + (-height) % ws, width + (-width) % ws)

    def cached_shapes(self) -> list[Shape]:
        """Shapes already converted for these weights (in the cache or compiled now)."""
        shapes = set(self._compiled)
        if self.folder.is_dir():
            for sub in self.folder.iterdir():
                parts = sub.name.split("x")
                if len(parts) == 4 and all(p.isdigit() for p in parts) and (sub / "model.xml").is_file():
                    b, c, h, w = (int(p) for p in parts)
                    shapes.add((b, c, h, w))
        return sorted(shapes)

    def prepare(self, shapes: Iterable[Shape]) -> list[Conversion]:
        """Convert (or read from the cache) and compile each shape not compiled yet; what was done."""
        done = []
        for shape in shapes:
            if shape not in self._compiled:
                done.append(self._compile(shape))
        return done

    # -- running -----------------------------------------------------------------------------

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, h, w) float32 CPU in [0, 1] -> (B, C, s*h, s*w) float32 CPU."""
        b, _, h, w = x.shape
        padded = pad_to_window(x.detach().to("cpu", torch.float32), self.window_size)
        shape = self._shape_for(b, padded.shape[-2], padded.shape[-1])
        if shape[0] > b:  # the last, smaller batch of a run: fill with zeros, drop their outputs
            padded = torch.cat([padded, padded.new_zeros((shape[0] - b, *padded.shape[1:]))])
        compiled = self._compiled.get(shape)
        if compiled is None:
            self._compile(shape)
            compiled = self._compiled[shape]
        inputs = [np.ascontiguousarray(padded.numpy())]
        if len(compiled.inputs) > 1:
            size = (shape[2], shape[3])
            if size not in self._masks:
                self._masks = {size: shift_mask(*size, self.window_size).numpy()}  # the latest only
            inputs.append(self._masks[size])
        out = compiled(inputs)[compiled.output(0)]
        return torch.from_numpy(np.array(out[:b, :, : h * self.scale, : w * self.scale]))

    def _shape_for(self, batch: int, height: int, width: int) -> Shape:
        """A compiled shape with this size and the smallest batch >= ``batch``, else the exact one."""
        larger = [s for s in self._compiled if s[1:] == (self.in_chans, height, width) and s[0] >= batch]
        return min(larger) if larger else (batch, self.in_chans, height, width)

    def _compile(self, shape: Shape) -> Conversion:
        folder = self.folder / shape_name(shape)
        xml = folder / "model.xml"
        t0 = time.perf_counter()
        converted = not xml.is_file()
        if converted:
            self.log(
                f"openvino: converting the model for {shape_name(shape)} inputs "
                f"(once per shape, cached in {self.folder.parent}) ..."
            )
            save(convert(self.model, shape), folder)
        try:
            ov_model = self._core.read_model(str(xml))
        except Exception as exc:
            if converted:
                raise OpenVinoError(f"{xml}: not a readable OpenVINO model ({_first_line(exc)})") from None
            # A damaged cache entry (a full disk, a killed copy): convert again rather than fail.
            self.log(f"openvino: {xml} is unreadable ({_first_line(exc)}); converting it again")
            shutil.rmtree(folder, ignore_errors=True)
            return self._compile(shape)
        t1 = time.perf_counter()
        try:
            compiled = self._core.compile_model(ov_model, "CPU", compile_config(self.threads))
        except Exception as exc:
            raise OpenVinoError(
                f"OpenVINO could not compile {shape_name(shape)}: {_first_line(exc)}"
            ) from None
        if len(self._compiled) >= MAX_COMPILED:
            self._compiled.pop(next(iter(self._compiled)))
        self._compiled[shape] = compiled
        event = Conversion(shape, converted, t1 - t0, time.perf_counter() - t1)
        self.events.append(event)
        return event


def compile_config(threads: int) -> dict[str, Any]:
    """The CPU plugin settings every converted graph is compiled with."""
    return {
        "INFERENCE_NUM_THREADS": threads,
        # fp32 arithmetic: on CPUs with bf16 units OpenVINO would otherwise run in bf16.
        "INFERENCE_PRECISION_HINT": "f32",
        "PERFORMANCE_HINT": "LATENCY",
        "NUM_STREAMS": 1,
    }


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:300]
