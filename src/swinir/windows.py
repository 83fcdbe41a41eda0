"""Window geometry of a Swin network: partition order, shifted-window masks, padding.

Everything here depends only on sizes (image height and width, window size, shift), never on
weights, so it is computed on demand, cached per size, and never stored in checkpoints.

Layout conventions used in the docstrings:
    H/W height/width in pixels, L = H*W tokens, ws window size, N = ws*ws tokens per window,
    nW windows per image.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

# Additive logit for masked (cross-window) pairs; the official code uses -100, not -inf.
MASK_VALUE = -100.0


def relative_position_index(window_size: int) -> Tensor:
    """Index into the (2ws-1)^2 bias table for every pair of tokens in a window: (N, N) int64."""
    coords = torch.stack(
        torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij")
    ).flatten(1)  # (2, N)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)  # (N, N, 2)
    rel = rel + (window_size - 1)
    return rel[..., 0] * (2 * window_size - 1) + rel[..., 1]


def window_regions(height: int, width: int, window_size: int, shift: int) -> Tensor:
    """Region label of every token of the shifted image, window by window: (nW, N) float.

    Tokens of one window may attend to each other only when their labels are equal.
    """
    img = torch.zeros(height, width)
    cnt = 0
    for hs in (slice(0, -window_size), slice(-window_size, -shift), slice(-shift, None)):
        for wsl in (slice(0, -window_size), slice(-window_size, -shift), slice(-shift, None)):
            img[hs, wsl] = cnt
            cnt += 1
    win = img.view(height // window_size, window_size, width // window_size, window_size)
    return win.permute(0, 2, 1, 3).reshape(-1, window_size * window_size)


def shift_regions(pos: Tensor, size: int, window_size: int, shift: int) -> Tensor:
    """Region (0, 1, 2) of each row or column position of a shifted image, as in
    :func:`window_regions`, from a (possibly symbolic) size: the traceable form for export."""
    return (pos >= size - window_size).long() + (pos >= size - shift).long()


def regions_to_mask(regions: Tensor) -> Tensor:
    """(..., N) region labels -> (..., N, N) additive mask: 0 within a region, MASK_VALUE across."""
    diff = regions[..., None, :] - regions[..., :, None]
    return torch.zeros_like(diff).masked_fill_(diff != 0, MASK_VALUE)


def shifted_window_mask(height: int, width: int, window_size: int, shift: int) -> Tensor:
    """Additive mask for shifted windows: (nW, N, N), 0 within a region, MASK_VALUE across regions.

    ``height`` and ``width`` must be multiples of ``window_size``.
    """
    return regions_to_mask(window_regions(height, width, window_size, shift))


def window_token_order(height: int, width: int, window_size: int, shift: int) -> Tensor:
    """Token permutation that applies the cyclic shift and window partition in one gather.

    Returns ``perm`` (L,) int64 such that ``tokens[:, perm]`` lists the tokens window by window
    (row-major windows, row-major inside a window) of the image rolled by ``-shift`` pixels.
    """
    rows = (torch.arange(height) + shift) % height
    cols = (torch.arange(width) + shift) % width
    idx = rows[:, None] * width + cols[None, :]  # position in the original token grid
    idx = idx.view(height // window_size, window_size, width // window_size, window_size)
    return idx.permute(0, 2, 1, 3).reshape(-1)


@dataclass(frozen=True, eq=False)
class WindowPlan:
    """How one Swin block visits an image of a given size.

    Windows are listed grouped by mask: with a shift, only the windows on the last row and column
    of windows straddle the wrap-around and need a mask, and all windows of one group share it, so
    the (nW, h, N, N) bias of the official code is never built.

    Attributes:
        perm: (L,) int64, raster index of each token in visiting order (shift + partition + grouping).
        inv: (L,) int64, inverse of ``perm``.
        groups: (first window, end window, mask row) per group, in visiting order.
        masks: (M, N, N) additive mask of each group, or None for unshifted blocks (no mask at all).
    """

    perm: Tensor
    inv: Tensor
    groups: tuple[tuple[int, int, int], ...]
    masks: Tensor | None


@functools.lru_cache(maxsize=64)
def window_plan(height: int, width: int, window_size: int, shift: int, device: str = "cpu") -> WindowPlan:
    """The (cached) :class:`WindowPlan` for an image of ``height`` x ``width`` (multiples of the window)."""
    # Normal tensors even when first asked for under inference mode: the cache outlives it.
    # (inference_mode(False) turns autograd back on; nothing here needs it.)
    with torch.inference_mode(False), torch.no_grad():
        return _window_plan(height, width, window_size, shift, device)


def _window_plan(height: int, width: int, window_size: int, shift: int, device: str) -> WindowPlan:
    order = window_token_order(height, width, window_size, shift)
    n = window_size * window_size
    nw = order.numel() // n
    if shift == 0:
        groups: tuple[tuple[int, int, int], ...] = ((0, nw, 0),)
        masks = None
        perm = order
    else:
        patterns, kind = torch.unique(
            window_regions(height, width, window_size, shift), dim=0, return_inverse=True
        )
        windows = torch.argsort(kind, stable=True)
        counts = torch.bincount(kind, minlength=patterns.shape[0]).tolist()
        starts = [0, *itertools.accumulate(counts)]
        groups = tuple((starts[i], starts[i + 1], i) for i in range(len(counts)) if counts[i] > 0)
        masks = regions_to_mask(patterns).to(device)
        perm = order.view(nw, n)[windows].reshape(-1)
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(perm.numel())
    return WindowPlan(perm.to(device), inv.to(device), groups, masks)


def pad_to_window(x: Tensor, window_size: int) -> Tensor:
    """Reflect-pad (B, C, H, W) on the bottom/right to a multiple of ``window_size``."""
    h, w = x.shape[-2:]
    ws = window_size
    pad_h, pad_w = (-h) % ws, (-w) % ws
    if pad_h == 0 and pad_w == 0:
        return x
    if pad_h < h and pad_w < w:
        return F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
    # Smaller than the window: reflect as far as possible, then repeat the edge.
    x = F.pad(x, (0, min(pad_w, w - 1), 0, min(pad_h, h - 1)), mode="reflect")
    return F.pad(x, (0, w + pad_w - x.shape[-1], 0, h + pad_h - x.shape[-2]), mode="replicate")
