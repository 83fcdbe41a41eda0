"""How much memory an upscale needs: the estimate behind the default, adaptive tiling.

``swinir upscale`` and :class:`swinir.Upscaler` run an image whole when the estimate for doing so
fits the memory budget, and otherwise in the fewest tiles whose estimate fits. The estimate is
linear in pixels, with coefficients from the model's widths (measured peaks of the network on CPU,
``benchmarks/adaptive_tiling.py``, are within a few percent of it):

- the network, per pixel of the tile it runs on: ``4 * embed_dim`` floats of feature maps (the
  residual stream, a block's output, the group's skip and the long skip), or the upsampler's
  ``embed_dim + 2.25 * num_feat * scale^2`` floats if that is more (``2 * channels * scale^2`` more
  for the one-step upsampler), plus for ONNX Runtime and OpenVINO, which attend all windows at once,
  ``2 * heads * window^2 + 7 * embed_dim``, and for OpenVINO also its shift-mask input,
  ``window^2``; 4 bytes a float (2 in bf16), and a 30% margin;
- image-sized buffers, per input pixel: the decoded input and its float copies (``9 * channels``
  bytes), and the float output, its 8/16-bit copy and the encoder's buffer
  (``7 * channels * scale^2`` bytes; the float output is there while tiles run);
- a fixed 96 MiB (chunk scratch, allocator slack) plus twice the weights.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .model import SwinIRConfig

GIB = 1 << 30
FIXED_BYTES = 96 << 20
# Measured network peaks of the bundled model grow from 663 to 704 bytes per pixel between 512x512
# and 1024x1024 whole images (benchmarks/adaptive_tiling.py), 15% over the feature-map count; the
# margin keeps the estimate above them.
MARGIN = 1.3


def default_budget() -> int:
    """4 GiB, or half the machine's RAM where that is less (at least 1 GiB)."""
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system
        return 4 * GIB
    return max(GIB, min(4 * GIB, ram // 2))


@dataclass(frozen=True)
class MemoryEstimate:
    """Linear memory model of one model on one back end (bytes)."""

    network_per_pixel: float  # while the network runs on a tile, per tile pixel
    input_per_pixel: float  # decoded input and its float copies, per input pixel
    output_per_pixel: float  # float output + integer copy + encoder, per input pixel
    accumulator_per_pixel: float  # the float output alone (filled tile by tile)
    fixed: int

    @classmethod
    def for_model(
        cls,
        config: SwinIRConfig,
        weights_bytes: int,
        channels: int = 3,
        backend: str = "torch",
        precision: str = "fp32",
    ) -> MemoryEstimate:
        s2 = config.upscale * config.upscale
        dim = config.embed_dim
        c = config.in_chans
        if config.upsampler in ("pixelshuffle", "nearest+conv"):
            floats = max(4 * dim, dim + 2.25 * config.num_feat * s2)
        else:  # one-step pixel shuffle, or restoration (scale 1)
            floats = 4 * dim + 2 * c * s2
        if backend in ("onnxruntime", "openvino"):
            n = config.window_size * config.window_size
            floats += 2 * max(config.num_heads) * n + 7 * dim
        if backend == "openvino":  # the shift mask, an input of the converted graph
            floats += n
        bytes_per_float = 2 if precision == "bf16" and backend == "torch" else 4
        return cls(
            network_per_pixel=MARGIN * floats * bytes_per_float,
            input_per_pixel=9.0 * channels,
            output_per_pixel=7.0 * channels * s2,
            accumulator_per_pixel=4.0 * channels * s2,
            fixed=FIXED_BYTES + 2 * weights_bytes,
        )

    def peak(self, height: int, width: int, tile_pixels: int, whole: bool, batch: int = 1) -> int:
        """Estimated peak of one image of ``height`` x ``width`` run with tiles of ``tile_pixels``."""
        pixels = height * width
        running = self.network_per_pixel * tile_pixels * (1 if whole else batch)
        if not whole:
            running += self.accumulator_per_pixel * pixels
        after = self.output_per_pixel * pixels
        return int(self.fixed + self.input_per_pixel * pixels + max(running, after))

    def max_tile_pixels(self, height: int, width: int, budget: int, batch: int = 1) -> int:
        """The largest tile area whose tiled run of this image fits ``budget`` (0: none does)."""
        pixels = height * width
        room = budget - self.fixed - self.input_per_pixel * pixels - self.accumulator_per_pixel * pixels
        if room <= 0 or self.fixed + (self.input_per_pixel + self.output_per_pixel) * pixels > budget:
            return 0
        return int(room // (self.network_per_pixel * batch))

    def max_whole_pixels(self, budget: int) -> int:
        """The largest image (in pixels) that runs whole within ``budget``."""
        per_pixel = self.input_per_pixel + max(self.network_per_pixel, self.output_per_pixel)
        return max(0, int((budget - self.fixed) // per_pixel))
