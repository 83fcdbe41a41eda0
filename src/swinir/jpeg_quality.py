"""JPEG quality estimation, and the noise level ``--noise auto`` picks from it.

Nearly every JPEG encoder (libjpeg and its descendants: Pillow, browsers, most image editors and
cameras) makes its quantization tables by scaling the example tables of the JPEG standard (ITU-T
T.81, Annex K) with the IJG quality formula. Reading a file's tables back and finding the quality
whose scaled tables come closest gives the quality it was saved at; for an encoder with tables of
its own, the result is the IJG quality of similar strength, which is what the noise level needs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

# T.81 Annex K, tables K.1 (luminance) and K.2 (chrominance), in row order (as Pillow reports them).
_LUMA = np.array(
    [
        16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
        14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
        18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
        49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
    ],
    dtype=np.float64,
)  # fmt: skip
_CHROMA = np.array(
    [
        17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
        24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
        *([99] * 32),
    ],
    dtype=np.float64,
)  # fmt: skip


def ijg_table(base: np.ndarray, quality: int) -> np.ndarray:
    """The table libjpeg writes for ``quality`` (1-100), baseline-clamped to 1..255."""
    scale = 5000.0 / quality if quality < 50 else 200.0 - 2.0 * quality
    return np.clip(np.floor((base * scale + 50.0) / 100.0), 1, 255)


_CANDIDATES = {q: (ijg_table(_LUMA, q), ijg_table(_CHROMA, q)) for q in range(1, 101)}


def estimate_quality(tables: Mapping[int, Sequence[int]]) -> int | None:
    """The IJG quality (1-100) whose tables best match ``tables`` (Pillow's ``image.quantization``).

    Returns None when there is no 64-entry luminance table to compare.
    """
    luma = np.asarray(tables.get(0, ()), dtype=np.float64)
    if luma.shape != (64,):
        return None
    chroma = np.asarray(tables.get(1, ()), dtype=np.float64)
    best_q, best_err = 0, np.inf
    for q, (tl, tc) in _CANDIDATES.items():
        # Relative error, so the many small high-quality steps count as much as the large ones.
        err = float(np.abs(np.log(luma / tl)).sum())
        if chroma.shape == (64,):
            err += float(np.abs(np.log(chroma / tc)).sum())
        if err < best_err:
            best_q, best_err = q, err
    return best_q


@dataclass(frozen=True)
class NoiseChoice:
    """The level ``--noise auto`` chose, and why (said to the user)."""

    level: int
    reason: str


# Quality -> level: each level is trained on the qualities around its range (see
# swinir.degradations.JPEG_LEVELS), and a level slightly too strong costs less than one too weak.
_LEVEL_FLOORS = ((96, 0), (76, 1), (51, 2), (0, 3))


def level_for_quality(quality: int) -> int:
    """Noise level 0-3 for a JPEG saved at IJG ``quality``."""
    return next(level for floor, level in _LEVEL_FLOORS if quality >= floor)


def choose_noise(tables: Mapping[int, Sequence[int]] | None) -> NoiseChoice:
    """The automatic noise level for an input with these JPEG tables (None: not a JPEG)."""
    if not tables:
        return NoiseChoice(0, "not a JPEG")
    q = estimate_quality(tables)
    if q is None:
        return NoiseChoice(0, "JPEG without a readable luminance table")
    return NoiseChoice(level_for_quality(q), f"JPEG quality about {q}")


def jpeg_tables(path: str | os.PathLike[str]) -> dict[int, list[int]] | None:
    """The quantization tables of a JPEG file (read from its header only), None for other files."""
    try:
        with Image.open(path) as img:
            if img.format != "JPEG":
                return None
            return {int(k): list(v) for k, v in getattr(img, "quantization", {}).items()}
    except (OSError, UnidentifiedImageError, ValueError):
        return None  # unreadable files are reported by the reader, with a better message
