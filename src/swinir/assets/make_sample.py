"""Draw ``sample.png``, the demo image of ``make demo``, from nothing but code (no source photo).

The scene (sky, sun, fractal mountains, lake, trees, a house, a fence and a test card of rings and
stripes) is rendered at 4x with Pillow's drawing primitives, then shrunk with the MATLAB-style
bicubic of ``swinir.imresize``, so it looks like a soft low-resolution photo: what super-resolution
is for. Deterministic (fixed seed). The image is released to the public domain (CC0), like this script.

    .venv/bin/python src/swinir/assets/make_sample.py   # rewrites src/swinir/assets/sample.png
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

W, H = 256, 176  # output size
K = 4  # supersampling factor of the drawing


def ridge(rng: np.random.Generator, n: int, base: float, rough: float) -> np.ndarray:
    """Midpoint-displacement profile of ``n`` points around ``base`` (pixels of the big canvas)."""
    pts = np.array([base, base])
    amp = rough
    while len(pts) < n:
        mids = (pts[:-1] + pts[1:]) / 2 + rng.normal(0, amp, len(pts) - 1)
        out = np.empty(len(pts) * 2 - 1)
        out[0::2], out[1::2] = pts, mids
        pts, amp = out, amp * 0.55
    return np.interp(np.linspace(0, len(pts) - 1, n), np.arange(len(pts)), pts)


def draw() -> Image.Image:
    rng = np.random.default_rng(20240611)
    w, h = W * K, H * K
    y = np.linspace(0, 1, h)[:, None, None]
    sky = (1 - y) * np.array([70, 130, 205]) + y * np.array([235, 200, 170])
    img = Image.fromarray(np.broadcast_to(sky, (h, w, 3)).astype(np.uint8))
    d = ImageDraw.Draw(img)
    d.ellipse([w * 0.72, h * 0.08, w * 0.86, h * 0.08 + w * 0.14], fill=(255, 236, 160))
    horizon = int(h * 0.62)
    for base, rough, color in ((0.38, 90, (96, 110, 150)), (0.48, 60, (60, 92, 80))):
        prof = ridge(rng, w, h * base, rough)
        d.polygon([(0, horizon), *[(x, float(prof[x])) for x in range(0, w, 2)], (w, horizon)], fill=color)
    d.rectangle([0, horizon, w, h], fill=(50, 90, 120))  # lake
    for i in range(40):  # ripples
        yy = horizon + 6 + i * (h - horizon) / 40
        x0 = rng.uniform(0, w * 0.9)
        d.line([x0, yy, x0 + rng.uniform(20, 160), yy], fill=(150, 180, 200), width=2)
    for x in np.linspace(w * 0.03, w * 0.4, 9):  # trees on the shore
        s = rng.uniform(40, 70)
        d.rectangle([x - 4, horizon - 10, x + 4, horizon + 4], fill=(80, 50, 30))
        d.polygon(
            [(x - s / 2, horizon - 8), (x + s / 2, horizon - 8), (x, horizon - 8 - 2.2 * s)],
            fill=(30, 80, 40),
        )
    hx, hy = w * 0.48, horizon - 150  # house
    d.rectangle([hx, hy, hx + 200, horizon + 4], fill=(190, 70, 60), outline=(40, 20, 20), width=4)
    d.polygon([(hx - 20, hy), (hx + 220, hy), (hx + 100, hy - 90)], fill=(90, 60, 50), outline=(30, 20, 20))
    for wx in (hx + 25, hx + 125):
        d.rectangle([wx, hy + 30, wx + 50, hy + 80], fill=(250, 240, 190), outline=(40, 30, 30), width=4)
        d.line([wx + 25, hy + 30, wx + 25, hy + 80], fill=(40, 30, 30), width=3)
        d.line([wx, hy + 55, wx + 50, hy + 55], fill=(40, 30, 30), width=3)
    d.rectangle([hx + 85, hy + 90, hx + 115, horizon + 4], fill=(70, 40, 30))
    for i in range(24):  # fence
        fx = w * 0.46 + i * 14
        d.rectangle([fx, horizon + 10, fx + 7, horizon + 60], fill=(235, 230, 215))
    d.line([w * 0.46, horizon + 25, w * 0.46 + 24 * 14, horizon + 25], fill=(235, 230, 215), width=5)
    cx, cy, r = w * 0.9, h * 0.82, 70  # test card: rings and stripes
    d.rectangle([cx - r - 10, cy - r - 10, cx + r + 10, cy + r + 10], fill=(245, 245, 245))
    for k in range(r, 0, -10):
        d.ellipse([cx - k, cy - k, cx + k, cy + k], fill=(20, 20, 20) if k % 20 else (245, 245, 245))
    for i in range(12):
        d.rectangle([w * 0.02 + i * 12, h * 0.9, w * 0.02 + i * 12 + 5, h * 0.98], fill=(250, 250, 250))
    return img


def main() -> None:
    from swinir.imresize import imresize

    big = np.asarray(draw())
    small = imresize(big, output_shape=(H, W))
    out = Path(__file__).with_name("sample.png")
    Image.fromarray(small).save(out, optimize=True)
    print(f"wrote {out} ({W}x{H})")


if __name__ == "__main__":
    main()
