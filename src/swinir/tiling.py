"""Tiled inference: run a model over overlapping tiles and blend them without seams.

Memory is bounded by the tile, not the image: the output is accumulated tile by tile into one
preallocated float32 array on the CPU, and only one batch of tiles is ever on the device.

Blending. Each tile is weighted by a separable window that is 1 in its centre and falls along a
raised-cosine ramp across each overlap with a neighbour (towards 0 at the tile's edge, where the model
saw the least context). Sides on the image border are not ramped, so the image edges keep full
weight. The 1-D weights along each axis are divided by their sum over all tiles, which makes the
2-D weights a partition of unity: no weight map and no final division are needed, and any overlap
pattern (including the larger overlap of the last tile) blends exactly.

Alignment. Tiles are a multiple of the model's window size and start on window multiples where
possible, so the attention windows inside a tile coincide with those of whole-image inference.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

# Default tile edge in input pixels and overlap between neighbouring tiles. Chosen with
# benchmarks/tiling_memory.py: with the classical (SwinIR-M) and lightweight models the network's
# share of CPU memory stays a few hundred MiB whatever the image size, and a whole 2048x2048 run peaks
# at 0.7-1.7 GiB (x2-x4), most of it image-sized buffers; 384-pixel tiles were larger and slower per
# pixel. The README's Upscale section has the numbers.
DEFAULT_TILE = 256
DEFAULT_OVERLAP = 32

Forward = Callable[[Tensor], Tensor]


def validate(tile: int, overlap: int) -> None:
    """Raise ValueError for a tile/overlap pair that cannot tile anything."""
    if tile < 0:
        raise ValueError(f"tile must be 0 (whole image) or positive, got {tile}")
    if overlap < 0:
        raise ValueError(f"tile overlap must be >= 0, got {overlap}")
    if tile and 2 * overlap >= tile:
        raise ValueError(f"tile overlap ({overlap}) must be less than half the tile ({tile})")


def aligned_tile(tile: int, window: int) -> int:
    """``tile`` rounded down to a multiple of the window (at least one window)."""
    return max(window, tile - tile % window) if tile else 0


def tile_starts(length: int, tile: int, overlap: int, align: int = 1) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``[0, length)`` with at least ``overlap``.

    Starts are multiples of ``align`` except the last, which ends exactly at ``length``; tiles are
    spread evenly when that needs no more tiles than stepping by the largest aligned stride. A single
    tile when ``length <= tile``.
    """
    if length <= tile:
        return [0]
    gap = tile - overlap  # the largest allowed distance between neighbouring starts
    if gap < align:
        align = 1  # cannot both align and keep the overlap
    stride = gap - gap % align
    most = math.ceil((length - tile) / stride) + 1  # stepping by the aligned stride always works
    for n in range(math.ceil((length - tile) / gap) + 1, most):
        spacing = (length - tile) / (n - 1)
        starts = [align * math.floor(i * spacing / align) for i in range(n - 1)] + [length - tile]
        if all(0 < b - a <= gap for a, b in itertools.pairwise(starts)):
            return starts
    return [i * stride for i in range(most - 1)] + [length - tile]


def _ramp(n: int) -> np.ndarray:
    """Raised-cosine rise over ``n`` samples, strictly inside (0, 1), sampled at pixel centres."""
    t = (np.arange(n, dtype=np.float64) + 0.5) / n
    return 0.5 - 0.5 * np.cos(np.pi * t)


def axis_weights(starts: list[int], tile: int, length: int, scale: int) -> list[np.ndarray]:
    """Per-tile 1-D blending weights in output pixels, normalised to sum to 1 at every position.

    Args:
        starts: tile starts in input pixels (from :func:`tile_starts`).
        tile: tile size in input pixels along this axis.
        length: image size in input pixels along this axis.
        scale: model upscaling factor.

    Returns:
        one float32 array of ``tile * scale`` weights per tile.
    """
    size = tile * scale
    raw: list[np.ndarray] = []
    for i, start in enumerate(starts):
        w = np.ones(size, dtype=np.float64)
        if i > 0:
            ov = (starts[i - 1] + tile - start) * scale
            w[:ov] *= _ramp(ov)
        if i < len(starts) - 1:
            ov = (start + tile - starts[i + 1]) * scale
            w[size - ov :] *= _ramp(ov)[::-1]
        raw.append(w)
    total = np.zeros(length * scale, dtype=np.float64)
    for start, w in zip(starts, raw, strict=True):
        total[start * scale : start * scale + size] += w
    return [
        (w / total[s * scale : s * scale + size]).astype(np.float32) for s, w in zip(starts, raw, strict=True)
    ]


def count_tiles(height: int, width: int, tile: int, overlap: int, window: int = 1) -> int:
    """Number of model calls' worth of tiles for an image (1 for whole-image mode)."""
    tile = aligned_tile(tile, window)
    if not tile or (height <= tile and width <= tile):
        return 1
    th, tw = min(tile, height), min(tile, width)
    return len(tile_starts(height, th, overlap, window)) * len(tile_starts(width, tw, overlap, window))


def run_tiled(
    forward: Forward,
    image: np.ndarray,
    scale: int,
    tile: int,
    overlap: int,
    window: int = 1,
    batch: int = 1,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Upscale one image tile by tile.

    Args:
        forward: the model, (B, C, h, w) float32 CPU tensor -> (B, C', s*h, s*w) float32 CPU tensor.
        image: (C, H, W) float32 in [0, 1].
        scale: the model's upscaling factor ``s``.
        tile: tile edge in input pixels (rounded down to the window); 0 runs the whole image at once,
            as does an image no larger than the tile.
        overlap: minimum overlap between neighbouring tiles, in input pixels.
        window: the model's window size; tiles are aligned to it.
        batch: tiles per model call.
        progress: called with the number of tiles finished after each call.

    Returns:
        (C', s*H, s*W) float32, not clipped.
    """
    validate(tile, overlap)
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    _, height, width = image.shape
    tile = aligned_tile(tile, window)
    if not tile or (height <= tile and width <= tile):
        out = forward(torch.from_numpy(np.ascontiguousarray(image))[None])[0]
        if progress is not None:
            progress(1)
        return out.numpy()

    th, tw = min(tile, height), min(tile, width)
    ys = tile_starts(height, th, overlap, window)
    xs = tile_starts(width, tw, overlap, window)
    wys = axis_weights(ys, th, height, scale)
    wxs = axis_weights(xs, tw, width, scale)
    jobs = [(iy, ix) for iy in range(len(ys)) for ix in range(len(xs))]
    out: np.ndarray | None = None
    for b0 in range(0, len(jobs), batch):
        group = jobs[b0 : b0 + batch]
        tiles = np.stack([image[:, ys[iy] : ys[iy] + th, xs[ix] : xs[ix] + tw] for iy, ix in group])
        result = forward(torch.from_numpy(tiles)).numpy()  # (B, C', s*th, s*tw)
        if out is None:
            out = np.zeros((result.shape[1], height * scale, width * scale), dtype=np.float32)
        for k, (iy, ix) in enumerate(group):
            y0, x0 = ys[iy] * scale, xs[ix] * scale
            weight = wys[iy][:, None] * wxs[ix][None, :]
            out[:, y0 : y0 + th * scale, x0 : x0 + tw * scale] += result[k] * weight
        if progress is not None:
            progress(len(group))
    assert out is not None
    return out
