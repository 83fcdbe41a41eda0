"""Benchmark evaluation with the protocol SR papers report (see :mod:`swinir.metrics`).

Two ways to get SR images, both scored the same way:

- :func:`evaluate_upscaler`: HR folder -> LR (read from an LR folder, or made with the
  MATLAB-compatible :func:`swinir.imresize.imresize`) -> an upscaler (``bicubic``, a checkpoint, a
  zoo model) -> SR;
- :func:`evaluate_folders`: SR images made elsewhere, matched to the HR images by file stem.

Per image: HR is cropped to a multiple of the scale, SR is rounded to ``uint8``, ``scale`` border
pixels are removed, and PSNR/SSIM are computed on Y (BT.601) and on RGB.

Gray images (Set14 ``bridge.png``): ``gray="rgb"`` (default) scores them as three equal channels,
which is how the official SwinIR test script and most PyTorch toolkits load them, so Y is
``16 + 219 * v / 255``; ``gray="y"`` takes the gray value itself as Y, as the MATLAB-era scripts did,
which reproduces the often-quoted bicubic Set14 rows (30.24 dB at x2 rather than 30.32).
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np

from .imresize import imresize
from .metrics import gray_as_rgb, modcrop, psnr, rgb_to_y, ssim

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
GRAY_MODES = ("rgb", "y")

Upscaler = Callable[[np.ndarray], np.ndarray]
"""(h, w) or (h, w, 3) uint8 -> (s*h, s*w[, 3]) uint8."""


class EvalError(ValueError):
    """A problem with one input; the message names the file and the reason."""


# ----------------------------------------------------------------------------- images


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """8-bit image as (H, W) for gray files or (H, W, 3) RGB; alpha is dropped.

    Decoding (every mode, EXIF orientation, CMYK through its profile, 16-bit files) is
    :func:`swinir.imageio.read_image`; 16-bit images are rounded to 8 bits, since the protocol
    scores 8-bit images. Raises :class:`EvalError` naming the file for anything unreadable.
    """
    from .imageio import ImageReadError
    from .imageio import read_image as decode

    try:
        data = decode(path)
    except ImageReadError as exc:
        raise EvalError(str(exc)) from None
    arr = np.clip(np.floor(data.pixels.astype(np.float64) * 255.0 + 0.5), 0, 255).astype(np.uint8)
    if arr.size == 0:
        raise EvalError(f"{path}: empty image")
    return np.ascontiguousarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files directly in ``folder``, sorted by name."""
    from .paths import folder_problem, printable

    folder = Path(folder)
    problem = folder_problem(folder)
    if problem is not None:
        raise EvalError(f"{printable(folder)}: {'not a folder' if problem == 'no such folder' else problem}")
    try:
        entries = list(folder.iterdir())
    except OSError as exc:  # the folder changed since the check above
        raise EvalError(f"{printable(folder)}: cannot list the folder ({exc.strerror})") from None
    files = sorted(p for p in entries if p.suffix.lower() in IMAGE_EXTENSIONS and not p.is_dir())
    if not files:
        raise EvalError(f"{printable(folder)}: no images found")
    return files


def _boundary_ok(rest: str) -> bool:
    """Whether ``rest`` (a stem minus a prefix) starts where a suffix may start."""
    return rest == "" or rest[0] in "_-. @" or re.match(r"[xX]\d", rest) is not None


def match_by_stem(
    stems: Sequence[str], candidates: Iterable[Path], scale: int | None = None
) -> tuple[dict[str, Path], list[str]]:
    """Match files to reference stems, allowing suffixes on the candidates.

    A candidate ``baby.png``, ``babyx2.png``, ``baby_x2.png``, ``baby-SR.png`` or
    ``baby_SwinIR.png`` matches stem ``baby`` (but ``baby2.png`` does not). A candidate goes to the
    longest stem it extends. When several candidates match one stem, the exact stem wins, then a
    single one naming the scale (``x2``); otherwise the stem is ambiguous.

    Returns ``(matches, problems)``; ``problems`` are one-line messages for stems with several
    candidates. Stems with no candidate are simply absent from ``matches``.
    """
    by_length = sorted(set(stems), key=len, reverse=True)
    groups: dict[str, list[Path]] = {}
    for path in candidates:
        stem = path.stem
        for ref in by_length:
            if stem.startswith(ref) and _boundary_ok(stem[len(ref) :]):
                groups.setdefault(ref, []).append(path)
                break
    matches: dict[str, Path] = {}
    problems: list[str] = []
    for ref, paths in groups.items():
        if len(paths) == 1:
            matches[ref] = paths[0]
            continue
        exact = [p for p in paths if p.stem == ref]
        scaled = (
            [p for p in paths if re.search(rf"(?<![0-9])[xX]{scale}(?![0-9])", p.stem[len(ref) :])]
            if scale
            else []
        )
        if len(exact) == 1:
            matches[ref] = exact[0]
        elif len(scaled) == 1:
            matches[ref] = scaled[0]
        else:
            names = ", ".join(sorted(p.name for p in paths))
            problems.append(f"{ref}: several candidate images ({names}); keep one per image")
    return matches, problems


# ----------------------------------------------------------------------------- scoring


@dataclass
class ImageScore:
    """Scores of one image; ``seconds`` is the upscaling time (None for pre-made SR images)."""

    name: str
    height: int
    width: int
    psnr_y: float
    ssim_y: float
    psnr_rgb: float
    ssim_rgb: float
    seconds: float | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class EvalResult:
    """Per-image scores, their means, and per-image failures (one line each)."""

    rows: list[ImageScore]
    failures: list[str]
    scale: int
    crop_border: int
    gray: str
    method: str

    def mean(self) -> dict[str, float | None]:
        keys = ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb", "seconds")
        out: dict[str, float | None] = {}
        for key in keys:
            values = [getattr(r, key) for r in self.rows if getattr(r, key) is not None]
            out[key] = float(np.mean(values)) if values else None
        return out

    def to_dict(self) -> dict[str, object]:
        return {
            "method": self.method,
            "scale": self.scale,
            "crop_border": self.crop_border,
            "gray": self.gray,
            "count": len(self.rows),
            "images": [r.to_dict() for r in self.rows],
            "mean": self.mean(),
            "failures": list(self.failures),
        }


def _gray_value(img: np.ndarray) -> np.ndarray:
    """Full-range gray (H, W) float64 of a gray or RGB image: RGB is mapped through its Y."""
    if img.ndim == 2:
        return img.astype(np.float64)
    if np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 0], img[..., 2]):
        return img[..., 0].astype(np.float64)
    return (rgb_to_y(img) - 16.0) * 255.0 / 219.0


def score_pair(
    sr: np.ndarray, hr: np.ndarray, crop_border: int, gray: str = "rgb"
) -> tuple[float, float, float, float]:
    """``(psnr_y, ssim_y, psnr_rgb, ssim_rgb)`` of uint8 images of equal height and width.

    With ``gray="y"`` and a gray HR, both images are compared as full-range gray values (the
    MATLAB-era convention); otherwise gray images become three equal channels.
    """
    if gray not in GRAY_MODES:
        raise ValueError(f"gray must be one of {GRAY_MODES}, got {gray!r}")
    if sr.shape[:2] != hr.shape[:2]:
        raise ValueError(f"sizes differ: {sr.shape[1]}x{sr.shape[0]} vs {hr.shape[1]}x{hr.shape[0]}")
    if gray == "y" and hr.ndim == 2:
        a = _gray_value(sr)
        b = hr.astype(np.float64) / 255.0  # float inputs to metrics are on [0, 1]
        a = a / 255.0
        p = psnr(a, b, crop_border)
        s = ssim(a, b, crop_border)
        return p, s, p, s
    sr3, hr3 = gray_as_rgb(sr), gray_as_rgb(hr)
    return (
        psnr(sr3, hr3, crop_border, y_channel=True),
        ssim(sr3, hr3, crop_border, y_channel=True),
        psnr(sr3, hr3, crop_border, y_channel=False),
        ssim(sr3, hr3, crop_border, y_channel=False),
    )


# ----------------------------------------------------------------------------- upscalers


def bicubic_upscaler(scale: int) -> Upscaler:
    """Upscale with the MATLAB-compatible bicubic (the papers' 'Bicubic' row)."""

    def run(lr: np.ndarray) -> np.ndarray:
        return imresize(lr, float(scale))

    return run


def model_upscaler(
    model: object, tile: int | None = None, tile_overlap: int = 32, tta: bool = False
) -> Upscaler:
    """Wrap a SwinIR network: uint8 in, uint8 out; fp32 on CPU under ``torch.no_grad``.

    RGB images go to 3-channel models directly; 1-channel models get each channel separately.
    Gray images are given to 3-channel models as three equal channels (the output is then RGB).
    With ``tile``, the image is run in overlapping tiles by :func:`swinir.tiling.run_tiled`; with
    ``tta``, every model call is the self-ensemble of :mod:`swinir.backends.self_ensemble`.
    """
    import torch

    config = model.config  # type: ignore[attr-defined]
    in_chans, scale, window = int(config.in_chans), int(config.upscale), int(config.window_size)
    net = model
    if tta:
        from .backends.self_ensemble import ensemble_forward

        net = partial(ensemble_forward, model)

    def forward(chw: np.ndarray) -> np.ndarray:
        """(C, h, w) float32 in [0, 1] -> (C, s*h, s*w) float32."""
        if tile:
            from .tiling import run_tiled

            return run_tiled(net, chw, scale, tile, tile_overlap, window=window)  # type: ignore[arg-type]
        return net(torch.from_numpy(chw)[None])[0].numpy()  # type: ignore[operator]

    def run(lr: np.ndarray) -> np.ndarray:
        img = lr if lr.ndim == 3 else lr[:, :, None]
        if in_chans == 3 and img.shape[2] == 1:
            img = np.repeat(img, 3, axis=2)
        chw = np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32) / np.float32(255.0)
        with torch.no_grad():
            if in_chans == 1:
                y = np.concatenate([forward(chw[c : c + 1]) for c in range(chw.shape[0])], axis=0)
            else:
                y = forward(chw)
        out = np.clip(np.floor(y.astype(np.float64) * 255.0 + 0.5), 0, 255).astype(np.uint8)
        out = out.transpose(1, 2, 0)
        if lr.ndim == 2 and in_chans == 1:
            return np.ascontiguousarray(out[:, :, 0])
        return np.ascontiguousarray(out)

    return run


def resolve_upscaler(
    spec: str,
    scale: int | None,
    img_range: float | None = None,
    tile: int | None = None,
    tile_overlap: int = 32,
    progress: bool = True,
    tta: bool = False,
) -> tuple[str, Upscaler, int | None]:
    """``(label, upscaler, model_scale)`` for ``bicubic``, a checkpoint path, or a zoo name
    (``tta``: the model's self-ensemble, labelled with a ``+``, as SR papers do).

    Zoo names go through :func:`swinir.zoo.resolve_model` (downloaded once into its cache, with a
    progress bar unless ``progress`` is False). ``model_scale`` is None for bicubic.
    Raises :class:`EvalError` with a one-line reason.
    """
    if spec.lower() == "bicubic":
        if scale is None:
            raise EvalError("bicubic: --scale is needed")
        return "bicubic", bicubic_upscaler(scale), None
    from .checkpoint import CheckpointError, load_model

    path = Path(spec)
    label = path.stem
    if not path.is_file():
        path, zoo_range = _zoo_path(spec, progress)
        label = spec
        if img_range is None:
            img_range = zoo_range
    try:
        model = load_model(path, img_range=img_range)
    except CheckpointError as exc:
        raise EvalError(str(exc)) from None
    except OSError as exc:
        raise EvalError(f"{path}: {exc.strerror or exc}") from None
    model_scale = int(model.config.upscale)
    if scale is not None and model_scale != scale:
        raise EvalError(f"{spec}: model upscales x{model_scale}, but --scale is {scale}")
    if tta:
        label += "+"
    return label, model_upscaler(model, tile=tile, tile_overlap=tile_overlap, tta=tta), model_scale


def _zoo_path(name: str, progress: bool) -> tuple[Path, float | None]:
    """Local file and input scaling of a zoo model name; EvalError when it cannot be had."""
    try:
        from .zoo import ZooError, find_model, resolve_model
    except ImportError:
        raise EvalError(f"{name}: no such file, and not 'bicubic'") from None
    try:
        path = resolve_model(name, progress=progress)
    except ZooError as exc:
        raise EvalError(str(exc)) from None
    entry = find_model(name)
    return Path(path), (None if entry is None else float(entry.img_range))


# ----------------------------------------------------------------------------- evaluation


def _progress(items: Sequence, quiet: bool, desc: str) -> Iterable:
    """A bar on stderr when it is a terminal; nothing in logs and pipes (no ``\\r`` updates)."""
    import sys

    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="img", disable=quiet or not sys.stderr.isatty(), leave=False)


def evaluate_upscaler(
    upscaler: Upscaler,
    hr_dir: str | os.PathLike[str],
    scale: int,
    lr_dir: str | os.PathLike[str] | None = None,
    crop_border: int | None = None,
    gray: str = "rgb",
    method: str = "",
    save_dir: str | os.PathLike[str] | None = None,
    quiet: bool = True,
) -> EvalResult:
    """Upscale every HR image's LR version and score it.

    LR comes from ``lr_dir`` (matched by stem; ``babyx2.png`` style names accepted), else from HR
    with :func:`imresize`. ``save_dir`` receives the SR images as ``{stem}.png``.
    Unreadable or mis-sized inputs are reported in ``failures``; matching problems raise.
    """
    if scale < 1:
        raise EvalError(f"scale must be >= 1, got {scale}")
    crop = scale if crop_border is None else crop_border
    hr_files = list_images(hr_dir)
    lr_files: dict[str, Path] = {}
    if lr_dir is not None:
        stems = [p.stem for p in hr_files]
        lr_files, problems = match_by_stem(stems, list_images(lr_dir), scale)
        missing = [f"{Path(lr_dir) / s}.png: no LR image for HR {s}" for s in stems if s not in lr_files]
        if problems or missing:
            raise EvalError("; ".join(problems + missing))
    result = EvalResult([], [], scale, crop, gray, method)
    for hr_file in _progress(hr_files, quiet, method or "eval"):
        try:
            hr = modcrop(read_image(hr_file), scale)
            if lr_dir is not None:
                lr_file = lr_files[hr_file.stem]
                lr = read_image(lr_file)
                expect = (hr.shape[0] // scale, hr.shape[1] // scale)
                if lr.shape[:2] != expect:
                    raise EvalError(
                        f"{lr_file}: LR is {lr.shape[1]}x{lr.shape[0]}, expected {expect[1]}x{expect[0]} "
                        f"for HR {hr_file.name} at x{scale}"
                    )
            else:
                lr = imresize(hr, 1.0 / scale)
            t0 = time.perf_counter()
            sr = upscaler(lr)
            seconds = time.perf_counter() - t0
            if sr.shape[:2] != hr.shape[:2]:
                raise EvalError(f"{hr_file}: upscaler returned {sr.shape[1]}x{sr.shape[0]}")
            if save_dir is not None:
                _save_png(sr, Path(save_dir) / f"{hr_file.stem}.png")
            scores = score_pair(sr, hr, crop, gray)
        except EvalError as exc:
            result.failures.append(str(exc))
            continue
        result.rows.append(ImageScore(hr_file.stem, hr.shape[0], hr.shape[1], *scores, seconds))
    return result


def evaluate_folders(
    sr_dir: str | os.PathLike[str],
    hr_dir: str | os.PathLike[str],
    scale: int,
    crop_border: int | None = None,
    gray: str = "rgb",
    quiet: bool = True,
) -> EvalResult:
    """Score SR images made elsewhere against HR images, matched by stem.

    An SR image must have the size of the HR image cropped to a multiple of ``scale``; one with the
    uncropped HR size is cropped the same way. A missing or mis-sized SR image is a failure naming
    the file; SR files matching no HR image are ignored.
    """
    if scale < 1:
        raise EvalError(f"scale must be >= 1, got {scale}")
    crop = scale if crop_border is None else crop_border
    hr_files = list_images(hr_dir)
    stems = [p.stem for p in hr_files]
    sr_files, problems = match_by_stem(stems, list_images(sr_dir), scale)
    result = EvalResult([], list(problems), scale, crop, gray, f"folder {sr_dir}")
    for hr_file in _progress(hr_files, quiet, "eval"):
        stem = hr_file.stem
        if stem not in sr_files:
            if not any(p.startswith(f"{stem}:") for p in problems):
                result.failures.append(f"{Path(sr_dir) / stem}.png: no SR image for HR {hr_file.name}")
            continue
        sr_file = sr_files[stem]
        try:
            full = read_image(hr_file)
            hr = modcrop(full, scale)
            sr = read_image(sr_file)
            if sr.shape[:2] == full.shape[:2]:
                sr = modcrop(sr, scale)
            if sr.shape[:2] != hr.shape[:2]:
                raise EvalError(
                    f"{sr_file}: SR is {sr.shape[1]}x{sr.shape[0]}, expected {hr.shape[1]}x{hr.shape[0]} "
                    f"(HR {hr_file.name} cropped to a multiple of {scale})"
                )
            scores = score_pair(sr, hr, crop, gray)
        except EvalError as exc:
            result.failures.append(str(exc))
            continue
        except ValueError as exc:
            result.failures.append(f"{sr_file}: {exc}")
            continue
        result.rows.append(ImageScore(stem, hr.shape[0], hr.shape[1], *scores, None))
    return result


# ----------------------------------------------------------------------------- reports


def _save_png(img: np.ndarray, path: Path) -> None:
    from PIL import Image

    from .atomic import atomic_path

    with atomic_path(path) as tmp:
        Image.fromarray(img).save(tmp, format="PNG")


def _fmt(value: float | None, digits: int) -> str:
    if value is None:
        return "-"
    if math.isinf(value):
        return "inf"
    return f"{value:.{digits}f}"


def format_table(result: EvalResult) -> str:
    """Plain-text table: one row per image and a mean row."""
    head = (
        f"{'image':<24} {'size':>9} {'PSNR-Y':>8} {'SSIM-Y':>7} {'PSNR-RGB':>8} {'SSIM-RGB':>8} {'time s':>7}"
    )
    lines = [head, "-" * len(head)]

    def line(name: str, size: str, d: dict) -> str:
        return (
            f"{name[:24]:<24} {size:>9} {_fmt(d['psnr_y'], 2):>8} {_fmt(d['ssim_y'], 4):>7} "
            f"{_fmt(d['psnr_rgb'], 2):>8} {_fmt(d['ssim_rgb'], 4):>8} {_fmt(d['seconds'], 3):>7}"
        )

    for r in result.rows:
        lines.append(line(r.name, f"{r.width}x{r.height}", r.to_dict()))
    lines.append("-" * len(head))
    lines.append(line(f"mean ({len(result.rows)})", "", result.mean()))
    return "\n".join(lines)


def write_json(result: EvalResult, path: str | os.PathLike[str]) -> None:
    import json

    from .atomic import atomic_path

    def clean(v: object) -> object:
        if isinstance(v, float) and not math.isfinite(v):
            return None if math.isnan(v) else "inf"
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return v

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(clean(result.to_dict()), indent=2) + "\n", encoding="utf-8")


def write_csv(result: EvalResult, path: str | os.PathLike[str]) -> None:
    import csv

    from .atomic import atomic_path

    fields = ["name", "height", "width", "psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb", "seconds"]
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for r in result.rows:
            writer.writerow(r.to_dict())
        mean = result.mean()
        writer.writerow({"name": "mean", **{k: mean[k] for k in mean}})
