"""Tiled inference: tile layout, partition-of-unity blending, no seams, agreement with whole-image runs."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import swinir
from swinir.model import SwinIR
from swinir.tiling import (
    axis_weights,
    count_tiles,
    fit_overlap,
    plan_tiles,
    run_tiled,
    tile_starts,
    validate,
)

from .conftest import shared_path, tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")


def _tiny_model(seed: int = 0) -> SwinIR:
    torch.manual_seed(seed)
    return SwinIR(tiny_config({"depths": [2, 2], "num_heads": [2, 2]})).eval()


def _forward(model: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model(x)

    return run


def _smooth_image(channels: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """A natural-ish test image: low-frequency noise plus an edge, in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(1, channels, height // 8 + 2, width // 8 + 2, generator=g)
    img = F.interpolate(low, size=(height, width), mode="bicubic", align_corners=False)[0]
    img[:, :, width // 3 :] += 0.2
    return img.clamp(0, 1).numpy().astype(np.float32)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.clip(a, 0, 1) - np.clip(b, 0, 1)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


@pytest.mark.parametrize("align", [1, 7, 8])
def test_tile_starts_cover_with_the_requested_overlap(align: int) -> None:
    for length in range(1, 300, 7):
        for tile in (16, 48, 64, 100):
            for overlap in (0, 4, 15):
                starts = tile_starts(length, tile, overlap, align)
                if length <= tile:
                    assert starts == [0]
                    continue
                assert starts[0] == 0 and starts[-1] == length - tile
                assert starts == sorted(set(starts))
                gaps = np.diff(starts)
                assert (gaps <= tile - overlap).all(), (length, tile, overlap, starts)
                if tile - overlap >= align:
                    assert all(s % align == 0 for s in starts[:-1])
                # No more tiles than stepping by the largest aligned stride needs.
                gap = tile - overlap
                stride = gap - gap % align if gap >= align else gap
                assert len(starts) <= -(-(length - tile) // stride) + 1


def test_weights_are_a_partition_of_unity_with_full_weight_at_image_edges() -> None:
    length, tile, scale = 200, 64, 2
    starts = tile_starts(length, tile, 16, 8)
    weights = axis_weights(starts, tile, length, scale)
    total = np.zeros(length * scale)
    for s, w in zip(starts, weights, strict=True):
        assert w.shape == (tile * scale,) and (w > 0).all()
        total[s * scale : (s + tile) * scale] += w
    np.testing.assert_allclose(total, 1.0, atol=1e-6)
    assert weights[0][0] == pytest.approx(1.0) and weights[-1][-1] == pytest.approx(1.0)
    # Inner edges carry almost no weight; the feather is not a flat average.
    assert weights[0][-1] < 0.01 and weights[1][0] < 0.01
    mid = len(weights[1]) // 2
    assert weights[1][mid] == pytest.approx(1.0)


def test_pointwise_model_is_reproduced_exactly() -> None:
    """Any per-pixel model must give the same result tiled or not: checks placement and weights."""

    def forward(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x * 0.5 + x**2, scale_factor=3, mode="nearest")

    img = _smooth_image(3, 45, 70)
    whole = run_tiled(forward, img, 3, 0, 0)
    for tile, overlap, batch in [(16, 4, 1), (24, 8, 3), (32, 0, 2)]:
        tiled = run_tiled(forward, img, 3, tile, overlap, window=8, batch=batch)
        np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_tiles_agree_with_whole_image_and_show_no_seam() -> None:
    model = _tiny_model()
    fwd = _forward(model)
    img = _smooth_image(3, 64, 96)
    whole = run_tiled(fwd, img, 2, 0, 0)
    tile, overlap = 32, 8
    feathered = run_tiled(fwd, img, 2, tile, overlap, window=8)
    assert _psnr(feathered, whole) > 40

    # Flat (equal-weight) blending of the same tiles, for comparison.
    plan = plan_tiles(64, 96, tile, overlap, 8)
    assert plan.tile_h == plan.tile_w
    tile = plan.tile_w
    ys, xs = plan.ys, plan.xs
    acc = np.zeros_like(whole)
    cnt = np.zeros(whole.shape[1:], np.float32)
    for y in ys:
        for x in xs:
            out = fwd(torch.from_numpy(np.ascontiguousarray(img[:, y : y + tile, x : x + tile]))[None])[0]
            acc[:, 2 * y : 2 * (y + tile), 2 * x : 2 * (x + tile)] += out.numpy()
            cnt[2 * y : 2 * (y + tile), 2 * x : 2 * (x + tile)] += 1
    flat = acc / cnt

    def seam_ratio(result: np.ndarray) -> float:
        """Error jump across tile edges (columns where a tile starts or ends) over the typical jump."""
        err = np.abs(result - whole).mean(axis=0)  # (2H, 2W)
        jumps = np.abs(np.diff(err, axis=1)).mean(axis=0)  # jump between column c and c+1
        edges = sorted({2 * x - 1 for x in xs[1:]} | {2 * (x + tile) - 1 for x in xs[:-1]})
        return float(jumps[edges].mean() / np.median(jumps))

    assert seam_ratio(feathered) < 3.0
    assert seam_ratio(flat) > 2 * seam_ratio(feathered)
    assert _psnr(feathered, whole) > _psnr(flat, whole)


def test_batched_tiles_match_single_tiles() -> None:
    fwd = _forward(_tiny_model(1))
    img = _smooth_image(3, 40, 56)
    one = run_tiled(fwd, img, 2, 24, 4, window=8, batch=1)
    many = run_tiled(fwd, img, 2, 24, 4, window=8, batch=4)
    np.testing.assert_allclose(many, one, atol=1e-5)
    calls: list[int] = []
    run_tiled(fwd, img, 2, 24, 4, window=8, batch=4, progress=calls.append)
    assert sum(calls) == count_tiles(40, 56, 24, 4, 8) and max(calls) == 4


def test_small_image_or_zero_tile_runs_whole() -> None:
    seen: list[tuple[int, ...]] = []

    def forward(x: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(x.shape))
        return F.interpolate(x, scale_factor=2)

    img = _smooth_image(1, 30, 20)
    run_tiled(forward, img, 2, 0, 0)
    run_tiled(forward, img, 2, 64, 16, window=8)
    assert seen == [(1, 1, 30, 20), (1, 1, 30, 20)]
    assert count_tiles(30, 20, 64, 16, 8) == 1 and count_tiles(300, 20, 64, 16, 8) > 1


def test_bad_tile_options_are_rejected() -> None:
    with pytest.raises(ValueError, match="half the tile"):
        validate(64, 32)
    with pytest.raises(ValueError, match="tile must be"):
        validate(-1, 0)
    with pytest.raises(ValueError, match=r"tile 7 is smaller than the model's window \(8 pixels\)"):
        validate(7, 0, window=8)
    assert fit_overlap(64, 32, 8) == 16 and fit_overlap(256, 32, 8) == 32
    with pytest.raises(ValueError, match="smaller than the model's window"):
        fit_overlap(7, 2, 8)


def _fewest_by_search(length: int, limit: int, overlap: int, align: int) -> int:
    """The fewest tiles of one size <= ``limit`` (multiple of ``align``, or the whole length) that
    cover ``length`` with ``overlap``: brute force over sizes."""
    sizes = [length] if length <= limit else []
    sizes += [t for t in range(align, min(limit, length) + 1, align) if t > 2 * overlap]
    return min(len(tile_starts(length, t, overlap, align)) for t in sizes)


@pytest.mark.parametrize("length", [17, 64, 200, 288, 512, 827, 1170])
def test_plans_use_the_fewest_equal_tiles(length: int) -> None:
    limit, overlap, window = 256, 32, 8
    plan = plan_tiles(length, length, limit, overlap, window)
    assert len(plan.ys) == _fewest_by_search(length, limit, overlap, window)
    assert plan.tile_h <= limit and (plan.tile_h % window == 0 or plan.tile_h == length)
    starts = list(plan.ys)
    assert starts[0] == 0 and starts[-1] + plan.tile_h == length
    assert all(0 < b - a <= plan.tile_h - overlap for a, b in itertools.pairwise(starts))


def test_plans_for_the_issue_cases_and_the_area_limit() -> None:
    # 288x288 with the old 256 limit: 2x2 tiles of 160, not 4 tiles of 256 (the old plan).
    plan = plan_tiles(288, 288, 256, 32, 8)
    assert plan.count == 4 and (plan.tile_h, plan.tile_w) == (160, 160)
    assert plan.describe() == "4 tiles of 160x160"
    assert plan_tiles(512, 512, 256, 32, 8).count == 9
    assert plan_tiles(256, 256, 256, 32, 8).whole and plan_tiles(4096, 4096, 0, 32, 8).whole
    # An area limit picks the fewest tiles under it, the squarest among equals.
    big = plan_tiles(4096, 4096, 0, 32, 8, max_tile_pixels=4_400_000)
    assert big.count == 4 and big.tile_h * big.tile_w <= 4_400_000 and big.tile_h == big.tile_w
    thin = plan_tiles(4096, 4096, 0, 32, 8, max_tile_pixels=3_600_000)
    assert thin.count == 5 and thin.tile_h * thin.tile_w <= 3_600_000
    with pytest.raises(ValueError, match="tile plan is for"):
        run_tiled(lambda x: x, np.zeros((1, 10, 10), np.float32), 1, 0, 0, plan=plan)


def test_official_lightweight_model_tiled_matches_whole() -> None:
    weights = shared_path("reference", "swinir_parity", "lightweight_x2", "model.pth")
    lr = shared_path("datasets", "Set5", "LR_bicubic", "X2", "babyx2.png")
    model = swinir.load_model(weights)
    with Image.open(lr) as im:
        img = np.asarray(im.convert("RGB"), np.float32)[64:160, 64:160].transpose(2, 0, 1) / 255
    fwd = _forward(model)
    whole = run_tiled(fwd, np.ascontiguousarray(img), 2, 0, 0)
    tiled = run_tiled(fwd, np.ascontiguousarray(img), 2, 48, 16, window=8)
    assert _psnr(tiled, whole) > 45
