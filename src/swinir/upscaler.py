"""``swinir.Upscaler``: upscale (or restore) images with any SwinIR model, tiled, on any device.

    >>> up = swinir.Upscaler("lightweight-x2")            # zoo name, "default", or a weights file
    >>> big = up.upscale(Image.open("photo.png"))          # PIL in, PIL out (same mode, alpha kept)
    >>> arr = up.upscale(np.zeros((64, 64, 3), np.uint16)) # NumPy in, same dtype out
    >>> up.upscale_file("in.jpg", "out.png")

The model runs behind a small *runner* (``Upscaler.runner``) whose ``forward`` maps a CPU float32
batch (B, C, h, w) in [0, 1] to (B, C, s*h, s*w). The PyTorch runner is the only one today; other
back ends (ONNX Runtime) and precisions (int8) plug in at :func:`make_runner` without touching the
tiling, colour handling or file I/O.

Colour handling: a gray image on an RGB model is replicated to three channels and the result
averaged back to gray; an RGB image on a gray model (denoising, JPEG) runs channel by channel.
Alpha is upscaled through the model as a gray image (sharp edges, one extra pass) unless it is
constant (then it is filled) or ``alpha="resize"`` (Lanczos, cheaper); restoration models (scale 1)
keep alpha unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .checkpoint import load_model
from .imageio import (
    DEFAULT_MAX_PIXELS,
    ImageData,
    from_array,
    from_pil,
    read_image,
    to_array,
    to_pil,
    write_image,
)
from .jpeg_quality import NoiseChoice, choose_noise, jpeg_tables
from .model import SwinIR
from .tiling import DEFAULT_OVERLAP, DEFAULT_TILE, count_tiles, run_tiled, validate
from .zoo import ZooError, find_model, noise_levels, resolve_model, with_noise

PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "int8")
BACKENDS: tuple[str, ...] = ("torch", "onnxruntime")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")
ALPHA_MODES: tuple[str, ...] = ("model", "resize")

ImageLike = TypeVar("ImageLike", Image.Image, np.ndarray)


class Runner(Protocol):
    """What the Upscaler needs from a model back end."""

    scale: int
    in_chans: int
    window_size: int

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, h, w) float32 CPU in [0, 1] -> (B, C, s*h, s*w) float32 CPU (not clipped)."""
        ...


class TorchRunner:
    """Runs a :class:`SwinIR` module on a device in fp32 or bf16."""

    def __init__(self, model: SwinIR, device: torch.device, precision: str) -> None:
        self.device = device
        self.dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        self.model = model.eval().to(device=device, dtype=self.dtype)
        self.scale = model.config.upscale
        self.in_chans = model.config.in_chans
        self.window_size = model.config.window_size

    def forward(self, x: Tensor) -> Tensor:
        with torch.inference_mode():
            y = self.model(x.to(device=self.device, dtype=self.dtype))
        return y.to(device="cpu", dtype=torch.float32)


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
    """Build the back end that runs the model: the single place new back ends plug in."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if (backend == "onnxruntime" or precision == "int8") and device.type != "cpu":
        raise ValueError(f"{backend} {precision} runs on the CPU only (use --device cpu)")
    if backend == "onnxruntime":
        from .onnx_export import OnnxRunner

        if precision == "bf16":
            raise ValueError("the onnxruntime back end runs fp32 or int8, not bf16")
        if weights.suffix.lower() == ".onnx":
            return OnnxRunner.from_file(weights, precision)
        return OnnxRunner.from_model(load_model(weights, img_range=img_range), precision)
    if weights.suffix.lower() == ".onnx":
        raise ValueError(f"{weights}: an ONNX file needs --backend onnxruntime")
    model = load_model(weights, img_range=img_range)
    if precision == "int8":
        from .quantize import quantize_int8

        return TorchRunner(quantize_int8(model, inplace=True), device, "fp32")
    return TorchRunner(model, device, precision)


class Upscaler:
    """Upscale or restore images with one SwinIR model.

    Args:
        model: ``"default"`` (the bundled model), a zoo name (see ``swinir.zoo.MODELS``), an official
            file name, or a path to a ``.pth``/``.safetensors`` file.
        device: ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"`` or ``"mps"``.
        tile: tile edge in input pixels; 0 runs whole images at once. The default keeps CPU memory
            under ~2 GB for any image size.
        tile_overlap: overlap between tiles in input pixels (blended with a raised-cosine ramp).
        precision: ``"fp32"``, ``"bf16"`` or ``"int8"`` (CPU: dynamic int8 linear layers).
        img_range: input scaling override (1 or 255); default from the file or the zoo entry.
        batch: tiles per model call (larger is faster on GPUs, uses more memory).
        alpha: ``"model"`` (alpha through the network as gray) or ``"resize"`` (Lanczos).
        backend: ``"torch"`` or ``"onnxruntime"`` (CPU; ``model`` may also be an exported ``.onnx``;
            weights are exported once into a cache, see ``swinir.onnx_export``).
        noise: JPEG noise level for model families that have them (``art``): 0 (clean input),
            1-3 (light to heavy noise removal), or ``"auto"``: per input, from its JPEG
            quantization tables (0 for other formats); see :meth:`choose_noise`.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] = "default",
        device: str = "auto",
        tile: int = DEFAULT_TILE,
        tile_overlap: int = DEFAULT_OVERLAP,
        precision: str = "fp32",
        img_range: float | None = None,
        batch: int = 1,
        alpha: str = "model",
        backend: str = "torch",
        noise: int | str = 0,
    ) -> None:
        if noise != "auto" and noise not in (0, 1, 2, 3):
            raise ValueError(f"noise must be 0, 1, 2, 3 or 'auto', got {noise!r}")
        self.noise = noise
        self._options = (device, tile, tile_overlap, precision, img_range, batch, alpha, backend)
        self._family: dict[int, Upscaler] = {}
        if noise == "auto" or noise:
            if not noise_levels(os.fspath(model)):
                if noise == "auto":
                    raise ZooError(f"--noise auto: model {os.fspath(model)!r} has no noise levels")
                model = with_noise(os.fspath(model), int(noise))  # raises: no levels
            else:
                model = with_noise(os.fspath(model), 0 if noise == "auto" else int(noise))
        self.model_name = os.fspath(model)
        validate(tile, tile_overlap)
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        if alpha not in ALPHA_MODES:
            raise ValueError(f"alpha must be one of {', '.join(ALPHA_MODES)}, got {alpha!r}")
        self.weights = resolve_model(model)
        entry = find_model(os.fspath(model)) if not Path(os.fspath(model)).is_file() else None
        if img_range is None and entry is not None and entry.task != "bundled":
            img_range = entry.img_range
        cpu_only = precision == "int8" or backend == "onnxruntime"
        self.device = pick_device("cpu" if cpu_only and device == "auto" else device)
        self.runner: Runner = make_runner(self.weights, self.device, precision, img_range, backend)
        self.tile = tile
        self.tile_overlap = tile_overlap
        self.batch = batch
        self.alpha = alpha
        self.precision = precision

    @property
    def scale(self) -> int:
        """The model's upscaling factor (1 for denoising and JPEG models)."""
        return self.runner.scale

    # -- public API --------------------------------------------------------------------------

    def upscale(self, image: ImageLike, outscale: float | None = None) -> ImageLike:
        """Upscale a PIL image or a NumPy array, returning the same kind.

        PIL images keep their mode (P and CMYK come back as RGB/RGBA). Arrays may be uint8,
        uint16 or float (taken as [0, 1]), shaped (H, W) or (H, W, C) with C = 1, 2 (gray+alpha),
        3 or 4 (RGBA); the result has the same dtype and layout.

        Args:
            outscale: final factor relative to the input (any positive number); the model output
                is resized to it with Lanczos. Default: the model's scale.
        """
        if isinstance(image, Image.Image):
            member, _ = self.choose_noise(getattr(image, "quantization", None))
            return to_pil(member.upscale_data(from_pil(image), outscale))
        if isinstance(image, np.ndarray):
            result = self.upscale_data(from_array(image), outscale)
            return to_array(result, image.dtype, squeeze=image.ndim == 2)
        raise TypeError(f"expected a PIL image or a NumPy array, got {type(image).__name__}")

    def choose_noise(self, tables: Mapping[int, Sequence[int]] | None) -> tuple[Upscaler, NoiseChoice]:
        """The family member for an input with these JPEG tables (``image.quantization``; None for
        other formats), and the choice. With a fixed ``noise`` that is this upscaler itself."""
        if self.noise != "auto":
            return self, NoiseChoice(int(self.noise), "as asked")
        choice = choose_noise(tables)
        if choice.level == 0:
            return self, choice
        if choice.level not in self._family:
            device, tile, overlap, precision, img_range, batch, alpha, backend = self._options
            self._family[choice.level] = Upscaler(
                with_noise(self.model_name, choice.level), device, tile, overlap, precision,
                img_range, batch, alpha, backend,
            )  # fmt: skip
        return self._family[choice.level], choice

    def upscale_file(
        self,
        in_path: str | os.PathLike[str],
        out_path: str | os.PathLike[str],
        format: str | None = None,
        outscale: float | None = None,
        quality: int = 95,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        progress: Callable[[int], None] | None = None,
    ) -> Path:
        """Read, upscale and write one image atomically (mode, bit depth, alpha, ICC kept)."""
        data = read_image(in_path, max_pixels=max_pixels)
        member, _ = self.choose_noise(jpeg_tables(in_path))
        result = member.upscale_data(data, outscale, progress)
        return write_image(out_path, result, format=format, quality=quality)

    def count_tiles(self, data: ImageData) -> int:
        """Model calls (tiles) that :meth:`upscale_data` will make for ``data``, for progress bars."""
        per_pass = count_tiles(data.height, data.width, self.tile, self.tile_overlap, self.runner.window_size)
        return per_pass * self._passes(data)

    def upscale_data(
        self,
        data: ImageData,
        outscale: float | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> ImageData:
        """Upscale :class:`ImageData` (pixels and alpha); metadata is carried over."""
        if outscale is not None and outscale <= 0:
            raise ValueError(f"outscale must be positive, got {outscale}")
        pixels = self._run_color(data.pixels, progress)  # (C, sH, sW)
        alpha = None
        if data.alpha is not None:
            alpha = self._run_alpha(data.alpha, progress)
        height, width = data.height, data.width
        if outscale is not None and abs(outscale - self.scale) > 1e-9:
            size = (max(1, round(height * outscale)), max(1, round(width * outscale)))
            pixels = np.stack([_lanczos(ch, size) for ch in pixels])
            alpha = _lanczos(alpha, size) if alpha is not None else None
        np.clip(pixels, 0.0, 1.0, out=pixels)
        if alpha is not None:
            np.clip(alpha, 0.0, 1.0, out=alpha)
        return data.with_pixels(pixels.transpose(1, 2, 0), alpha)

    # -- internals ---------------------------------------------------------------------------

    def _passes(self, data: ImageData) -> int:
        passes = data.channels if self.runner.in_chans == 1 else 1
        alpha = data.alpha
        if alpha is not None and self.alpha == "model" and self.scale > 1 and alpha.min() != alpha.max():
            passes += 1
        return passes

    def _tiled(self, chw: np.ndarray, progress: Callable[[int], None] | None) -> np.ndarray:
        return run_tiled(
            self.runner.forward,
            chw,
            self.scale,
            self.tile,
            self.tile_overlap,
            self.runner.window_size,
            self.batch,
            progress,
        )

    def _run_color(self, pixels: np.ndarray, progress: Callable[[int], None] | None) -> np.ndarray:
        """(H, W, C) -> (C, sH, sW), matching the model's channels."""
        chw = pixels.transpose(2, 0, 1)
        model_c = self.runner.in_chans
        if chw.shape[0] == model_c:
            return self._tiled(chw, progress)
        if model_c == 3:  # gray image, RGB model: replicate, then back to gray
            out = self._tiled(np.repeat(chw, 3, axis=0), progress)
            return out.mean(axis=0, keepdims=True)
        # RGB image, gray model: one channel at a time
        return np.concatenate([self._tiled(chw[c : c + 1], progress) for c in range(chw.shape[0])])

    def _run_alpha(self, alpha: np.ndarray, progress: Callable[[int], None] | None) -> np.ndarray:
        """(H, W) -> (sH, sW)."""
        height, width = alpha.shape
        size = (height * self.scale, width * self.scale)
        lo, hi = float(alpha.min()), float(alpha.max())
        if lo == hi:
            return np.full(size, lo, dtype=np.float32)
        if self.scale == 1:
            return alpha.copy()  # denoising/JPEG models: alpha has no noise or blocking to remove
        if self.alpha == "resize":
            return _lanczos(alpha, size)
        return self._run_color(alpha[:, :, None], progress)[0]


def _lanczos(channel: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize one float channel (H, W) to ``size`` = (h, w) with Lanczos, in float32."""
    im = Image.fromarray(np.ascontiguousarray(channel, dtype=np.float32))
    return np.asarray(im.resize((size[1], size[0]), Image.Resampling.LANCZOS), dtype=np.float32).copy()
