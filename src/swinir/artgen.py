"""Procedural art: an endless, openly licensed source of clean illustration-like training images.

Real openly licensed illustration is scarce (a few dozen pictures), so the art models also learn from
pictures drawn here: anti-aliased line art with varied stroke width and pen pressure, flat and
gradient cel fills with hard shadows, screentones (dots and lines at angles), hatching, speed lines
and lettering. Everything is drawn at ``supersample`` times the output size and reduced with a box
filter, so the HR image has clean, properly anti-aliased edges, as a digital artist's export has.

``generate(seed, size)`` is a pure function of its arguments and of the fonts installed: the same
seed gives the same picture, bit for bit, on a machine with the same fonts. Fonts are looked up in
:data:`FONT_DIRS` (Debian's ``fonts-noto-cjk`` and ``fonts-dejavu-core`` give CJK and Latin
lettering); without any, Pillow's built-in font is used.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONT_DIRS = ("/usr/share/fonts/opentype/noto", "/usr/share/fonts/truetype/dejavu")
# Text drawn as lettering: Latin words, sound effects and CJK characters, as on manga pages.
_WORDS = (
    "BOOM", "WHOOSH", "Hello!", "SWINIR", "wait...", "No way!", "ZAP", "The End", "Chapter 3",
    "ドドド", "ゴゴゴ", "バーン", "こんにちは", "ありがとう", "漫画", "東京", "你好", "시작",
)  # fmt: skip
_TAG = 0x41525447  # "ARTG": keeps these generators apart from other uses of the same seed


@functools.lru_cache(maxsize=1)
def font_files() -> tuple[str, ...]:
    """The font files lettering may use (sorted, so that a seed picks the same font every time)."""
    found: list[str] = []
    for d in FONT_DIRS:
        root = Path(d)
        if root.is_dir():
            found.extend(str(p) for p in root.rglob("*") if p.suffix.lower() in (".ttf", ".otf", ".ttc"))
    return tuple(sorted(found))


@functools.lru_cache(maxsize=512)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if not path:
        return ImageFont.load_default(size)
    return ImageFont.truetype(path, size)


# ----------------------------------------------------------------------------------------------
# Colours
# ----------------------------------------------------------------------------------------------


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    """HSV in [0, 1] -> RGB float in [0, 255]."""
    i = int(h * 6) % 6
    f = h * 6 - math.floor(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return np.array(rgb) * 255.0


class _Palette:
    """Cel colours: a few hues per picture, shadows darker and shifted towards blue/purple."""

    def __init__(self, rng: np.random.Generator, mono: bool) -> None:
        self.rng = rng
        self.mono = mono
        self.hues = rng.random(int(rng.integers(2, 5)))

    def color(self) -> np.ndarray:
        r = self.rng
        if self.mono:
            return np.full(3, float(r.choice([255.0, 235.0, 200.0, 150.0, 90.0, 30.0])))
        h = float(self.hues[int(r.integers(len(self.hues)))] + r.normal(0, 0.03)) % 1.0
        return _hsv(h, float(r.uniform(0.1, 0.8)), float(r.uniform(0.45, 1.0)))

    def shadow(self, base: np.ndarray) -> np.ndarray:
        k = float(self.rng.uniform(0.6, 0.85))
        if self.mono:
            return base * k
        return np.clip(base * k + np.array([-8.0, -4.0, 14.0]), 0, 255)

    def ink(self) -> np.ndarray:
        if self.mono or self.rng.random() < 0.7:
            return np.full(3, float(self.rng.uniform(0, 40)))
        return self.shadow(self.shadow(self.color()))


# ----------------------------------------------------------------------------------------------
# Geometry
# ----------------------------------------------------------------------------------------------


def _blob(rng: np.random.Generator, cx: float, cy: float, radius: float, n: int = 256) -> np.ndarray:
    """A smooth closed outline: a circle whose radius wobbles by a few low harmonics. (n, 2)."""
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    r = np.ones(n)
    for k in range(2, 6):
        r += rng.uniform(0, 0.35 / k) * np.cos(k * t + rng.uniform(0, 2 * math.pi))
    sx, sy = rng.uniform(0.5, 1.5), rng.uniform(0.5, 1.5)
    rot = rng.uniform(0, math.pi)
    x, y = r * radius * sx * np.cos(t), r * radius * sy * np.sin(t)
    c, s = math.cos(rot), math.sin(rot)
    return np.stack([cx + c * x - s * y, cy + s * x + c * y], axis=1)


def _polygon(rng: np.random.Generator, cx: float, cy: float, radius: float) -> np.ndarray:
    """A convex-ish polygon with 3-8 corners (hard-edged shapes: buildings, crystals, panels)."""
    k = int(rng.integers(3, 9))
    t = np.sort(rng.uniform(0, 2 * math.pi, k))
    r = radius * rng.uniform(0.6, 1.2, k)
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], axis=1)


def _bezier(rng: np.random.Generator, size: float, n: int = 96) -> np.ndarray:
    """A cubic Bezier curve across part of the canvas. (n, 2)."""
    p = rng.uniform(-0.1, 1.1, (4, 2)) * size
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 3 * p[0] + 3 * (1 - t) ** 2 * t * p[1] + 3 * (1 - t) * t**2 * p[2] + t**3 * p[3]


def _stroke_polygon(points: np.ndarray, widths: np.ndarray, closed: bool) -> np.ndarray:
    """The outline of a stroke of varying width along ``points`` (n, 2) -> polygon (2n, 2)."""
    nxt = np.roll(points, -1, axis=0) if closed else np.vstack([points[1:], 2 * points[-1] - points[-2]])
    prv = np.roll(points, 1, axis=0) if closed else np.vstack([2 * points[0] - points[1], points[:-1]])
    d = nxt - prv
    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)
    normal = np.stack([-d[:, 1], d[:, 0]], axis=1) * (widths[:, None] / 2)
    return np.vstack([points + normal, (points - normal)[::-1]])


def _pressure(rng: np.random.Generator, n: int, closed: bool) -> np.ndarray:
    """Pen pressure along a stroke in (0, 1]: tapered ends for open strokes, slow variation."""
    t = np.linspace(0, 1, n)
    p = 0.75 + 0.25 * np.sin(2 * math.pi * (rng.uniform(0.5, 3) * t + rng.uniform(0, 1)))
    if not closed:
        taper = np.minimum(1.0, np.minimum(t, 1 - t) / rng.uniform(0.05, 0.4))
        p *= np.sqrt(np.clip(taper, 0.02, 1))
    return np.clip(p, 0.05, 1.0)


# ----------------------------------------------------------------------------------------------
# Fills
# ----------------------------------------------------------------------------------------------


def _mask(shape: tuple[int, int], poly: np.ndarray) -> np.ndarray:
    """Filled polygon as a bool (H, W) mask."""
    img = Image.new("L", (shape[1], shape[0]), 0)
    ImageDraw.Draw(img).polygon([tuple(p) for p in poly.tolist()], fill=255)
    return np.asarray(img) > 127


@functools.lru_cache(maxsize=4)
def _grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Read-only float32 (y, x) pixel coordinates; every picture of a size shares one grid."""
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    y.flags.writeable = x.flags.writeable = False
    return y, x


# A window of the picture, (rows, columns): patterns that only show inside a shape are computed
# over its bounding box alone, with the same value at every pixel as over the whole picture.
Box = tuple[slice, slice]
WHOLE: Box = (slice(None), slice(None))


def _box(mask: np.ndarray) -> Box:
    """The bounding box of a bool (H, W) mask (an empty box for an empty mask)."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if rows.size == 0:
        return (slice(0, 0), slice(0, 0))
    return (slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1))


def _rotated_u(shape: tuple[int, int], angle: float, box: Box = WHOLE) -> np.ndarray:
    """The first coordinate of :func:`_rotated_coords` alone (most callers need only that)."""
    y, x = _grid(shape)
    c, s = math.cos(angle), math.sin(angle)
    return c * x[box] + s * y[box]


def _rotated_coords(shape: tuple[int, int], angle: float, box: Box = WHOLE) -> tuple[np.ndarray, np.ndarray]:
    y, x = _grid(shape)
    y, x = y[box], x[box]
    c, s = math.cos(angle), math.sin(angle)
    return c * x + s * y, -s * x + c * y


def _screentone(rng: np.random.Generator, shape: tuple[int, int], ss: int, box: Box = WHOLE) -> np.ndarray:
    """A dot or line screen at a random angle and density as a bool ink mask of ``box``."""
    angle = float(rng.choice([0.0, 15.0, 30.0, 45.0, 60.0, 75.0])) * math.pi / 180
    u, v = _rotated_coords(shape, angle, box)
    period = float(rng.uniform(3.0, 8.0)) * ss
    level = float(rng.uniform(0.1, 0.6))  # fraction of area inked
    if rng.random() < 0.65:
        du, dv = np.mod(u, period) - period / 2, np.mod(v, period) - period / 2
        radius = period * math.sqrt(level / math.pi)
        return du * du + dv * dv < radius * radius
    return np.abs(np.mod(u, period) - period / 2) < period * level / 2


def _hatching(rng: np.random.Generator, shape: tuple[int, int], ss: int, box: Box = WHOLE) -> np.ndarray:
    """One or two crossed sets of parallel pen lines, as a bool ink mask of ``box``."""
    out: np.ndarray | bool = False
    for _ in range(int(rng.integers(1, 3))):
        u = _rotated_u(shape, float(rng.uniform(0, math.pi)), box)
        period = float(rng.uniform(4, 10)) * ss
        width = float(rng.uniform(0.6, 1.6)) * ss
        out = out | (np.abs(np.mod(u, period) - period / 2) < width / 2)
    assert isinstance(out, np.ndarray)
    return out


def _paint(canvas: np.ndarray, mask: np.ndarray, color: np.ndarray) -> None:
    canvas[mask] = color


def _gradient(
    rng: np.random.Generator,
    shape: tuple[int, int],
    a: np.ndarray,
    b: np.ndarray,
    where: np.ndarray | None = None,
) -> np.ndarray:
    """Linear gradient from colour ``a`` to ``b`` at a random angle: (H, W, 3) float, or only the
    (N, 3) pixels of the bool mask ``where`` (the same values, without computing the others)."""
    u = _rotated_u(shape, float(rng.uniform(0, 2 * math.pi)))
    lo = u.min()
    t = (
        (u - lo) / max(float(u.max() - lo), 1e-6)
        if where is None
        else (u[where] - lo) / max(float(u.max() - lo), 1e-6)
    )
    return a + (b - a) * t[..., None]


# ----------------------------------------------------------------------------------------------
# The picture
# ----------------------------------------------------------------------------------------------


def generate(seed: int, size: int = 256, supersample: int = 3) -> np.ndarray:
    """One procedural illustration: uint8 (size, size, 3) RGB, a pure function of the arguments."""
    rng = np.random.default_rng([_TAG, int(seed)])
    ss = supersample
    side = size * ss
    shape = (side, side)
    mono = rng.random() < 0.3  # manga-like grey pages
    pal = _Palette(rng, mono)

    # Background: flat, gradient or a pale screentone.
    bg = pal.color()
    if rng.random() < 0.4:
        canvas = _gradient(rng, shape, bg, pal.color())
    else:
        canvas = np.empty((side, side, 3), np.float32)
        canvas[:] = bg
    if rng.random() < 0.2:
        _paint(canvas, _screentone(rng, shape, ss), pal.shadow(bg))

    outlines: list[tuple[np.ndarray, bool]] = []
    for _ in range(int(rng.integers(3, 9))):
        cx, cy = rng.uniform(0, side, 2)
        radius = float(rng.uniform(0.08, 0.35)) * side
        poly = _blob(rng, cx, cy, radius) if rng.random() < 0.65 else _polygon(rng, cx, cy, radius)
        m = _mask(shape, poly)
        base = pal.color()
        if rng.random() < 0.25:
            canvas[m] = _gradient(rng, shape, base, pal.color(), where=m)
        else:
            canvas[m] = base
        # Hard cel shadow: the shape minus a shifted copy of itself.
        if rng.random() < 0.7:
            shift = rng.uniform(-0.3, 0.3, 2) * radius
            lit = _mask(shape, poly + shift)
            _paint(canvas, m & ~lit, pal.shadow(base))
        r = rng.random()
        if r < 0.4:
            box = _box(m)
            if r < 0.25:
                pattern, color = _screentone(rng, shape, ss, box), pal.shadow(pal.shadow(base))
            else:
                pattern, color = _hatching(rng, shape, ss, box), pal.ink()
            _paint(canvas[box], m[box] & pattern, color)
        if rng.random() < 0.8:
            outlines.append((poly, True))

    img = Image.fromarray(np.clip(canvas + 0.5, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)

    # Line art: outlines of the shapes and free strokes (hair, folds), with pen pressure.
    for _ in range(int(rng.integers(2, 12))):
        outlines.append((_bezier(rng, side), False))
    for points, closed in outlines:
        base_w = float(rng.uniform(0.6, 5.0)) * ss
        widths = base_w * _pressure(rng, len(points), closed)
        ink = tuple(int(c) for c in pal.ink())
        draw.polygon([tuple(p) for p in _stroke_polygon(points, widths, closed).tolist()], fill=ink)

    # Speed lines: thin wedges towards a focus point or parallel streaks.
    if rng.random() < 0.3:
        fx, fy = rng.uniform(0, side, 2)
        ink = tuple(int(c) for c in pal.ink())
        for _ in range(int(rng.integers(10, 40))):
            a = rng.uniform(0, 2 * math.pi)
            r0, r1 = rng.uniform(0.15, 0.5) * side, side * 1.5
            w = rng.uniform(0.5, 3) * ss
            d = np.array([math.cos(a), math.sin(a)])
            n = np.array([-d[1], d[0]])
            p0, p1 = np.array([fx, fy]) + d * r0, np.array([fx, fy]) + d * r1
            draw.polygon([tuple(p0), tuple(p1 + n * w), tuple(p1 - n * w)], fill=ink)

    # Lettering, sometimes outlined as in speech balloons and sound effects.
    fonts = font_files()
    for _ in range(int(rng.integers(0, 3))):
        text = _WORDS[int(rng.integers(len(_WORDS)))]
        # CJK text only in fonts that have the glyphs (Latin fonts would draw empty boxes).
        usable = [f for f in fonts if text.isascii() or "CJK" in f]
        path = usable[int(rng.integers(len(usable)))] if usable else ""
        if not path and not text.isascii():
            continue
        # Sizes in steps of 8 px: loading a CJK font collection takes a while, so each (font,
        # size) pair is loaded once per process and reused.
        font = _font(path, max(8, 8 * round(float(rng.uniform(0.04, 0.15)) * side / 8)))
        xy = (float(rng.uniform(0, 0.7) * side), float(rng.uniform(0, 0.85) * side))
        ink = tuple(int(c) for c in pal.ink())
        stroke = int(rng.integers(0, 3)) * ss
        paper = tuple(int(c) for c in pal.color())
        try:
            draw.text(xy, text, font=font, fill=ink, stroke_width=stroke, stroke_fill=paper)
        except (OSError, ValueError):  # a font without these glyphs' tables: skip the lettering
            continue

    return np.asarray(img.resize((size, size), Image.Resampling.BOX)).copy()
