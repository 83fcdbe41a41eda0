"""Ways to make a low-resolution training input from a high-resolution image.

All functions take and return ``uint8`` arrays shaped (H, W) or (H, W, C). The default is the
MATLAB-compatible bicubic downscale that benchmark LR images are made with, so a model trained on it
is scored fairly by ``swinir eval``; ``bilinear`` matches the seed project (TensorFlow
``tf.image.resize``, half-pixel centres, no antialiasing). Blur, noise and JPEG are optional and
random per patch.

Art is downscaled by whatever tool its publisher used, so the art models draw the filter at random
per patch from :data:`FILTERS` (``filters`` / ``filter_weights``), and the noise-level models add
JPEG at one of :data:`JPEG_LEVELS` (the ranges are documented there and in the model cards).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

try:
    from .imresize import imresize as _matlab_imresize
except ImportError:  # pragma: no cover - only before swinir.imresize existed
    _matlab_imresize = None


def bicubic_downscale(hr: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB ``imresize(hr, 1/scale, 'bicubic')``: (H, W[, C]) uint8 -> (H/s, W/s[, C]) uint8.

    ``hr`` must have sides divisible by ``scale`` (use :func:`modcrop`).
    """
    h, w = hr.shape[:2]
    if h % scale or w % scale:
        raise ValueError(f"image {w}x{h} is not a multiple of the scale {scale}")
    if _matlab_imresize is not None:
        return _matlab_imresize(hr, output_shape=(h // scale, w // scale))
    warnings.warn("swinir.imresize is missing: using PIL bicubic, which differs from MATLAB", stacklevel=2)
    mode = "L" if hr.ndim == 2 else "RGB"
    img = Image.fromarray(hr, mode).resize((w // scale, h // scale), Image.Resampling.BICUBIC)
    return np.asarray(img)


def bilinear_downscale(hr: np.ndarray, scale: int) -> np.ndarray:
    """Bilinear without antialiasing (TensorFlow's default resize, as the seed project used)."""
    h, w = hr.shape[:2]
    t = torch.from_numpy(np.ascontiguousarray(hr)).float()
    t = t[None, None] if hr.ndim == 2 else t.permute(2, 0, 1)[None]
    out = F.interpolate(t, size=(h // scale, w // scale), mode="bilinear", align_corners=False)
    out = out.round_().clamp_(0, 255).to(torch.uint8)[0]
    return out[0].numpy() if hr.ndim == 2 else out.permute(1, 2, 0).contiguous().numpy()


# Pillow's antialiased reducers: each filter is stretched over the whole reduction, as image
# editors and web services do when they shrink a picture.
_PIL_FILTERS = {
    "box": Image.Resampling.BOX,
    "triangle": Image.Resampling.BILINEAR,
    "lanczos": Image.Resampling.LANCZOS,
}
FILTERS = ("bicubic", "bilinear", "box", "triangle", "lanczos")


def pil_downscale(hr: np.ndarray, scale: int, method: str) -> np.ndarray:
    """Antialiased Pillow reduction by ``method`` (``box``, ``triangle`` or ``lanczos``)."""
    h, w = hr.shape[:2]
    img = Image.fromarray(np.ascontiguousarray(hr))
    return np.asarray(img.resize((w // scale, h // scale), _PIL_FILTERS[method])).copy()


def downscale(hr: np.ndarray, scale: int, method: str) -> np.ndarray:
    """Downscale by ``method``: ``bicubic`` (MATLAB), ``bilinear`` (seed, no antialiasing),
    ``box``/``triangle``/``lanczos`` (Pillow, antialiased), or ``none`` (restoration)."""
    if method == "bicubic":
        return bicubic_downscale(hr, scale)
    if method == "bilinear":
        return bilinear_downscale(hr, scale)
    if method in _PIL_FILTERS:
        return pil_downscale(hr, scale, method)
    if method == "none":
        if scale != 1:
            raise ValueError("degradation 'none' only makes sense for scale 1")
        return hr.copy()
    raise ValueError(f"unknown degradation {method!r}")


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop bottom/right so both sides are multiples of ``scale``."""
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur with reflected borders; uint8 in, uint8 out."""
    radius = max(1, int(np.ceil(3 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    k /= k.sum()
    f = img.astype(np.float64)
    for axis in (0, 1):
        pad = [(0, 0)] * f.ndim
        pad[axis] = (radius, radius)
        # Reflect needs the axis longer than the radius; edge-replicate otherwise.
        mode = "reflect" if f.shape[axis] > radius else "edge"
        padded = np.pad(f, pad, mode=mode)
        n = f.shape[axis]
        f = sum(k[i] * np.take(padded, np.arange(i, i + n), axis=axis) for i in range(k.size))
    return np.clip(np.round(f), 0, 255).astype(np.uint8)


def add_gaussian_noise(img: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Add N(0, sigma^2) noise (sigma on the 0-255 scale), rounded and clipped."""
    noisy = img.astype(np.float64) + rng.normal(0.0, sigma, size=img.shape)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def jpeg_compress(img: np.ndarray, quality: int, subsampling: int = 2) -> np.ndarray:
    """Round-trip through a JPEG at ``quality`` (libjpeg via Pillow). ``subsampling``: 2 is 4:2:0
    chroma (most cameras and web tools, Pillow's default), 1 is 4:2:2, 0 is 4:4:4."""
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=int(quality), subsampling=int(subsampling))
    buf.seek(0)
    with Image.open(buf) as decoded:
        return np.asarray(decoded.convert("L" if img.ndim == 2 else "RGB")).copy()


@dataclass(frozen=True)
class JpegLevel:
    """One noise level of the art models: JPEG applied to the LR, as an image is re-saved on the web.

    Every pass draws its quality uniformly from ``quality``; the second pass happens with
    probability ``second_pass``; chroma is 4:2:0 with probability ``p420``, else 4:4:4.
    """

    quality: tuple[int, int]
    second_pass: float
    p420: float


JPEG_LEVELS: dict[int, JpegLevel] = {
    1: JpegLevel(quality=(65, 90), second_pass=0.0, p420=0.7),  # light: one careful save
    2: JpegLevel(quality=(40, 70), second_pass=0.3, p420=0.85),  # medium: sometimes saved twice
    3: JpegLevel(quality=(20, 50), second_pass=1.0, p420=1.0),  # heavy: twice, 4:2:0
}


def jpeg_level(img: np.ndarray, level: JpegLevel, rng: np.random.Generator) -> np.ndarray:
    """Apply one noise level. The 8x8 block grid starts at a random phase, since a training patch
    is cut anywhere in an image while a real JPEG's blocks start at the image corner (which the
    network sees aligned with its windows at inference)."""
    py, px = (int(v) for v in rng.integers(0, 8, 2))
    pad = [(py, 0), (px, 0)] + [(0, 0)] * (img.ndim - 2)
    out = np.pad(img, pad, mode="edge")
    passes = 2 if rng.random() < level.second_pass else 1
    for _ in range(passes):
        q = int(rng.integers(level.quality[0], level.quality[1] + 1))
        out = jpeg_compress(out, q, 2 if rng.random() < level.p420 else 0)
    return out[py:, px:].copy()


class Degradation:
    """HR patch -> LR patch: optional blur (on HR), downscale, optional noise then JPEG (on LR).

    ``random`` is True when any step is random; deterministic degradations are applied once per
    image (cached) instead of once per patch.
    """

    def __init__(
        self,
        scale: int,
        method: str = "bicubic",
        blur_prob: float = 0.0,
        blur_sigma: tuple[float, float] = (0.2, 2.0),
        noise_prob: float = 0.0,
        noise_sigma: tuple[float, float] = (1.0, 10.0),
        jpeg_prob: float = 0.0,
        jpeg_quality: tuple[int, int] = (50, 95),
        filters: Sequence[str] = (),
        filter_weights: Sequence[float] = (),
        noise_level: int = 0,
    ) -> None:
        if method not in (*FILTERS, "none"):
            raise ValueError(f"unknown degradation {method!r}")
        for f in filters:
            if f not in FILTERS:
                raise ValueError(f"unknown downscale filter {f!r} (choose from {', '.join(FILTERS)})")
        if filter_weights and len(filter_weights) != len(filters):
            raise ValueError("filter_weights needs one weight per filter")
        if noise_level and noise_level not in JPEG_LEVELS:
            raise ValueError(f"noise level must be 0-{max(JPEG_LEVELS)}, got {noise_level}")
        self.scale = scale
        self.method = method
        self.blur_prob, self.blur_sigma = blur_prob, blur_sigma
        self.noise_prob, self.noise_sigma = noise_prob, noise_sigma
        self.jpeg_prob, self.jpeg_quality = jpeg_prob, jpeg_quality
        self.filters = tuple(filters)
        w = np.asarray(filter_weights if filter_weights else [1.0] * len(self.filters), dtype=np.float64)
        if len(w) and (np.any(w < 0) or w.sum() <= 0):
            raise ValueError("filter_weights must be >= 0 and not all 0")
        self.filter_p = w / w.sum() if len(w) else w
        self.noise_level = noise_level

    @property
    def random(self) -> bool:
        return (
            self.blur_prob > 0
            or self.noise_prob > 0
            or self.jpeg_prob > 0
            or len(self.filters) > 1
            or self.noise_level > 0
        )

    # The margin (in LR pixels) cropped around a patch so that blur and resampling see real
    # neighbours instead of mirrored borders.
    margin: int = 4

    def __call__(self, hr: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """(s*h, s*w[, C]) uint8 -> (h, w[, C]) uint8. ``rng`` is needed when ``random``."""
        if self.random and rng is None:
            raise ValueError("a random degradation needs an rng")
        img = hr
        if rng is not None and self.blur_prob > 0 and rng.random() < self.blur_prob:
            img = gaussian_blur(img, float(rng.uniform(*self.blur_sigma)))
        method = self.method
        if self.filters:
            pick = int(rng.choice(len(self.filters), p=self.filter_p)) if rng is not None else 0
            method = self.filters[pick]
        img = downscale(img, self.scale, method)
        if rng is not None and self.noise_level:
            img = jpeg_level(img, JPEG_LEVELS[self.noise_level], rng)
        if rng is not None and self.noise_prob > 0 and rng.random() < self.noise_prob:
            img = add_gaussian_noise(img, float(rng.uniform(*self.noise_sigma)), rng)
        if rng is not None and self.jpeg_prob > 0 and rng.random() < self.jpeg_prob:
            lo, hi = self.jpeg_quality
            img = jpeg_compress(img, int(rng.integers(lo, hi + 1)))
        return img
