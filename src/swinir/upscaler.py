"""``swinir.Upscaler``: upscale (or restore) images with any SwinIR model, tiled, on any device.

    >>> up = swinir.Upscaler("lightweight-x2")            # zoo name, "default", or a weights file
    >>> big = up.upscale(Image.open("photo.png"))          # PIL in, PIL out (same mode, alpha kept)
    >>> arr = up.upscale(np.zeros((64, 64, 3), np.uint16)) # NumPy in, same dtype out
    >>> up.upscale_file("in.jpg", "out.png")

The model runs behind a *runner* (``Upscaler.runner``) from :mod:`swinir.backends` (PyTorch
fp32/bf16, int8, ONNX Runtime) whose ``forward`` maps a CPU float32 batch (B, C, h, w) in [0, 1] to
(B, C, s*h, s*w); the tiling, colour handling and file I/O here are the same for all of them.

Colour handling: a gray image on an RGB model is replicated to three channels and the result
averaged back to gray; an RGB image on a gray model (denoising, JPEG) runs channel by channel.
Alpha is upscaled through the model as a gray image (sharp edges, one extra pass) unless it is
constant (then it is filled) or ``alpha="resize"`` (Lanczos, cheaper); restoration models (scale 1)
keep alpha unchanged.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image

from .backends import (
    BACKENDS,
    CPU_BACKENDS,
    DEVICES,
    PRECISIONS,
    Runner,
    known_faster,
    known_slower,
    make_runner,
    pick_device,
)
from .backends.self_ensemble import self_ensemble
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
from .memory import GIB, MemoryEstimate, default_budget
from .tiling import DEFAULT_OVERLAP, TilePlan, fit_overlap, plan_tiles, run_tiled, tile_starts, validate
from .zoo import ZooError, find_model, noise_levels, resolve_model, with_noise

ALPHA_MODES: tuple[str, ...] = ("model", "resize")
# Smallest tile area adaptive tiling uses, whatever the budget.
MIN_TILE_PIXELS = 128 * 128

# Re-exported: callers choose among these (the web UI, the CLI).
__all__ = ["ALPHA_MODES", "BACKENDS", "DEVICES", "PRECISIONS", "Runner", "Upscaler", "pick_device"]

ImageLike = TypeVar("ImageLike", Image.Image, np.ndarray)


class Upscaler:
    """Upscale or restore images with one SwinIR model.

    Args:
        model: ``"default"`` (the bundled model), a zoo name (see ``swinir.zoo.MODELS``), an official
            file name, or a path to a ``.pth``/``.safetensors`` file.
        device: ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"`` or ``"mps"``.
        tile: ``"auto"`` (default): the whole image when the estimated memory of that fits
            ``max_memory``, otherwise the fewest equal tiles that fit (see ``swinir.memory``);
            a number: the fewest equal tiles of at most that edge in input pixels (rounded down
            to the model's window); 0: always the whole image.
        tile_overlap: overlap between tiles in input pixels (blended with a raised-cosine ramp).
        precision: ``"fp32"``, ``"bf16"`` or ``"int8"`` (CPU: dynamic int8 linear layers).
        img_range: input scaling override (1 or 255); default from the file or the zoo entry.
        batch: tiles per model call (larger is faster on GPUs, uses more memory).
        alpha: ``"model"`` (alpha through the network as gray) or ``"resize"`` (Lanczos).
        backend: ``"torch"``, ``"onnxruntime"`` (CPU; ``model`` may also be an exported ``.onnx``;
            weights are exported once into a cache, see ``swinir.backends.onnxruntime``) or
            ``"openvino"`` (CPU, fp32; converted once per tile shape into a cache, see
            ``swinir.backends.openvino``; ``tile="auto"`` then prefers tile shapes converted before).
        max_memory: memory budget of ``tile="auto"`` in bytes (default: 4 GiB, or half the RAM
            where that is less).
        noise: JPEG noise level for model families that have them (``art``): 0 (clean input),
            1-3 (light to heavy noise removal), or ``"auto"``: per input, from its JPEG
            quantization tables (0 for other formats); see :meth:`choose_noise`.
        tta: self-ensemble: each tile runs in its eight flips and rotations and the outputs,
            turned back, are averaged (8x the time, the same peak memory; see
            ``swinir.backends.self_ensemble``).

    An overlap too large for an explicit tile is reduced to a quarter of the tile; ``notes``
    says so (and names options known to be slower for this model, see ``swinir.backends``).
    """

    def __init__(
        self,
        model: str | os.PathLike[str] = "default",
        device: str = "auto",
        tile: int | str = "auto",
        tile_overlap: int = DEFAULT_OVERLAP,
        precision: str = "fp32",
        img_range: float | None = None,
        batch: int = 1,
        alpha: str = "model",
        backend: str = "torch",
        max_memory: int | None = None,
        noise: int | str = 0,
        tta: bool = False,
    ) -> None:
        if noise != "auto" and noise not in (0, 1, 2, 3):
            raise ValueError(f"noise must be 0, 1, 2, 3 or 'auto', got {noise!r}")
        self.noise = noise
        self._options = (
            device,
            tile,
            tile_overlap,
            precision,
            img_range,
            batch,
            alpha,
            backend,
            max_memory,
            tta,
        )
        self._family: dict[int, Upscaler] = {}
        if noise == "auto" or noise:
            if not noise_levels(os.fspath(model)):
                if noise == "auto":
                    raise ZooError(f"--noise auto: model {os.fspath(model)!r} has no noise levels")
                model = with_noise(os.fspath(model), int(noise))  # raises: no levels
            else:
                model = with_noise(os.fspath(model), 0 if noise == "auto" else int(noise))
        self.model_name = os.fspath(model)
        if tile != "auto" and (isinstance(tile, bool) or not isinstance(tile, int)):
            raise ValueError(f"tile must be 'auto' or a number of pixels, got {tile!r}")
        validate(0 if tile == "auto" else int(tile), 0)
        if tile_overlap < 0:
            raise ValueError(f"tile overlap must be >= 0, got {tile_overlap}")
        if max_memory is not None and max_memory <= 0:
            raise ValueError(f"max_memory must be positive, got {max_memory}")
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        if alpha not in ALPHA_MODES:
            raise ValueError(f"alpha must be one of {', '.join(ALPHA_MODES)}, got {alpha!r}")
        self.weights = resolve_model(model)
        entry = find_model(os.fspath(model)) if not Path(os.fspath(model)).is_file() else None
        if img_range is None and entry is not None and entry.task != "bundled":
            img_range = entry.img_range
        cpu_only = precision == "int8" or backend in CPU_BACKENDS
        self.device = pick_device("cpu" if cpu_only and device == "auto" else device)
        self.runner: Runner = make_runner(self.weights, self.device, precision, img_range, backend)
        self.tta = tta
        if tta:
            self.runner = self_ensemble(self.runner)
        self.notes: list[str] = []
        window = self.runner.window_size
        if tile != "auto":
            overlap = fit_overlap(int(tile), tile_overlap, window)
            if overlap != tile_overlap:
                self.notes.append(
                    f"tile {tile} leaves no room for a {tile_overlap}-pixel overlap; "
                    f"using a {overlap}-pixel overlap"
                )
            tile_overlap = overlap
        self.tile: int | str = tile
        self.tile_overlap = tile_overlap
        self.batch = batch
        self.alpha = alpha
        self.precision = precision
        self.backend = backend
        self.max_memory = max_memory if max_memory is not None else default_budget()
        self.memory = MemoryEstimate.for_model(
            self.runner.config, _file_size(self.weights), 3, backend, precision
        )
        slower = known_slower(self.runner.config, self.device, precision, backend)
        if slower:
            self.notes.append(slower)
        faster = known_faster(self.runner.config, self.device, precision, backend)
        if faster:
            self.notes.append(faster)

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
            device, tile, overlap, precision, img_range, batch, alpha, backend, budget, tta = self._options
            self._family[choice.level] = Upscaler(
                with_noise(self.model_name, choice.level), device, tile, overlap, precision,
                img_range, batch, alpha, backend, budget, tta=tta,
            )  # fmt: skip
        return self._family[choice.level], choice

    def choose_noise_for_file(self, path: str | os.PathLike[str]) -> tuple[Upscaler, NoiseChoice]:
        """:meth:`choose_noise` for a file; its JPEG header is read only with ``noise="auto"``."""
        return self.choose_noise(jpeg_tables(path) if self.noise == "auto" else None)

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
        member, _ = self.choose_noise_for_file(in_path)
        result = member.upscale_data(data, outscale, progress)
        return write_image(out_path, result, format=format, quality=quality)

    def plan(self, data: ImageData) -> TilePlan:
        """How :meth:`upscale_data` will cut ``data`` (the same for every pass over it)."""
        return self.plan_size(data.height, data.width, data.channels + (data.alpha is not None))

    def plan_size(self, height: int, width: int, channels: int = 3) -> TilePlan:
        """:meth:`plan` for an image of ``height`` x ``width`` with ``channels`` (alpha included)."""
        window = self.runner.window_size
        if self.tile != "auto":
            return plan_tiles(height, width, int(self.tile), self.tile_overlap, window)
        memory = self.memory if channels == 3 else replace_channels(self.memory, channels)
        if memory.peak(height, width, height * width, whole=True) <= self.max_memory:
            plan = plan_tiles(height, width, 0, self.tile_overlap, window)
        else:
            area = memory.max_tile_pixels(height, width, self.max_memory, self.batch)
            # When the image's own buffers leave (almost) no room, 128-pixel tiles keep the network's
            # share small without running thousands of tiny, inefficient tiles.
            area = max(area, MIN_TILE_PIXELS)
            plan = plan_tiles(height, width, 0, self.tile_overlap, window, max_tile_pixels=area)
        return self._reuse_shape(plan, memory)

    def tile_shapes(self, plan: TilePlan) -> list[tuple[int, int, int, int]]:
        """The (batch, channels, height, width) model inputs ``plan`` runs (one per tile batch size)."""
        window = self.runner.window_size
        h, w = plan.tile_h + (-plan.tile_h) % window, plan.tile_w + (-plan.tile_w) % window
        return [(min(self.batch, plan.count), self.runner.in_chans, h, w)]

    def prepare(self, plans: list[TilePlan]) -> list[str]:
        """Convert what ``plans`` need ahead of time, for back ends that convert per shape
        (``openvino``); one line per shape converted or read from the cache."""
        prepare = getattr(self.runner, "prepare", None)
        if prepare is None:
            return []
        shapes = sorted({s for plan in plans for s in self.tile_shapes(plan)})
        return [event.describe() for event in prepare(shapes)]

    def _reuse_shape(self, plan: TilePlan, memory: MemoryEstimate) -> TilePlan:
        """A back end that converts per shape (``openvino``) is asked which shapes it has; when
        ``plan`` needs a new one and tiles of a converted shape cover the image within the memory
        budget at most twice the work, those tiles are used instead (a conversion costs far more
        than a tile)."""
        cached = getattr(self.runner, "cached_shapes", None)
        if cached is None:
            return plan
        known = cached()
        if not known or self.tile_shapes(plan)[0] in known:
            return plan
        window = self.runner.window_size
        best: tuple[int, TilePlan] | None = None
        for b, c, th, tw in known:
            if c != self.runner.in_chans or th > plan.height or tw > plan.width:
                continue
            if 2 * self.tile_overlap >= min(th, tw):
                continue
            if memory.peak(plan.height, plan.width, th * tw, whole=False, batch=self.batch) > self.max_memory:
                continue
            ys = tuple(tile_starts(plan.height, th, self.tile_overlap, window))
            xs = tuple(tile_starts(plan.width, tw, self.tile_overlap, window))
            if b != min(self.batch, len(ys) * len(xs)):
                continue
            work = len(ys) * len(xs) * th * tw
            if work <= 2 * plan.count * plan.tile_h * plan.tile_w and (best is None or work < best[0]):
                best = (work, TilePlan(plan.height, plan.width, th, tw, ys, xs))
        return plan if best is None else best[1]

    def describe_tiling(self) -> str:
        """One line for a run's header: the tile rule and what it means for this model."""
        if self.tile == 0:
            return "whole images (--tile 0)"
        if self.tile != "auto":
            return f"the fewest equal tiles of at most {self.tile} px a side, overlap {self.tile_overlap}"
        whole = self.memory.max_whole_pixels(self.max_memory) / 1e6
        return (
            f"whole images up to about {whole:.1f} MP, else the fewest tiles within "
            f"{self.max_memory / GIB:.1f} GiB"
        )

    def count_tiles(self, data: ImageData) -> int:
        """Model calls (tiles) that :meth:`upscale_data` will make for ``data``, for progress bars."""
        return self.plan(data).count * self._passes(data)

    def upscale_data(
        self,
        data: ImageData,
        outscale: float | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> ImageData:
        """Upscale :class:`ImageData` (pixels and alpha); metadata is carried over."""
        if outscale is not None and outscale <= 0:
            raise ValueError(f"outscale must be positive, got {outscale}")
        plan = self.plan(data)
        self.prepare([plan])  # per-shape back ends convert before the first tile, not inside it
        pixels = self._run_color(data.pixels, plan, progress)  # (C, sH, sW)
        alpha = None
        if data.alpha is not None:
            alpha = self._run_alpha(data.alpha, plan, progress)
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

    def _tiled(self, chw: np.ndarray, plan: TilePlan, progress: Callable[[int], None] | None) -> np.ndarray:
        return run_tiled(
            self.runner.forward,
            chw,
            self.scale,
            0,
            self.tile_overlap,
            self.runner.window_size,
            self.batch,
            progress,
            plan=plan,
        )

    def _run_color(
        self, pixels: np.ndarray, plan: TilePlan, progress: Callable[[int], None] | None
    ) -> np.ndarray:
        """(H, W, C) -> (C, sH, sW), matching the model's channels."""
        chw = pixels.transpose(2, 0, 1)
        model_c = self.runner.in_chans
        if chw.shape[0] == model_c:
            return self._tiled(chw, plan, progress)
        if model_c == 3:  # gray image, RGB model: replicate, then back to gray
            out = self._tiled(np.repeat(chw, 3, axis=0), plan, progress)
            return out.mean(axis=0, keepdims=True)
        # RGB image, gray model: one channel at a time
        return np.concatenate([self._tiled(chw[c : c + 1], plan, progress) for c in range(chw.shape[0])])

    def _run_alpha(
        self, alpha: np.ndarray, plan: TilePlan, progress: Callable[[int], None] | None
    ) -> np.ndarray:
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
        return self._run_color(alpha[:, :, None], plan, progress)[0]


def replace_channels(memory: MemoryEstimate, channels: int) -> MemoryEstimate:
    """``memory`` for an image of ``channels`` channels instead of 3 (image buffers scale with it)."""
    k = channels / 3
    return dataclasses.replace(
        memory,
        input_per_pixel=memory.input_per_pixel * k,
        output_per_pixel=memory.output_per_pixel * k,
        accumulator_per_pixel=memory.accumulator_per_pixel * k,
    )


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _lanczos(channel: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize one float channel (H, W) to ``size`` = (h, w) with Lanczos, in float32."""
    im = Image.fromarray(np.ascontiguousarray(channel, dtype=np.float32))
    return np.asarray(im.resize((size[1], size[0]), Image.Resampling.LANCZOS), dtype=np.float32).copy()
