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

Planning (:func:`plan_tiles`). The image is cut into the fewest tiles that respect a maximum edge
(``--tile``) and a maximum tile area (what fits the memory budget, see ``swinir.memory``), all of
one size, as small as that count allows: a 288x288 image with a 256 limit runs as 2x2 tiles of
160x160, not as four 256x256 tiles that overlap by 224 pixels. Fewer, evenly sized tiles do less
redundant work in the overlaps.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

# Tile edge limit of the web UI and ``swinir eval --tile`` examples, and the overlap between
# neighbouring tiles. With the classical (SwinIR-M) and lightweight models 256-pixel tiles keep the
# network's share of CPU memory a few hundred MiB whatever the image size (benchmarks/tiling_memory.py).
# ``swinir upscale`` and ``Upscaler`` default to adaptive tiles instead (whole image when it fits the
# memory budget; see swinir.memory).
DEFAULT_TILE = 256
DEFAULT_OVERLAP = 32

Forward = Callable[[Tensor], Tensor]


def validate(tile: int, overlap: int, window: int = 1) -> None:
    """Raise ValueError for a tile/overlap pair that cannot tile anything.

    See :func:`fit_overlap` for a caller that prefers to shrink the overlap instead.
    """
    if tile < 0:
        raise ValueError(f"tile must be 0 (whole image) or positive, got {tile}")
    if overlap < 0:
        raise ValueError(f"tile overlap must be >= 0, got {overlap}")
    if tile and tile < window:
        raise ValueError(f"tile {tile} is smaller than the model's window ({window} pixels)")
    if tile and 2 * overlap >= aligned_tile(tile, window):
        raise ValueError(f"tile overlap ({overlap}) must be less than half the tile ({tile})")


def fit_overlap(tile: int, overlap: int, window: int = 1) -> int:
    """``overlap``, or the largest that ``tile`` allows (a quarter of it) when it is too large.

    Raises ValueError for a negative value or a tile smaller than the window.
    """
    validate(tile, 0, window)
    if overlap < 0:
        raise ValueError(f"tile overlap must be >= 0, got {overlap}")
    edge = aligned_tile(tile, window)
    return min(overlap, edge // 4) if edge and 2 * overlap >= edge else overlap


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


@dataclass(frozen=True)
class TilePlan:
    """How :func:`run_tiled` cuts an image: tiles of ``tile_h`` x ``tile_w`` input pixels at
    ``ys`` x ``xs``. One tile covering the image is whole-image inference."""

    height: int
    width: int
    tile_h: int
    tile_w: int
    ys: tuple[int, ...]
    xs: tuple[int, ...]

    @property
    def count(self) -> int:
        return len(self.ys) * len(self.xs)

    @property
    def whole(self) -> bool:
        return self.count == 1

    def describe(self) -> str:
        """``whole image`` or ``4 tiles of 160x160`` (width x height)."""
        if self.whole:
            return "whole image"
        return f"{self.count} tiles of {self.tile_w}x{self.tile_h}"


def _tile_len(length: int, n: int, overlap: int, align: int) -> int:
    """Edge of ``n`` equal tiles covering ``length`` with ``overlap``: rounded up to ``align``."""
    if n <= 1:
        return length
    edge = -(-(length + (n - 1) * overlap) // n)
    edge = -(-edge // align) * align
    return min(edge, length)


def _axis_options(length: int, overlap: int, align: int, limit: int) -> list[tuple[int, int]]:
    """(tile count, tile edge) pairs for one axis, fewest tiles first, edges up to ``limit``."""
    options: list[tuple[int, int]] = []
    seen: set[int] = set()
    n = 1
    smallest = max(align, 2 * overlap + 1)
    while True:
        edge = _tile_len(length, n, overlap, align)
        if edge < smallest and n > 1:
            break
        if edge <= limit and edge not in seen:
            count = len(tile_starts(length, edge, overlap, align))
            options.append((count, edge))
            seen.add(edge)
        if edge <= smallest or (edge == length and n > 1):
            break
        n += 1
    return options


def plan_tiles(
    height: int,
    width: int,
    tile: int,
    overlap: int,
    window: int = 1,
    max_tile_pixels: int | None = None,
) -> TilePlan:
    """The fewest equal tiles covering ``height`` x ``width``.

    Args:
        tile: maximum tile edge in input pixels (rounded down to the window); 0 for no limit.
        overlap: minimum overlap between neighbouring tiles, in input pixels.
        window: the model's window size; tile edges and starts are aligned to it.
        max_tile_pixels: maximum tile area (the memory budget); None for no limit. When even the
            smallest tile exceeds it, the smallest tiles are used.

    Among plans with the fewest tiles, the one with the least total tile area (least work in the
    overlaps), then the squarest tiles, is chosen.
    """
    validate(tile, overlap, window)
    edge_limit = aligned_tile(tile, window) or max(height, width)
    if (
        height <= edge_limit
        and width <= edge_limit
        and (max_tile_pixels is None or height * width <= max_tile_pixels)
    ):
        return TilePlan(height, width, height, width, (0,), (0,))
    rows = _axis_options(height, overlap, window, edge_limit)
    cols = _axis_options(width, overlap, window, edge_limit)
    best: tuple[tuple[int, int, int], int, int] | None = None
    for ny, th in rows:
        for nx, tw in cols:
            if max_tile_pixels is not None and th * tw > max_tile_pixels:
                continue
            key = (ny * nx, ny * nx * th * tw, abs(th - tw))
            if best is None or key < best[0]:
                best = (key, th, tw)
            break  # columns are in order of count: the first that fits is the fewest for this row
    if best is None:  # nothing fits the area: the smallest tiles this overlap allows
        th, tw = rows[-1][1], cols[-1][1]
    else:
        _, th, tw = best
    ys = tuple(tile_starts(height, th, overlap, window))
    xs = tuple(tile_starts(width, tw, overlap, window))
    return TilePlan(height, width, th, tw, ys, xs)


def count_tiles(height: int, width: int, tile: int, overlap: int, window: int = 1) -> int:
    """Number of model calls' worth of tiles for an image (1 for whole-image mode)."""
    return plan_tiles(height, width, tile, overlap, window).count


def run_tiled(
    forward: Forward,
    image: np.ndarray,
    scale: int,
    tile: int,
    overlap: int,
    window: int = 1,
    batch: int = 1,
    progress: Callable[[int], None] | None = None,
    plan: TilePlan | None = None,
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
        plan: the tiles to use (from :func:`plan_tiles` for this image); default: ``plan_tiles``
            with ``tile``, ``overlap`` and ``window``.

    Returns:
        (C', s*H, s*W) float32, not clipped.
    """
    validate(tile, overlap)
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    _, height, width = image.shape
    if plan is None:
        plan = plan_tiles(height, width, tile, overlap, window)
    elif (plan.height, plan.width) != (height, width):
        raise ValueError(f"tile plan is for {plan.width}x{plan.height}, the image is {width}x{height}")
    if plan.whole:
        out = forward(torch.from_numpy(np.ascontiguousarray(image))[None])[0]
        if progress is not None:
            progress(1)
        return out.numpy()

    th, tw = plan.tile_h, plan.tile_w
    ys, xs = list(plan.ys), list(plan.xs)
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
