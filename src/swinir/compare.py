"""Side-by-side comparison sheets: LR, bicubic, models, other tools' outputs and HR in one PNG.

Layout (all sizes in pixels of the sheet)::

    +-----------+ +-----------+ +-----------+
    |  panel 1  | |  panel 2  | |  panel 3  |   each panel at output size (LR size x scale),
    +-----------+ +-----------+ +-----------+   the crop region outlined in red
    | label     | | label     | | label     |   name, and Y-PSNR (dB) when HR is known
    +-----------+ +-----------+ +-----------+
    |  crop x N | |  crop x N | |  crop x N |   the same region of every panel, enlarged with
    +-----------+ +-----------+ +-----------+   nearest-neighbour by an integer zoom

Cells wrap onto further rows when the sheet would exceed ``max_width``. The crop is given in
output (SR/HR) pixel coordinates; by default it is the window where the methods disagree most
(largest summed per-pixel spread of their luma). :func:`render` returns the sheet and its layout
(every box), so callers and tests can check what was drawn where.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .evaluate import EvalError, Upscaler, match_by_stem, read_image
from .imresize import imresize
from .metrics import gray_as_rgb, modcrop, psnr, rgb_to_y

MARGIN = 8
GAP = 8
BACKGROUND = (255, 255, 255)
TEXT = (0, 0, 0)
OUTLINE = (255, 0, 0)

if TYPE_CHECKING:
    from PIL import Image as PILImage


@dataclass
class Panel:
    """One picture of the sheet: ``image`` is (H, W, 3) uint8 at output size."""

    name: str
    image: np.ndarray
    psnr: float | None = None
    is_method: bool = True  # takes part in choosing the default crop

    @property
    def label(self) -> str:
        if self.psnr is None:
            return self.name
        value = "inf" if math.isinf(self.psnr) else f"{self.psnr:.2f}"
        return f"{self.name}  {value} dB"


def nearest_enlarge(img: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour enlargement by an integer factor (each pixel becomes a block)."""
    return np.repeat(np.repeat(img, scale, axis=0), scale, axis=1)


def fit_reference(img: np.ndarray, out_hw: tuple[int, int], scale: int, path: str, what: str) -> np.ndarray:
    """``img`` at exactly ``out_hw``: as is, or cropped to a multiple of ``scale`` when that fits."""
    if img.shape[:2] == out_hw:
        return img
    cropped = modcrop(img, scale)
    if cropped.shape[:2] == out_hw:
        return cropped
    raise EvalError(
        f"{path}: {what} is {img.shape[1]}x{img.shape[0]}, expected {out_hw[1]}x{out_hw[0]} "
        f"(the LR size times {scale})"
    )


def find_other_output(name: str, path: str | os.PathLike[str], lr_stem: str, out_hw: tuple[int, int]) -> Path:
    """The file behind ``--other NAME=PATH_OR_DIR``.

    A folder is searched for images named after the LR file (``{stem}.png``, ``{stem}_{tool}.png``,
    ...) that have the output size; with several, ``{stem}.png`` wins, then ``{stem}_{name}.png``,
    then a single one whose suffix contains ``name``.
    """
    from PIL import Image

    path = Path(path)
    if not path.is_dir():
        if not path.exists():
            raise EvalError(f"{path}: no such file or folder (for --other {name})")
        return path
    files = [p for p in sorted(path.iterdir()) if p.is_file()]
    candidates = [p for p in files if _extends(p.stem, lr_stem)]
    sized = []
    for p in candidates:
        try:
            with Image.open(p) as im:
                if (im.height, im.width) == out_hw:
                    sized.append(p)
        except OSError:
            continue
    if len(sized) > 1:
        exact = [p for p in sized if p.stem == lr_stem]
        suffixes = [(p, p.stem[len(lr_stem) :].lstrip("_-. @").lower()) for p in sized]
        for chosen in (
            exact,
            [p for p, rest in suffixes if rest == name.lower()],
            [p for p, rest in suffixes if name.lower() in rest],
        ):
            if len(chosen) == 1:
                return chosen[0]
        listing = ", ".join(p.name for p in sized)
        raise EvalError(f"{path}: several {out_hw[1]}x{out_hw[0]} images for {lr_stem} ({listing})")
    if not sized:
        size = f"{out_hw[1]}x{out_hw[0]}"
        raise EvalError(f"{path}: no {size} image named after {lr_stem} (for --other {name})")
    return sized[0]


def _extends(stem: str, ref: str) -> bool:
    matches, _ = match_by_stem([ref], [Path(stem)])
    return ref in matches


def panel_psnr(img: np.ndarray, hr: np.ndarray | None, crop_border: int) -> float | None:
    """Y-PSNR of a panel against HR (gray images as three equal channels), None without HR."""
    if hr is None:
        return None
    return psnr(gray_as_rgb(img), gray_as_rgb(hr), crop_border)


def build_panels(
    lr: np.ndarray,
    scale: int,
    models: list[tuple[str, Upscaler]],
    others: list[tuple[str, np.ndarray]],
    hr: np.ndarray | None = None,
    bicubic: bool = True,
) -> list[Panel]:
    """Panels in sheet order: LR (nearest), bicubic, models, other tools, HR.

    ``others`` and ``hr`` must already be at output size (LR size x ``scale``).
    """
    out_hw = (lr.shape[0] * scale, lr.shape[1] * scale)
    hr3 = None if hr is None else gray_as_rgb(hr)
    panels = [Panel("LR (nearest)", gray_as_rgb(nearest_enlarge(lr, scale)), is_method=False)]
    methods: list[tuple[str, np.ndarray]] = []
    if bicubic:
        methods.append(("bicubic", imresize(lr, float(scale))))
    for name, upscaler in models:
        methods.append((name, upscaler(lr)))
    methods.extend(others)
    for name, img in methods:
        if img.shape[:2] != out_hw:
            got, want = f"{img.shape[1]}x{img.shape[0]}", f"{out_hw[1]}x{out_hw[0]}"
            raise EvalError(f"{name}: output is {got}, expected {want}")
        panels.append(Panel(name, gray_as_rgb(img)))
    for panel in panels:
        panel.psnr = panel_psnr(panel.image, hr3, scale)
    if hr3 is not None:
        panels.append(Panel("HR", hr3, is_method=False))
    return panels


def default_crop_size(out_hw: tuple[int, int]) -> int:
    """A square about a quarter of the shorter side, between 16 and 128 pixels (never above the image)."""
    side = max(16, min(128, round(min(out_hw) / 4)))
    return min(side, *out_hw)


def pick_crop(panels: list[Panel], size: int, hr: np.ndarray | None = None) -> tuple[int, int, int, int]:
    """``(x, y, w, h)`` of the ``size`` square where the methods' luma spreads the most.

    With a single method, the largest error against HR is used, else the most detailed region.
    """
    methods = [rgb_to_y(p.image) for p in panels if p.is_method]
    height, width = panels[0].image.shape[:2]
    w, h = min(size, width), min(size, height)
    if len(methods) >= 2:
        score = np.std(np.stack(methods), axis=0)
    elif methods and hr is not None:
        score = np.abs(methods[0] - rgb_to_y(gray_as_rgb(hr)))
    else:
        base = methods[0] if methods else rgb_to_y(panels[0].image)
        gy, gx = np.gradient(base)
        score = np.hypot(gx, gy)
    integral = np.zeros((height + 1, width + 1), dtype=np.float64)
    integral[1:, 1:] = score.cumsum(0).cumsum(1)
    sums = integral[h:, w:] - integral[:-h, w:] - integral[h:, :-w] + integral[:-h, :-w]
    y, x = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(x), int(y), w, h


def parse_crop(text: str, out_hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """``"x,y,w,h"`` in output pixels, checked to lie inside the output."""
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise EvalError(f"--crop {text!r}: expected four integers x,y,w,h") from None
    if w < 1 or h < 1 or x < 0 or y < 0 or x + w > out_hw[1] or y + h > out_hw[0]:
        raise EvalError(f"--crop {text}: outside the {out_hw[1]}x{out_hw[0]} output")
    return x, y, w, h


def _font(size: int = 14):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ValueError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _fit_text(draw, text: str, font, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text + "..."


def render(
    panels: list[Panel],
    crop: tuple[int, int, int, int],
    max_width: int = 2400,
    max_zoom: int = 8,
) -> tuple[PILImage.Image, dict]:
    """Draw the sheet; returns ``(PIL.Image, layout)``.

    ``layout`` holds ``size`` (w, h), ``crop`` (x, y, w, h in output pixels), ``zoom``, ``columns``
    and per panel ``name``, ``label``, ``psnr`` and the boxes ``image``, ``label_box`` and
    ``crop_box`` as (x0, y0, x1, y1) on the sheet, exclusive ends.
    """
    from PIL import Image, ImageDraw

    out_h, out_w = panels[0].image.shape[:2]
    cx, cy, cw, ch = crop
    zoom = max(1, min(max_zoom, out_w // cw))
    zw, zh = cw * zoom, ch * zoom
    font = _font()
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    top, bottom = probe.textbbox((0, 0), "Ag|dB", font=font)[1::2]
    label_h = (bottom - top) + 8
    cell_w = max(out_w, zw)
    cell_h = out_h + label_h + zh
    columns = max(1, min(len(panels), (max_width - 2 * MARGIN + GAP) // (cell_w + GAP)))
    rows = math.ceil(len(panels) / columns)
    sheet_w = 2 * MARGIN + columns * cell_w + (columns - 1) * GAP
    sheet_h = 2 * MARGIN + rows * cell_h + (rows - 1) * GAP
    sheet = Image.new("RGB", (sheet_w, sheet_h), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    layout: dict = {
        "size": (sheet_w, sheet_h),
        "crop": (cx, cy, cw, ch),
        "zoom": zoom,
        "columns": columns,
        "label_height": label_h,
        "panels": [],
    }
    for i, panel in enumerate(panels):
        x0 = MARGIN + (i % columns) * (cell_w + GAP)
        y0 = MARGIN + (i // columns) * (cell_h + GAP)
        sheet.paste(Image.fromarray(panel.image), (x0, y0))
        draw.rectangle((x0 + cx - 1, y0 + cy - 1, x0 + cx + cw, y0 + cy + ch), outline=OUTLINE, width=1)
        ly = y0 + out_h
        text = _fit_text(draw, panel.label, font, cell_w - 4)
        draw.text((x0 + 2, ly + 4 - top), text, fill=TEXT, font=font)
        zy = ly + label_h
        patch = Image.fromarray(np.ascontiguousarray(panel.image[cy : cy + ch, cx : cx + cw]))
        sheet.paste(patch.resize((zw, zh), Image.Resampling.NEAREST), (x0, zy))
        layout["panels"].append(
            {
                "name": panel.name,
                "label": panel.label,
                "psnr": panel.psnr,
                "image": (x0, y0, x0 + out_w, y0 + out_h),
                "label_box": (x0, ly, x0 + cell_w, ly + label_h),
                "crop_box": (x0, zy, x0 + zw, zy + zh),
            }
        )
    return sheet, layout


def compare(
    lr_path: str | os.PathLike[str],
    output: str | os.PathLike[str],
    scale: int | None = None,
    models: list[tuple[str, Upscaler, int | None]] | None = None,
    others: list[tuple[str, str]] | None = None,
    hr_path: str | os.PathLike[str] | None = None,
    crop: str | tuple[int, int, int, int] | None = None,
    crop_size: int | None = None,
    max_width: int = 2400,
) -> dict:
    """Build and write a comparison sheet PNG for one LR image; returns the layout (see :func:`render`).

    ``models`` are ``(label, upscaler, model_scale)`` as from
    :func:`swinir.evaluate.resolve_upscaler`; ``others`` are ``(name, file_or_folder)``. The scale is
    ``scale``, else the models', else read from the HR or other outputs' size.
    """
    from .atomic import atomic_path

    models = models or []
    others = others or []
    lr = read_image(lr_path)
    lr_hw = lr.shape[:2]
    hr = read_image(hr_path) if hr_path is not None else None
    scale = _infer_scale(scale, models, hr, others, lr_hw, hr_path)
    out_hw = (lr_hw[0] * scale, lr_hw[1] * scale)
    if hr is not None:
        hr = fit_reference(hr, out_hw, scale, str(hr_path), "HR")
    other_images = []
    for name, where in others:
        file = find_other_output(name, where, Path(lr_path).stem, out_hw)
        other_images.append((name, fit_reference(read_image(file), out_hw, scale, str(file), name)))
    panels = build_panels(lr, scale, [(n, u) for n, u, _ in models], other_images, hr)
    if crop is None:
        box = pick_crop(panels, crop_size or default_crop_size(out_hw), hr)
    elif isinstance(crop, str):
        box = parse_crop(crop, out_hw)
    else:
        box = parse_crop(",".join(str(v) for v in crop), out_hw)
    sheet, layout = render(panels, box, max_width=max_width)
    with atomic_path(output) as tmp:
        sheet.save(tmp, format="PNG")
    layout["scale"] = scale
    layout["output"] = str(output)
    return layout


def _infer_scale(
    scale: int | None,
    models: list[tuple[str, Upscaler, int | None]],
    hr: np.ndarray | None,
    others: list[tuple[str, str]],
    lr_hw: tuple[int, ...],
    hr_path: object,
) -> int:
    model_scales = {s for _, _, s in models if s is not None}
    if len(model_scales) > 1:
        raise EvalError(f"models upscale by different factors: {sorted(model_scales)}")
    if scale is not None:
        if model_scales and model_scales != {scale}:
            raise EvalError(f"--scale {scale} but the model upscales x{model_scales.pop()}")
        return scale
    if model_scales:
        return model_scales.pop()
    sized: list[tuple[str, tuple[int, ...]]] = []
    if hr is not None:
        sized.append((str(hr_path), hr.shape[:2]))
    for _, where in others:
        if Path(where).is_file():
            from PIL import Image

            with Image.open(where) as im:
                sized.append((str(where), (im.height, im.width)))
    for name, hw in sized:
        s = hw[1] // lr_hw[1]
        if s >= 1 and hw[0] // lr_hw[0] == s:
            return s
        raise EvalError(f"{name}: size {hw[1]}x{hw[0]} is not an integer multiple of the LR size")
    raise EvalError("cannot tell the scale: give --scale, a model, --hr or an --other file")
