"""Reading and writing images for restoration: every common mode in, the same kind of file out.

An image is held as :class:`ImageData`: colour or gray samples as float32 ``(H, W, C)`` in [0, 1]
(``C`` is 1 or 3), the alpha channel separately as ``(H, W)``, and what is needed to write the result
back like the source: bit depth, format, ICC profile and EXIF (orientation already applied to the
pixels and reset to 1, so viewers do not rotate the output a second time).

Modes read (Pillow names): ``1``, ``L``, ``LA``, ``I;16*`` (16-bit gray), ``I``, ``F``, ``P``/``PA``
(to RGB or RGBA), ``RGB``, ``RGBA``, ``RGBX``, ``CMYK`` (to RGB through its ICC profile when it has
one), ``YCbCr``/``LAB``/``HSV`` (to RGB), and 16-bit RGB/RGBA/LA PNG and TIFF, which Pillow would
truncate to 8 bits, through ``pypng`` and ``tifffile``. 16-bit in gives 16-bit out where the output
format holds it (PNG, TIFF).

Every failure to read is an :class:`ImageReadError` whose one-line message names the file and the
reason: missing, empty, not an image, truncated or corrupt, unsupported mode, too large.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, UnidentifiedImageError

from .atomic import atomic_path

# Pillow's own guard against decompression bombs (about 89.5 megapixels) is our default limit.
DEFAULT_MAX_PIXELS: int = int(Image.MAX_IMAGE_PIXELS or 89_478_485)

# Output formats by file extension (lower case, with the dot).
FORMAT_BY_SUFFIX: dict[str, str] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
# Extensions picked up when a folder is scanned (GIFs are read, their first frame, and written as PNG).
IMAGE_SUFFIXES: frozenset[str] = frozenset(FORMAT_BY_SUFFIX) | {".gif"}

_ORIENTATION_TAG = 0x0112
_EXIF_FORMATS = ("JPEG", "PNG", "WEBP")


class ImageReadError(Exception):
    """An image that cannot be read; ``str()`` is one line naming the file and the reason."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        from .paths import printable

        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{printable(path)}: {reason}")


class ImageWriteError(Exception):
    """An image that cannot be written in the requested format; the message names the file."""


@dataclass(frozen=True)
class ImageData:
    """Pixels as float32 in [0, 1] plus what is needed to write them back like the source.

    Attributes:
        pixels: (H, W, C) float32, C = 1 (gray) or 3 (RGB), without alpha.
        alpha: (H, W) float32 alpha, or None.
        mode: the source's Pillow mode (``"P"``, ``"CMYK"``, ``"I;16"``, ...), for information.
        bit_depth: bits per sample to write: 8, 16, or 32 (float TIFF).
        format: the source's format (``"PNG"``, ``"JPEG"``, ...), or None for in-memory images.
        icc_profile: the colour profile to embed in the output, or None.
        exif: EXIF bytes to embed in the output (orientation reset to 1), or None.
        frames: frames in the source file (animated GIF/WebP/PNG, multi-page TIFF); only the
            first is read.
    """

    pixels: np.ndarray
    alpha: np.ndarray | None = None
    mode: str = "RGB"
    bit_depth: int = 8
    format: str | None = None
    icc_profile: bytes | None = None
    exif: bytes | None = None
    frames: int = 1

    def __post_init__(self) -> None:
        if self.pixels.ndim != 3 or self.pixels.shape[2] not in (1, 3):
            raise ValueError(f"pixels must be (H, W, 1) or (H, W, 3), got {self.pixels.shape}")
        if self.alpha is not None and self.alpha.shape != self.pixels.shape[:2]:
            raise ValueError(f"alpha {self.alpha.shape} does not match pixels {self.pixels.shape[:2]}")
        if self.bit_depth not in (8, 16, 32):
            raise ValueError(f"bit_depth must be 8, 16 or 32, got {self.bit_depth}")

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def channels(self) -> int:
        """Colour channels without alpha: 1 or 3."""
        return int(self.pixels.shape[2])

    def with_pixels(self, pixels: np.ndarray, alpha: np.ndarray | None) -> ImageData:
        """A copy with new pixels and alpha (e.g. the upscaled ones) and the same metadata."""
        return replace(self, pixels=pixels, alpha=alpha)


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------


def read_image(path: str | os.PathLike[str], max_pixels: int | None = DEFAULT_MAX_PIXELS) -> ImageData:
    """Read an image file into :class:`ImageData`, EXIF orientation applied.

    Args:
        path: any image Pillow reads (PNG, JPEG, WebP, BMP, TIFF, ...); multi-frame files give
            their first frame.
        max_pixels: refuse images with more pixels than this before decoding them (decompression
            bombs); None or 0 for no limit of ours. A limit above Pillow's own raises Pillow's.

    Raises:
        ImageReadError: one line naming the file and the reason.
    """
    from .paths import file_problem

    path = Path(path)
    problem = file_problem(path, "image")  # before opening: a FIFO or a device would never end
    if problem is not None:
        raise ImageReadError(path, problem)
    if path.stat().st_size == 0:
        raise ImageReadError(path, "file is empty")
    if max_pixels and Image.MAX_IMAGE_PIXELS and max_pixels > Image.MAX_IMAGE_PIXELS:
        # The caller asked for more than Pillow allows; Pillow refuses above twice its limit.
        Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings(), _quiet_tifffile():
            # Decoders warn about what they repair (corrupt EXIF, short tags); the result is ours to judge.
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                width, height = im.size
                if max_pixels and width * height > max_pixels:
                    raise ImageReadError(path, _too_large(width, height, max_pixels))
                data = _decode(im, path)
                frames = int(getattr(im, "n_frames", 1) or 1)
                return replace(data, frames=frames) if frames > 1 else data
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        raise ImageReadError(path, _unidentified_reason(path)) from None
    except Image.DecompressionBombError as exc:
        raise ImageReadError(path, _bomb_reason(exc, max_pixels)) from None
    except MemoryError:
        raise ImageReadError(path, "too large: out of memory while decoding") from None
    except PermissionError:
        raise ImageReadError(path, "permission denied (cannot open the file for reading)") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, IndexError) as exc:
        raise ImageReadError(path, f"truncated or corrupt ({_first_line(exc)})") from None


def from_pil(im: Image.Image) -> ImageData:
    """Convert an in-memory Pillow image (any supported mode) to :class:`ImageData`.

    EXIF orientation is applied when the image carries it.
    """
    try:
        return _from_pil(im, im.info.get("icc_profile"), _orientation(im))
    except _UnsupportedMode as exc:
        raise ValueError(str(exc)) from None


def _too_large(width: int, height: int, limit: int) -> str:
    return (
        f"too large: {width}x{height} = {width * height / 1e6:.1f} megapixels exceeds the limit of "
        f"{limit / 1e6:.1f} megapixels (raise it with --max-pixels or max_pixels=)"
    )


@contextlib.contextmanager
def _quiet_tifffile() -> Iterator[None]:
    """Keep tifffile's log lines about damaged tags off the user's terminal while we read."""
    import logging

    logger = logging.getLogger("tifffile")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _bomb_reason(exc: Exception, max_pixels: int | None) -> str:
    """Our too-large message for an image Pillow refused in ``open`` (more than twice its limit)."""
    import re

    m = re.search(r"\((\d+) pixels\)", str(exc))
    limit = max_pixels or int(Image.MAX_IMAGE_PIXELS or DEFAULT_MAX_PIXELS)
    size = f"{int(m.group(1)) / 1e6:.1f} megapixels" if m else "the image"
    return (
        f"too large: {size} exceeds the limit of {limit / 1e6:.1f} megapixels "
        "(raise it with --max-pixels or max_pixels=)"
    )


# Leading bytes of the formats Pillow reads, to tell a damaged image from a file of another kind.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF8", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


def _unidentified_reason(path: Path) -> str:
    """Why Pillow could not identify ``path``: a damaged header of a known format, or another format."""
    with open(path, "rb") as f:
        head = f.read(33)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "corrupt WebP file (its header cannot be read)"
    fmt = next((name for sig, name in _SIGNATURES if head.startswith(sig)), None)
    if fmt is None:
        return "not an image (unrecognised file format)"
    if fmt == "PNG" and len(head) >= 33 and head[12:16] == b"IHDR":
        length = struct.unpack(">I", head[8:12])[0]
        crc = struct.unpack(">I", head[29:33])[0]
        if length == 13 and zlib.crc32(head[12:29]) & 0xFFFFFFFF != crc:
            return "corrupt PNG file (the IHDR header chunk fails its CRC checksum)"
    return f"corrupt {fmt} file (its header cannot be read)"


class _UnsupportedMode(Exception):
    pass


def _decode(im: Image.Image, path: Path) -> ImageData:
    rawmode = _rawmode(im)  # before getexif(), which may load the image and clear its tiles
    icc = im.info.get("icc_profile") or None
    orientation = _orientation(im)
    exif = _exif_without_orientation(im)
    try:
        if im.format == "PNG" and rawmode in ("RGB;16B", "RGBA;16B", "LA;16B"):
            data = _decode_png16(path, im.mode, icc, orientation)
        elif im.format == "TIFF" and ";16" in rawmode and not im.mode.startswith("I"):
            data = _decode_tiff16(path, im.mode, icc, orientation)
        else:
            im.load()
            data = _from_pil(im, icc, orientation)
    except _UnsupportedMode as exc:
        raise ImageReadError(path, str(exc)) from None
    return replace(data, format=im.format, exif=exif)


def _rawmode(im: Image.Image) -> str:
    """The decoder's raw mode (e.g. ``"RGB;16B"``), which tells 16-bit colour files apart."""
    if not im.tile:
        return ""
    args = im.tile[0].args if hasattr(im.tile[0], "args") else im.tile[0][3]
    if isinstance(args, str):
        return args
    if isinstance(args, tuple) and args and isinstance(args[0], str):
        return args[0]
    return ""


def _orientation(im: Image.Image) -> int:
    try:
        value = int(im.getexif().get(_ORIENTATION_TAG, 1))
    except Exception:  # malformed EXIF must not make a good image unreadable
        return 1
    return value if 1 <= value <= 8 else 1


def _exif_without_orientation(im: Image.Image) -> bytes | None:
    try:
        exif = im.getexif()
        if not exif:
            return None
        if _ORIENTATION_TAG in exif:
            exif[_ORIENTATION_TAG] = 1
        return exif.tobytes()
    except Exception:  # unparseable EXIF is dropped rather than failing the image
        return None


def apply_orientation(array: np.ndarray, orientation: int) -> np.ndarray:
    """Turn (H, W, ...) pixels stored with EXIF ``orientation`` (1-8) upright."""
    if orientation == 2:
        return array[:, ::-1]
    if orientation == 3:
        return array[::-1, ::-1]
    if orientation == 4:
        return array[::-1]
    if orientation == 5:
        return array.swapaxes(0, 1)
    if orientation == 6:
        return array.swapaxes(0, 1)[:, ::-1]
    if orientation == 7:
        return array.swapaxes(0, 1)[::-1, ::-1]
    if orientation == 8:
        return array.swapaxes(0, 1)[::-1]
    return array


def _split(array: np.ndarray, scale: float, has_alpha: bool, mode: str, bits: int, icc: bytes | None,
           orientation: int) -> ImageData:  # fmt: skip
    """(H, W, C[+1]) integer or float samples -> ImageData with float32 in [0, 1]."""
    array = apply_orientation(array, orientation)
    if array.ndim == 2:
        array = array[:, :, None]
    pixels = np.ascontiguousarray(array[:, :, :-1] if has_alpha else array, dtype=np.float32)
    if scale != 1.0:
        pixels *= np.float32(1.0 / scale)
    alpha = None
    if has_alpha:
        alpha = np.ascontiguousarray(array[:, :, -1], dtype=np.float32)
        if scale != 1.0:
            alpha *= np.float32(1.0 / scale)
    return ImageData(pixels=pixels, alpha=alpha, mode=mode, bit_depth=bits, icc_profile=icc)


def _from_pil(im: Image.Image, icc: bytes | None, orientation: int) -> ImageData:
    mode = im.mode
    if mode == "1":
        return _split(np.asarray(im.convert("L")), 255.0, False, mode, 8, icc, orientation)
    if mode == "L":
        return _split(np.asarray(im), 255.0, False, mode, 8, icc, orientation)
    if mode in ("LA", "La"):
        return _split(np.asarray(im.convert("LA")), 255.0, True, mode, 8, icc, orientation)
    if mode.startswith("I;16"):
        return _split(np.asarray(im).astype(np.uint16), 65535.0, False, mode, 16, icc, orientation)
    if mode == "I":
        arr = np.clip(np.asarray(im), 0, 65535).astype(np.uint16)
        return _split(arr, 65535.0, False, mode, 16, icc, orientation)
    if mode == "F":
        arr = np.clip(np.nan_to_num(np.asarray(im, dtype=np.float32)), 0.0, 1.0)
        return _split(arr, 1.0, False, mode, 32, icc, orientation)
    if mode in ("P", "PA"):
        rgba = mode == "PA" or "transparency" in im.info
        conv = im.convert("RGBA" if rgba else "RGB")
        return _split(np.asarray(conv), 255.0, rgba, mode, 8, icc, orientation)
    if mode in ("RGB", "RGBX"):
        conv = im if mode == "RGB" else im.convert("RGB")
        return _split(np.asarray(conv), 255.0, False, mode, 8, icc, orientation)
    if mode in ("RGBA", "RGBa"):
        conv = im if mode == "RGBA" else im.convert("RGBA")
        return _split(np.asarray(conv), 255.0, True, mode, 8, icc, orientation)
    if mode == "CMYK":
        rgb, icc = _cmyk_to_rgb(im, icc)
        return _split(np.asarray(rgb), 255.0, False, mode, 8, icc, orientation)
    if mode in ("YCbCr", "LAB", "HSV"):
        return _split(np.asarray(im.convert("RGB")), 255.0, False, mode, 8, icc, orientation)
    raise _UnsupportedMode(f"unsupported image mode {mode!r}")


def _cmyk_to_rgb(im: Image.Image, icc: bytes | None) -> tuple[Image.Image, bytes | None]:
    """CMYK -> sRGB through the embedded profile when there is one; the CMYK profile is dropped."""
    if icc:
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            dst = ImageCms.createProfile("sRGB")
            out = ImageCms.profileToProfile(im, src, dst, outputMode="RGB")
            if out is not None:
                return out, None
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken profile: fall back to the naive conversion below
    return im.convert("RGB"), None


def _decode_png16(path: Path, mode: str, icc: bytes | None, orientation: int) -> ImageData:
    """16-bit RGB/RGBA/LA PNG (which Pillow reads as 8-bit) through pypng."""
    import png

    try:
        width, height, rows, info = png.Reader(filename=str(path)).asDirect()
        planes = int(info["planes"])
        array = np.empty((height, width * planes), dtype=np.uint16)
        for y, row in enumerate(rows):
            array[y] = row
    except (png.FormatError, png.ChunkError, png.ProtocolError) as exc:
        raise OSError(_first_line(exc)) from None
    array = array.reshape(height, width, planes)
    return _split(array, 65535.0, bool(info["alpha"]), mode + ";16", 16, icc, orientation)


def _decode_tiff16(path: Path, mode: str, icc: bytes | None, orientation: int) -> ImageData:
    """16-bit colour TIFF (which Pillow reads as 8-bit) through tifffile."""
    import tifffile

    try:
        array = tifffile.imread(str(path), key=0)
    except ValueError as exc:
        if "imagecodecs" in str(exc):
            raise _UnsupportedMode(
                "this 16-bit TIFF's compression needs the 'imagecodecs' package (pip install imagecodecs)"
            ) from None
        raise
    if array.dtype != np.uint16 or array.ndim != 3 or array.shape[2] not in (2, 3, 4):
        raise _UnsupportedMode(f"unsupported 16-bit TIFF layout {array.shape} {array.dtype}")
    has_alpha = array.shape[2] in (2, 4)
    return _split(array, 65535.0, has_alpha, mode + ";16", 16, icc, orientation)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__


def incomplete_reason(path: str | os.PathLike[str]) -> str | None:
    """Why an existing output file is not a complete image ("empty (0 bytes)", ...); None if it is.

    ``--skip-existing`` trusts only files that pass: after a crash or a power loss an output can
    be empty or cut short. The check reads the file's structure without decoding the pixels: PNG
    chunks and their checksums up to IEND, the JPEG end marker, the sizes WebP and BMP record;
    other formats are decoded.
    """
    from .paths import file_problem

    problem = file_problem(path, "image")
    if problem is not None:
        return problem
    size = os.path.getsize(path)
    if size == 0:
        return "empty (0 bytes)"
    try:
        with open(path, "rb") as f:
            head = f.read(16)
            if head.startswith(b"\x89PNG\r\n\x1a\n"):
                return _png_incomplete(f)
            if head.startswith(b"\xff\xd8"):
                f.seek(-2, os.SEEK_END)
                return None if f.read(2) == b"\xff\xd9" else "cut short (no JPEG end marker)"
            if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
                declared = struct.unpack("<I", head[4:8])[0] + 8
                return None if declared <= size else f"cut short ({size} of {declared} bytes)"
            if head[:2] == b"BM" and len(head) >= 6:
                declared = struct.unpack("<I", head[2:6])[0]
                return None if declared <= size else f"cut short ({size} of {declared} bytes)"
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im.load()
    except Image.DecompressionBombError:
        return None  # too large to decode here; its structure was not checked
    except Exception as exc:  # any decoder failure means the file is not a usable output
        return f"not a complete image ({_first_line(exc)})"
    return None


def _png_incomplete(f: io.BufferedReader) -> str | None:
    """Walk PNG chunks from just after the signature; None when IEND is reached intact."""
    f.seek(8)
    while True:
        header = f.read(8)
        if len(header) < 8:
            return "cut short (no PNG end chunk)"
        length, kind = struct.unpack(">I4s", header)
        crc = zlib.crc32(kind)
        left = length
        while left:
            block = f.read(min(left, 1 << 20))
            if not block:
                return "cut short (a PNG chunk is incomplete)"
            crc = zlib.crc32(block, crc)
            left -= len(block)
        stored = f.read(4)
        if len(stored) < 4 or struct.unpack(">I", stored)[0] != crc & 0xFFFFFFFF:
            return "damaged (a PNG chunk fails its checksum)"
        if kind == b"IEND":
            return None


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------


def format_for(path: str | os.PathLike[str], format: str | None = None) -> str:
    """The output format for ``path``: ``format`` (png/jpg/webp/bmp/tiff) or the file extension."""
    if format:
        key = "." + format.lower().lstrip(".")
        if key not in FORMAT_BY_SUFFIX:
            raise ImageWriteError(f"{path}: unsupported output format {format!r}")
        return FORMAT_BY_SUFFIX[key]
    suffix = Path(path).suffix.lower()
    if suffix not in FORMAT_BY_SUFFIX:
        raise ImageWriteError(
            f"{path}: cannot tell the output format from the extension {suffix or '(none)'!r}; "
            f"use one of {', '.join(sorted(FORMAT_BY_SUFFIX))}"
        )
    return FORMAT_BY_SUFFIX[suffix]


def write_image(
    path: str | os.PathLike[str],
    image: ImageData,
    format: str | None = None,
    quality: int = 95,
    background: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> Path:
    """Write ``image`` atomically, choosing mode and bit depth from the source.

    16-bit sources give 16-bit PNG and TIFF (8-bit where the format has no 16-bit samples);
    alpha is kept except in JPEG, which has none: there the image is composited over
    ``background`` (white by default). The ICC profile and EXIF (orientation 1) are embedded where
    the format holds them.

    Args:
        path: output file; its extension gives the format unless ``format`` is set.
        format: png, jpg/jpeg, webp, bmp or tif/tiff.
        quality: JPEG and WebP quality, 1-100.
    """
    path = Path(path)
    fmt = format_for(path, format)
    pixels, alpha = image.pixels, image.alpha
    if alpha is not None and fmt == "JPEG":
        bg = np.asarray(background[: image.channels] if image.channels == 3 else background[:1], np.float32)
        pixels = pixels * alpha[:, :, None] + bg * (1.0 - alpha[:, :, None])
        alpha = None
    depth = image.bit_depth if fmt in ("PNG", "TIFF") else 8
    if depth == 32 and not (fmt == "TIFF" and image.channels == 1 and alpha is None):
        depth = 16 if fmt in ("PNG", "TIFF") else 8
    with atomic_path(path) as tmp:
        if depth == 8:
            _save_pil(tmp, _to_pil8(pixels, alpha, fmt), fmt, image, quality)
        elif depth == 32:
            _save_pil(
                tmp,
                Image.fromarray(np.ascontiguousarray(pixels[:, :, 0], dtype=np.float32)),
                fmt,
                image,
                quality,
            )
        elif image.channels == 1 and alpha is None:
            gray = _quantize(pixels[:, :, 0], 65535, np.uint16)
            _save_pil(tmp, Image.fromarray(gray), fmt, image, quality)
        elif fmt == "PNG":
            tmp.write_bytes(encode_png16(_stack(pixels, alpha, 65535, np.uint16), image.icc_profile))
        else:
            _write_tiff16(tmp, _stack(pixels, alpha, 65535, np.uint16), image.icc_profile)
    return path


def _quantize(x: np.ndarray, peak: int, dtype: type) -> np.ndarray:
    """Floats in [0, 1] -> rounded integers, a block of rows at a time to keep temporaries small."""
    out = np.empty(x.shape, dtype=dtype)
    rows = max(1, (1 << 22) // max(1, x[0].size))
    for r in range(0, x.shape[0], rows):
        block = np.clip(x[r : r + rows], 0.0, 1.0).astype(np.float32, copy=False)
        block *= np.float32(peak)
        out[r : r + rows] = np.rint(block, out=block)
    return out


def _stack(pixels: np.ndarray, alpha: np.ndarray | None, peak: int, dtype: type) -> np.ndarray:
    """(H, W, C) [+ alpha] floats -> (H, W, C[+1]) integers."""
    out = np.empty((*pixels.shape[:2], pixels.shape[2] + (alpha is not None)), dtype=dtype)
    out[:, :, : pixels.shape[2]] = _quantize(pixels, peak, dtype)
    if alpha is not None:
        out[:, :, -1] = _quantize(alpha, peak, dtype)
    return out


def _to_pil8(pixels: np.ndarray, alpha: np.ndarray | None, fmt: str) -> Image.Image:
    arr = _stack(pixels, alpha, 255, np.uint8)
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[arr.shape[2]]
    im = Image.fromarray(arr[:, :, 0] if mode == "L" else arr)
    if fmt == "WEBP" and mode in ("L", "LA"):
        im = im.convert("RGBA" if mode == "LA" else "RGB")
    elif fmt == "BMP" and mode == "LA":
        im = im.convert("RGBA")
    return im


def _save_pil(tmp: Path, im: Image.Image, fmt: str, image: ImageData, quality: int) -> None:
    options: dict[str, object] = {}
    if image.icc_profile and fmt != "BMP":
        options["icc_profile"] = image.icc_profile
    if image.exif and fmt in _EXIF_FORMATS:
        options["exif"] = image.exif
    if fmt == "JPEG":
        # Full-resolution chroma at high quality: upscaled detail is what the user asked for.
        options.update(quality=quality, subsampling=0 if quality >= 90 else 2)
    elif fmt == "WEBP":
        options["quality"] = quality
    elif fmt == "PNG":
        options["compress_level"] = 6
    elif fmt == "TIFF":
        options["compression"] = "tiff_deflate"
    im.save(tmp, format=fmt, **options)


def _write_tiff16(tmp: Path, array: np.ndarray, icc: bytes | None) -> None:
    import tifffile

    channels = array.shape[2]
    photometric = "minisblack" if channels <= 2 else "rgb"
    extras = ["unassalpha"] if channels in (2, 4) else None
    tifffile.imwrite(
        str(tmp),
        array,
        photometric=photometric,
        extrasamples=extras,
        compression="zlib",
        iccprofile=icc,
        planarconfig="contig",
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def encode_png16(array: np.ndarray, icc_profile: bytes | None = None, level: int = 6) -> bytes:
    """Encode (H, W, C) uint16 samples (C = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) as a 16-bit PNG.

    Pillow cannot write 16-bit colour PNGs. Rows are Paeth-filtered (the usual best choice for
    photographs), computed in blocks of rows so memory stays a small multiple of the block.
    """
    height, width, channels = array.shape
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    bpp = 2 * channels
    raw = np.ascontiguousarray(array, dtype=">u2").view(np.uint8).reshape(height, width * bpp)
    comp = zlib.compressobj(level)
    parts: list[bytes] = []
    block = max(1, (1 << 22) // max(1, raw.shape[1]))
    prev_row = np.zeros((1, raw.shape[1]), dtype=np.int16)
    for y0 in range(0, height, block):
        cur = raw[y0 : y0 + block].astype(np.int16)
        up = np.concatenate([prev_row, cur[:-1]], axis=0)
        left = np.zeros_like(cur)
        left[:, bpp:] = cur[:, :-bpp]
        up_left = np.zeros_like(cur)
        up_left[:, bpp:] = up[:, :-bpp]
        base = left + up - up_left
        pa, pb, pc = np.abs(base - left), np.abs(base - up), np.abs(base - up_left)
        pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, up_left))
        filtered = ((cur - pred) & 0xFF).astype(np.uint8)
        rows = np.empty((cur.shape[0], cur.shape[1] + 1), dtype=np.uint8)
        rows[:, 0] = 4  # Paeth
        rows[:, 1:] = filtered
        parts.append(comp.compress(rows.tobytes()))
        prev_row = cur[-1:]
    parts.append(comp.flush())
    out = [
        b"\x89PNG\r\n\x1a\n",
        _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)),
    ]
    if icc_profile:
        out.append(_png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc_profile)))
    out.append(_png_chunk(b"IDAT", b"".join(parts)))
    out.append(_png_chunk(b"IEND", b""))
    return b"".join(out)


# ----------------------------------------------------------------------------------------------
# Arrays and Pillow images in memory
# ----------------------------------------------------------------------------------------------


def from_array(array: np.ndarray) -> ImageData:
    """Wrap a NumPy image: (H, W) or (H, W, C) with C = 1, 2 (gray+alpha), 3 or 4 (RGBA).

    uint8 is scaled by 255, uint16 by 65535, floats are taken as [0, 1].
    """
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"expected an (H, W) or (H, W, 1|2|3|4) array, got shape {array.shape}")
    if array.dtype == np.uint8:
        scale, bits = 255.0, 8
    elif array.dtype == np.uint16:
        scale, bits = 65535.0, 16
    elif np.issubdtype(array.dtype, np.floating):
        scale, bits = 1.0, 16
    else:
        raise ValueError(f"unsupported array dtype {array.dtype} (use uint8, uint16 or float)")
    has_alpha = array.shape[2] in (2, 4)
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[array.shape[2]]
    return _split(array, scale, has_alpha, mode, bits, None, 1)


def to_array(image: ImageData, dtype: np.dtype | type, squeeze: bool) -> np.ndarray:
    """Inverse of :func:`from_array`: (H, W, C[+1]) in ``dtype``; (H, W) when ``squeeze`` and gray."""
    dtype = np.dtype(dtype)
    if dtype == np.uint8:
        out = _stack(image.pixels, image.alpha, 255, np.uint8)
    elif dtype == np.uint16:
        out = _stack(image.pixels, image.alpha, 65535, np.uint16)
    else:
        parts = [image.pixels] + ([image.alpha[:, :, None]] if image.alpha is not None else [])
        out = np.clip(np.concatenate(parts, axis=2), 0.0, 1.0).astype(dtype)
    if squeeze and out.shape[2] == 1:
        out = out[:, :, 0]
    return out


def to_pil(image: ImageData, mode: str | None = None) -> Image.Image:
    """A Pillow image in the source's mode where Pillow has one (P and CMYK become RGB/RGBA)."""
    mode = mode or image.mode
    if mode.startswith("I;16") and image.channels == 1 and image.alpha is None:
        return Image.fromarray(_quantize(image.pixels[:, :, 0], 65535, np.uint16))
    if mode == "I" and image.channels == 1 and image.alpha is None:
        return Image.fromarray(_quantize(image.pixels[:, :, 0], 65535, np.uint16).astype(np.int32))
    if mode == "F" and image.channels == 1 and image.alpha is None:
        return Image.fromarray(np.ascontiguousarray(image.pixels[:, :, 0], dtype=np.float32))
    im = _to_pil8(image.pixels, image.alpha, "PNG")
    if mode == "1":
        return im.convert("1")
    if image.icc_profile:
        im.info["icc_profile"] = image.icc_profile
    return im
