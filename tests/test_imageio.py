"""Image I/O: modes, bit depths, orientation, colour profiles, bad files, atomic writes."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import png
import pytest
import tifffile
from PIL import Image, ImageCms, ImageOps

from swinir.imageio import (
    ImageData,
    ImageReadError,
    ImageWriteError,
    apply_orientation,
    encode_png16,
    from_array,
    read_image,
    to_array,
    write_image,
)

RNG = np.random.default_rng(0)


def _u8(*shape: int) -> np.ndarray:
    return RNG.integers(0, 256, shape, dtype=np.uint8)


def _u16(*shape: int) -> np.ndarray:
    return RNG.integers(0, 65536, shape, dtype=np.uint16)


def _srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.mark.parametrize("mode, channels, alpha", [("RGB", 3, False), ("RGBA", 3, True), ("L", 1, False),
                                                   ("LA", 1, True)])  # fmt: skip
def test_8bit_png_round_trip_is_exact(tmp_path: Path, mode: str, channels: int, alpha: bool) -> None:
    arr = _u8(9, 7, len(mode))
    src = tmp_path / "src.png"
    Image.fromarray(arr[:, :, 0] if mode == "L" else arr).save(src)
    img = read_image(src)
    assert (img.channels, img.alpha is not None, img.bit_depth, img.mode) == (channels, alpha, 8, mode)
    assert img.pixels.dtype == np.float32 and img.pixels.min() >= 0.0 and img.pixels.max() <= 1.0
    out = write_image(tmp_path / "out.png", img)
    with Image.open(out) as back:
        assert back.mode == mode
        np.testing.assert_array_equal(np.asarray(back).reshape(arr.shape), arr)


def _read_png16(path: Path) -> tuple[np.ndarray, dict]:
    width, height, rows, info = png.Reader(filename=str(path)).asDirect()
    arr = np.vstack([np.asarray(r, dtype=np.uint16) for r in rows]).reshape(height, width, info["planes"])
    return arr, info


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_16bit_png_in_gives_16bit_png_out(tmp_path: Path, channels: int) -> None:
    arr = _u16(6, 11, channels)
    src = tmp_path / "src.png"
    src.write_bytes(encode_png16(arr))
    img = read_image(src)
    assert img.bit_depth == 16 and img.channels == (1 if channels <= 2 else 3)
    assert (img.alpha is not None) == (channels in (2, 4))
    np.testing.assert_array_equal(to_array(img, np.uint16, squeeze=False), arr)  # no 8-bit truncation
    back, info = _read_png16(write_image(tmp_path / "out.png", img))
    assert info["bitdepth"] == 16
    np.testing.assert_array_equal(back, arr)
    if channels == 1:  # Pillow reads the plain 16-bit gray file too
        with Image.open(tmp_path / "out.png") as im:
            assert im.mode == "I;16"


def test_16bit_tiff_round_trip(tmp_path: Path) -> None:
    rgb = _u16(5, 8, 3)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb", compression="zlib")
    img = read_image(tmp_path / "rgb.tif")
    assert img.bit_depth == 16 and img.channels == 3
    np.testing.assert_array_equal(tifffile.imread(write_image(tmp_path / "out.tif", img)), rgb)

    gray = _u16(5, 8)
    Image.fromarray(gray).save(tmp_path / "gray.tif")
    img = read_image(tmp_path / "gray.tif")
    assert img.bit_depth == 16 and img.channels == 1
    with Image.open(write_image(tmp_path / "gray_out.tif", img)) as back:
        assert back.mode.startswith("I;16")
        np.testing.assert_array_equal(np.asarray(back), gray)
    # 8-bit-only formats get 8 bits.
    with Image.open(write_image(tmp_path / "out.jpg", img)) as back:
        assert back.mode == "L"


def test_palette_and_cmyk_become_rgb(tmp_path: Path) -> None:
    pal = Image.fromarray(_u8(8, 8, 3)).quantize(16)
    pal.save(tmp_path / "p.png")
    img = read_image(tmp_path / "p.png")
    assert img.mode == "P" and img.channels == 3 and img.alpha is None
    np.testing.assert_array_equal(to_array(img, np.uint8, False), np.asarray(pal.convert("RGB")))

    pal.save(tmp_path / "pt.png", transparency=3)
    img = read_image(tmp_path / "pt.png")
    assert img.alpha is not None and set(np.unique(img.alpha)) <= {0.0, 1.0}
    assert (img.alpha == 0).sum() == (np.asarray(pal) == 3).sum()

    Image.fromarray(_u8(8, 8, 4), "CMYK").save(tmp_path / "c.jpg")
    img = read_image(tmp_path / "c.jpg")
    assert img.mode == "CMYK" and img.channels == 3 and img.icc_profile is None


def _oriented(base: np.ndarray, orientation: int) -> Image.Image:
    """The image a camera would store so that ``orientation`` shows ``base`` upright."""
    inverse = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 7, 8: 6}[orientation]
    im = Image.fromarray(np.ascontiguousarray(apply_orientation(base, inverse)))
    exif = Image.Exif()
    exif[0x0112] = orientation
    im.info["exif"] = exif.tobytes()
    return im


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_applied_once(tmp_path: Path, orientation: int) -> None:
    base = _u8(5, 9, 3)  # not square, so rotations show in the shape
    src = tmp_path / "o.png"
    stored = _oriented(base, orientation)
    stored.save(src, exif=stored.info["exif"])
    with Image.open(src) as im:  # Pillow's own idea of upright agrees with ours
        np.testing.assert_array_equal(np.asarray(ImageOps.exif_transpose(im)), base)
    img = read_image(src)
    np.testing.assert_array_equal(to_array(img, np.uint8, False), base)
    with Image.open(write_image(tmp_path / "out.jpg", img)) as out:
        assert out.size == (9, 5)
        assert out.getexif().get(0x0112, 1) == 1


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".tif"])
def test_icc_profile_is_kept(tmp_path: Path, suffix: str) -> None:
    icc = _srgb_icc()
    src = tmp_path / "icc.png"
    Image.fromarray(_u8(6, 6, 3)).save(src, icc_profile=icc)
    img = read_image(src)
    assert img.icc_profile == icc
    with Image.open(write_image(tmp_path / f"out{suffix}", img)) as out:
        assert out.info.get("icc_profile") == icc


def test_icc_profile_kept_in_16bit_png(tmp_path: Path) -> None:
    icc = _srgb_icc()
    img = ImageData(pixels=RNG.random((4, 4, 3), dtype=np.float32), bit_depth=16, icc_profile=icc)
    with Image.open(write_image(tmp_path / "o.png", img)) as out:
        assert out.info.get("icc_profile") == icc


def test_jpeg_output_composites_alpha_over_white(tmp_path: Path) -> None:
    pixels = np.zeros((4, 4, 3), np.float32)
    alpha = np.zeros((4, 4), np.float32)
    alpha[:, :2] = 1.0
    with Image.open(write_image(tmp_path / "o.jpg", ImageData(pixels, alpha))) as out:
        arr = np.asarray(out).astype(int)
    assert arr[:, 0].max() < 20 and arr[:, 3].min() > 235


def _bad_files(tmp_path: Path) -> dict[str, tuple[bytes | None, str]]:
    good = tmp_path / "good.png"
    Image.fromarray(_u8(64, 64, 3)).save(good)
    return {
        "missing.png": (None, "no such file"),
        "empty.png": (b"", "file is empty"),
        "text.png": (b"just some text, not pixels\n", "not an image"),
        "truncated.png": (good.read_bytes()[:2000], "truncated or corrupt"),
    }


def test_bad_files_get_one_line_reasons(tmp_path: Path) -> None:
    for name, (data, reason) in _bad_files(tmp_path).items():
        path = tmp_path / name
        if data is not None:
            path.write_bytes(data)
        with pytest.raises(ImageReadError) as info:
            read_image(path)
        msg = str(info.value)
        assert name in msg and reason in msg and "\n" not in msg, msg
    with pytest.raises(ImageReadError, match="is a directory"):
        read_image(tmp_path)


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


def test_decompression_bombs_are_refused(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header_only(100_000, 100_000))  # 10 gigapixels claimed by a 100-byte file
    with pytest.raises(ImageReadError, match="too large"):
        read_image(bomb)
    small = tmp_path / "small.png"
    Image.fromarray(_u8(20, 20, 3)).save(small)
    with pytest.raises(ImageReadError, match=r"too large: 20x20.*--max-pixels"):
        read_image(small, max_pixels=100)
    assert read_image(small, max_pixels=400).width == 20


def test_written_files_get_normal_permissions(tmp_path: Path) -> None:
    mask = os.umask(0o022)
    os.umask(mask)
    out = write_image(tmp_path / "o.png", ImageData(pixels=np.zeros((2, 2, 3), np.float32)))
    assert out.stat().st_mode & 0o777 == 0o666 & ~mask


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    img = ImageData(pixels=np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ImageWriteError, match=r"out\.xyz"):
        write_image(tmp_path / "out.xyz", img)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("shape", [(5, 6), (5, 6, 1), (5, 6, 2), (5, 6, 3), (5, 6, 4)])
def test_array_round_trip(dtype: type, shape: tuple[int, ...]) -> None:
    arr = (RNG.random(shape) * (np.iinfo(dtype).max if dtype != np.float32 else 1)).astype(dtype)
    img = from_array(arr)
    assert (img.alpha is not None) == (len(shape) == 3 and shape[2] in (2, 4))
    back = to_array(img, dtype, squeeze=len(shape) == 2)
    assert back.shape == arr.shape and back.dtype == arr.dtype
    np.testing.assert_allclose(back, arr, atol=1e-6)
