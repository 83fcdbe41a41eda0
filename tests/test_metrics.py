"""PSNR/SSIM protocol: BT.601 luma, border crop, Gaussian SSIM; against independent formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from swinir.imresize import imresize
from swinir.metrics import gray_as_rgb, modcrop, psnr, rgb_to_y, ssim
from tests.conftest import shared_path


def test_rgb_to_y_matches_matlab_definition() -> None:
    img = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]]], dtype=np.uint8)
    y = rgb_to_y(img)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y[0], [16.0, 235.0, 16 + 65.481, 16 + 128.553, 16 + 24.966], atol=1e-9)
    np.testing.assert_allclose(rgb_to_y(img.astype(np.float32) / 255), y, atol=1e-4)


def test_psnr_known_values() -> None:
    hr = np.full((20, 20, 3), 100, dtype=np.uint8)
    sr = hr + 1
    assert psnr(hr, hr) == math.inf
    assert psnr(sr, hr, y_channel=False) == pytest.approx(20 * math.log10(255))
    # +1 on every channel moves Y by 219/255.
    assert psnr(sr, hr) == pytest.approx(20 * math.log10(255 / (219 / 255)))
    gray = np.full((20, 20), 100, dtype=np.uint8)
    assert psnr(gray + 2, gray) == pytest.approx(20 * math.log10(255 / 2))


def test_crop_border_ignores_edges() -> None:
    hr = np.zeros((16, 16), dtype=np.uint8)
    sr = hr.copy()
    sr[:2, :] = 255
    assert psnr(sr, hr, crop_border=1) < 40
    assert psnr(sr, hr, crop_border=2) == math.inf


def _ssim_direct(a: np.ndarray, b: np.ndarray) -> float:
    """Straightforward 2-D version: full 11x11 windows via sliding views."""
    x = np.arange(11) - 5.0
    g = np.exp(-(x**2) / (2 * 1.5**2))
    win = np.outer(g, g) / np.outer(g, g).sum()
    wa = np.lib.stride_tricks.sliding_window_view(a, (11, 11))
    wb = np.lib.stride_tricks.sliding_window_view(b, (11, 11))
    mu_a = (wa * win).sum(axis=(-2, -1))
    mu_b = (wb * win).sum(axis=(-2, -1))
    va = (wa**2 * win).sum(axis=(-2, -1)) - mu_a**2
    vb = (wb**2 * win).sum(axis=(-2, -1)) - mu_b**2
    cov = (wa * wb * win).sum(axis=(-2, -1)) - mu_a * mu_b
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    return float(
        np.mean((2 * mu_a * mu_b + c1) * (2 * cov + c2) / ((mu_a**2 + mu_b**2 + c1) * (va + vb + c2)))
    )


def test_ssim_matches_direct_formula() -> None:
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, size=(30, 25, 3), dtype=np.uint8)
    noise = rng.integers(-20, 21, size=hr.shape)
    sr = np.clip(hr.astype(int) + noise, 0, 255).astype(np.uint8)
    assert ssim(sr, hr, crop_border=2) == pytest.approx(
        _ssim_direct(rgb_to_y(sr)[2:-2, 2:-2], rgb_to_y(hr)[2:-2, 2:-2]), abs=1e-12
    )
    per_channel = np.mean(
        [_ssim_direct(sr[..., c].astype(float), hr[..., c].astype(float)) for c in range(3)]
    )
    assert ssim(sr, hr, y_channel=False) == pytest.approx(per_channel, abs=1e-12)
    assert ssim(hr, hr) == pytest.approx(1.0)
    assert ssim(sr, hr) == pytest.approx(ssim(hr, sr))


def test_ssim_constant_images() -> None:
    a = np.full((16, 16), 50, dtype=np.uint8)
    b = np.full((16, 16), 60, dtype=np.uint8)
    c1 = (0.01 * 255) ** 2
    assert ssim(a, b) == pytest.approx((2 * 50 * 60 + c1) / (50**2 + 60**2 + c1))


def test_dtypes_share_the_8bit_scale() -> None:
    rng = np.random.default_rng(2)
    hr = rng.integers(0, 256, size=(24, 24, 3), dtype=np.uint8)
    sr = rng.integers(0, 256, size=(24, 24, 3), dtype=np.uint8)
    ref = psnr(sr, hr, 2)
    assert psnr(sr.astype(np.uint16) * 257, hr.astype(np.uint16) * 257, 2) == pytest.approx(ref)
    assert psnr(sr / 255.0, hr / 255.0, 2) == pytest.approx(ref)
    assert ssim(sr / 255.0, hr / 255.0, 2) == pytest.approx(ssim(sr, hr, 2))


def test_gray_as_rgb_scales_luma() -> None:
    gray = np.arange(0, 256, dtype=np.uint8).reshape(16, 16)
    np.testing.assert_allclose(rgb_to_y(gray_as_rgb(gray)), 16 + 219 * gray.astype(np.float64) / 255.0)
    assert gray_as_rgb(np.zeros((2, 2, 3), np.uint8)).shape == (2, 2, 3)


def test_modcrop() -> None:
    img = np.zeros((13, 10, 3))
    assert modcrop(img, 4).shape == (12, 8, 3)
    assert modcrop(img[..., 0], 3).shape == (12, 9)


def test_errors() -> None:
    a = np.zeros((16, 16), dtype=np.uint8)
    with pytest.raises(ValueError, match="shapes"):
        psnr(a, np.zeros((16, 15), dtype=np.uint8))
    with pytest.raises(ValueError, match="dtypes"):
        psnr(a, a.astype(np.float32))
    with pytest.raises(ValueError, match="11x11"):
        ssim(a, a, crop_border=4)
    with pytest.raises(TypeError):
        psnr(a.astype(np.int32), a.astype(np.int32))


def test_set5_x4_bicubic_matches_literature() -> None:
    root = shared_path("datasets", "Set5")
    scores = []
    for hr_file in sorted((root / "HR").glob("*.png")):
        hr = modcrop(np.asarray(Image.open(hr_file)), 4)
        sr = imresize(imresize(hr, 1 / 4), 4)
        scores.append((psnr(sr, hr, 4), ssim(sr, hr, 4)))
    mean_psnr, mean_ssim = np.mean(scores, axis=0)
    assert mean_psnr == pytest.approx(28.42, abs=0.02)
    assert mean_ssim == pytest.approx(0.8104, abs=0.001)
