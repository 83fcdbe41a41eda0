"""PSNR and SSIM with the protocol super-resolution papers report.

The protocol (SRCNN onwards, as in the SwinIR paper's tables):

- images are 8-bit (the SR output rounded to ``uint8`` before scoring);
- the HR image is cropped to a multiple of the scale (:func:`modcrop`) and ``crop_border = scale``
  pixels are removed from every edge of both images;
- scores are on the luma channel Y of BT.601 as MATLAB ``rgb2ycbcr`` defines it, kept unrounded:
  ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` for R, G, B in [0, 255], so Y is in [16, 235];
- SSIM uses an 11x11 Gaussian window (sigma 1.5), 'valid' filtering, ``C1 = (0.01 * 255)^2``,
  ``C2 = (0.03 * 255)^2``; on RGB it is the mean of the per-channel SSIMs.

Everything is computed in float64 on 8-bit-scale values. Input dtypes:

- ``uint8``: the protocol;
- ``uint16``: divided by 257 (65535 -> 255) without rounding, so scores are on the same scale as
  8-bit ones; round to ``uint8`` first to follow the protocol exactly;
- float: taken as values in [0, 1] and multiplied by 255, without rounding or clipping.

Both images must have the same dtype and shape. A 2-D (gray) image is its own Y channel; to score
a gray image the way the literature does (loaded as three equal channels, so
``Y = 16 + 219 * v / 255``) pass it as (H, W, 3) or use :func:`gray_as_rgb`.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["gray_as_rgb", "modcrop", "psnr", "rgb_to_y", "ssim", "to_255"]

_Y_WEIGHTS = np.array([65.481, 128.553, 24.966], dtype=np.float64) / 255.0
_SSIM_SIZE = 11
_SSIM_SIGMA = 1.5


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right so height and width are multiples of ``scale`` (a view)."""
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale, ...]


def gray_as_rgb(img: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, 1) -> (H, W, 3) with equal channels; other images are returned unchanged."""
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 2:
        return np.repeat(img[:, :, None], 3, axis=2)
    return img


def to_255(img: np.ndarray) -> np.ndarray:
    """float64 copy on the 8-bit scale (see the module docstring for each dtype)."""
    arr = np.asarray(img)
    if arr.dtype == np.uint8:
        return arr.astype(np.float64)
    if arr.dtype == np.uint16:
        return arr.astype(np.float64) / 257.0
    if np.issubdtype(arr.dtype, np.floating):
        return arr.astype(np.float64) * 255.0
    raise TypeError(f"unsupported image dtype {arr.dtype} (use uint8, uint16 or float in [0, 1])")


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """BT.601 luma of an (H, W, 3) RGB image, float64 in [16, 235] (MATLAB ``rgb2ycbcr``, unrounded).

    ``uint8`` input is used as is; other dtypes are first brought to the 8-bit scale (:func:`to_255`).
    An (H, W, 4) image has its alpha channel ignored.
    """
    arr = to_255(img)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {arr.shape}")
    return 16.0 + arr[:, :, :3] @ _Y_WEIGHTS


def _prepare(sr: np.ndarray, hr: np.ndarray, crop_border: int, y_channel: bool) -> tuple[np.ndarray, ...]:
    """Both images as float64 (H, W, C) on the 8-bit scale, Y only if asked, borders removed."""
    sr = np.asarray(sr)
    hr = np.asarray(hr)
    if sr.shape != hr.shape:
        raise ValueError(f"image shapes differ: {sr.shape} vs {hr.shape}")
    if sr.dtype != hr.dtype:
        raise ValueError(f"image dtypes differ: {sr.dtype} vs {hr.dtype}")
    if sr.ndim not in (2, 3):
        raise ValueError(f"expected (H, W) or (H, W, C) images, got shape {sr.shape}")
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    out = []
    for img in (sr, hr):
        if img.ndim == 3 and img.shape[2] == 4:
            img = img[:, :, :3]  # alpha is not part of the picture quality
        if y_channel and img.ndim == 3 and img.shape[2] == 3:
            arr = rgb_to_y(img)[:, :, None]
        else:
            arr = to_255(img)
            if arr.ndim == 2:
                arr = arr[:, :, None]
        if crop_border:
            arr = arr[crop_border:-crop_border, crop_border:-crop_border]
        out.append(arr)
    if out[0].shape[0] < 1 or out[0].shape[1] < 1:
        raise ValueError(f"nothing left after cropping {crop_border} pixels from a {sr.shape[:2]} image")
    return tuple(out)


def psnr(sr: np.ndarray, hr: np.ndarray, crop_border: int = 0, y_channel: bool = True) -> float:
    """Peak signal-to-noise ratio in dB (peak 255), ``inf`` for identical images.

    Args:
        sr, hr: (H, W) or (H, W, C) images of the same shape and dtype (``uint8`` for the protocol).
        crop_border: pixels removed from each edge before scoring (the scale, by convention).
        y_channel: score the BT.601 Y channel of RGB images; ``False`` scores all channels
            (one MSE over every value). Ignored for gray images.
    """
    a, b = _prepare(sr, hr, crop_border, y_channel)
    mse = float(np.mean((a - b) ** 2))
    if mse == 0:
        return math.inf
    return 10.0 * math.log10(255.0**2 / mse)


def _gaussian_1d(size: int = _SSIM_SIZE, sigma: float = _SSIM_SIGMA) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


def _filter_valid(img: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation of (H, W) ``img`` with the 2-D window ``outer(g, g)``."""
    k = g.size
    h, w = img.shape
    rows = np.zeros((h - k + 1, w), dtype=np.float64)
    tmp = np.empty_like(rows)
    for i in range(k):  # in place: avoids a temporary per tap
        np.multiply(img[i : i + h - k + 1], g[i], out=tmp)
        rows += tmp
    out = np.zeros((h - k + 1, w - k + 1), dtype=np.float64)
    tmp = np.empty_like(out)
    for j in range(k):
        np.multiply(rows[:, j : j + w - k + 1], g[j], out=tmp)
        out += tmp
    return out


def _ssim_plane(a: np.ndarray, b: np.ndarray) -> float:
    c1 = (0.01 * 255.0) ** 2
    c2 = (0.03 * 255.0) ** 2
    g = _gaussian_1d()
    mu_a = _filter_valid(a, g)
    mu_b = _filter_valid(b, g)
    var_a = _filter_valid(a * a, g) - mu_a**2
    var_b = _filter_valid(b * b, g) - mu_b**2
    cov = _filter_valid(a * b, g) - mu_a * mu_b
    num = (2.0 * mu_a * mu_b + c1) * (2.0 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return float(np.mean(num / den))


def ssim(sr: np.ndarray, hr: np.ndarray, crop_border: int = 0, y_channel: bool = True) -> float:
    """Structural similarity (Wang et al. 2004) with the protocol's window and constants.

    Same arguments as :func:`psnr`. Multi-channel images give the mean of per-channel SSIMs.
    The cropped images must be at least 11x11.
    """
    a, b = _prepare(sr, hr, crop_border, y_channel)
    if a.shape[0] < _SSIM_SIZE or a.shape[1] < _SSIM_SIZE:
        raise ValueError(f"SSIM needs at least {_SSIM_SIZE}x{_SSIM_SIZE} pixels, got {a.shape[:2]}")
    return float(np.mean([_ssim_plane(a[:, :, c], b[:, :, c]) for c in range(a.shape[2])]))
