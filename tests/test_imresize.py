"""MATLAB-compatible bicubic imresize: exact reproduction of the standard LR files, and its contract."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from swinir.imresize import imresize, resize_weights
from swinir.metrics import modcrop
from tests.conftest import shared_path


@pytest.mark.parametrize("dataset", ["Set5", "Set14"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_reproduces_standard_lr_files(dataset: str, scale: int) -> None:
    root = shared_path("datasets", dataset)
    hr_files = sorted((root / "HR").glob("*.png"))
    assert hr_files
    for hr_file in hr_files:
        hr = modcrop(np.asarray(Image.open(hr_file)), scale)
        lr = np.asarray(Image.open(root / "LR_bicubic" / f"X{scale}" / f"{hr_file.stem}x{scale}.png"))
        out = imresize(hr, 1 / scale)
        assert out.dtype == np.uint8
        assert out.shape == lr.shape, hr_file.name
        mismatched = int(np.count_nonzero(out != lr))
        assert mismatched == 0, f"{hr_file.name} x{scale}: {mismatched} pixels differ"


def test_height_axis_first_with_rounding_between_passes() -> None:
    # An image whose result depends on the pass order and on the intermediate rounding.
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(12, 12), dtype=np.uint8)
    out = imresize(img, 0.5)
    from swinir.imresize import _resize_axis, _to_int

    rows_first = _to_int(
        _resize_axis(_to_int(_resize_axis(img.astype(float), 0, 6, 0.5), np.uint8), 1, 6, 0.5), np.uint8
    )
    cols_first = _to_int(
        _resize_axis(_to_int(_resize_axis(img.astype(float), 1, 6, 0.5), np.uint8), 0, 6, 0.5), np.uint8
    )
    assert np.array_equal(out, rows_first)
    assert not np.array_equal(rows_first, cols_first)


def test_weights_sum_to_one_and_indices_in_range() -> None:
    for in_len, out_len, scale in [(10, 20, 2.0), (30, 10, 1 / 3), (7, 3, 0.5), (1, 4, 4.0)]:
        idx, w = resize_weights(in_len, out_len, scale)
        assert idx.shape == w.shape and idx.shape[0] == out_len
        assert idx.min() >= 0 and idx.max() < in_len
        np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-12)


def test_upscaling_preserves_linear_ramp_interior() -> None:
    # Cubic convolution reproduces linear functions exactly away from the mirrored edges.
    ramp = np.tile(np.arange(20, dtype=np.float64), (20, 1))
    out = imresize(ramp, 2.0)
    assert out.shape == (40, 40)
    expected = (np.arange(40) + 0.5) / 2 - 0.5  # output centre mapped back to input coordinates
    np.testing.assert_allclose(out[:, 8:-8], np.tile(expected, (40, 1))[:, 8:-8], atol=1e-12)


def test_float_in_float_out_unclipped() -> None:
    img = np.zeros((8, 8, 3), dtype=np.float32)
    img[:, 4:] = 1.0
    out = imresize(img, 2.0)
    assert out.dtype == np.float32 and out.shape == (16, 16, 3)
    assert out.max() > 1.0 and out.min() < 0.0  # cubic overshoot kept


def test_uint8_rounds_and_saturates() -> None:
    img = np.zeros((8, 8), dtype=np.uint8)
    img[:, 4:] = 255
    out = imresize(img, 2.0)
    assert out.dtype == np.uint8
    assert out.max() == 255 and out.min() == 0
    ref = np.clip(np.floor(imresize(img.astype(np.float64), 2.0) + 0.5), 0, 255)
    np.testing.assert_array_equal(out, ref)  # constant along the height, so only the width pass rounds


def test_uint16_kept_and_matches_uint8_scaled() -> None:
    rng = np.random.default_rng(1)
    img8 = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    out16 = imresize(img8.astype(np.uint16) * 257, 0.5)
    assert out16.dtype == np.uint16
    assert np.abs(out16 / 257.0 - imresize(img8, 0.5)).max() <= 1.0


def test_output_shape_and_scale_sizes() -> None:
    img = np.zeros((10, 7), dtype=np.uint8)
    assert imresize(img, 0.5).shape == (5, 4)  # ceil
    assert imresize(img, output_shape=(20, 5)).shape == (20, 5)
    assert imresize(img, 1.0).shape == (10, 7)
    constant = np.full((9, 11, 3), 77, dtype=np.uint8)
    assert np.all(imresize(constant, 1 / 3) == 77) and np.all(imresize(constant, 3) == 77)


@pytest.mark.parametrize(
    ("kwargs", "exc"),
    [({}, ValueError), ({"scale": 2, "output_shape": (4, 4)}, ValueError), ({"scale": 0}, ValueError)],
)
def test_bad_arguments(kwargs: dict, exc: type[Exception]) -> None:
    with pytest.raises(exc):
        imresize(np.zeros((4, 4), dtype=np.uint8), **kwargs)
    with pytest.raises(ValueError):
        imresize(np.zeros((4,), dtype=np.uint8), 2)
