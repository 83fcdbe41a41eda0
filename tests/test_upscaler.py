"""swinir.Upscaler: PIL and NumPy in/out types, alpha, channels, precision, devices, files, runners."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageCms

from swinir.backends import pick_device
from swinir.imageio import encode_png16, read_image
from swinir.model import SwinIRConfig, preset
from swinir.upscaler import Upscaler

from .conftest import save_tiny_model

RNG = np.random.default_rng(0)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def rgb_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("m") / "tiny_x2.safetensors")


@pytest.fixture(scope="module")
def up(rgb_model: Path) -> Upscaler:
    return Upscaler(rgb_model, device="cpu", tile=32, tile_overlap=8)


def _smooth(h: int, w: int, c: int) -> np.ndarray:
    low = torch.rand(1, c, h // 4 + 2, w // 4 + 2, generator=torch.Generator().manual_seed(c))
    return F.interpolate(low, size=(h, w), mode="bilinear")[0].permute(1, 2, 0).numpy()


@pytest.mark.parametrize(
    "mode, out_mode",
    [("RGB", "RGB"), ("RGBA", "RGBA"), ("L", "L"), ("LA", "LA"), ("I;16", "I;16"), ("P", "RGB"),
     ("CMYK", "RGB")],
)  # fmt: skip
def test_pil_in_pil_out(up: Upscaler, mode: str, out_mode: str) -> None:
    src = Image.fromarray((_smooth(20, 30, 3) * 255).astype(np.uint8)).convert(mode)
    out = up.upscale(src)
    assert isinstance(out, Image.Image) and out.mode == out_mode and out.size == (60, 40)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(20, 30), (20, 30, 1), (20, 30, 2), (20, 30, 3), (20, 30, 4)])
def test_numpy_in_numpy_out(up: Upscaler, dtype: type, shape: tuple[int, ...]) -> None:
    base = _smooth(20, 30, shape[2] if len(shape) == 3 else 1).reshape(shape)
    peak = np.iinfo(dtype).max if np.issubdtype(dtype, np.integer) else 1.0
    arr = (base * peak).astype(dtype)
    out = up.upscale(arr)
    assert isinstance(out, np.ndarray) and out.dtype == arr.dtype
    assert out.shape == (40, 60, *shape[2:])
    if not np.issubdtype(dtype, np.integer):
        assert out.min() >= 0.0 and out.max() <= 1.0


def test_alpha_is_upscaled_not_dropped(up: Upscaler, rgb_model: Path) -> None:
    rgba = np.concatenate([_smooth(24, 24, 3), np.zeros((24, 24, 1), np.float32)], axis=2)
    rgba[:, 12:, 3] = 1.0  # half transparent, half opaque: a sharp alpha edge
    out = up.upscale(rgba)
    assert out.shape == (48, 48, 4)
    # Alpha goes through the model as a gray image (the tiny model is random, so only compare).
    np.testing.assert_allclose(out[:, :, 3], up.upscale(rgba[:, :, 3]), atol=1e-6)
    resized = Upscaler(rgb_model, device="cpu", tile=0, alpha="resize").upscale(rgba)[:, :, 3]
    assert resized[:, :20].max() < 0.2 and resized[:, 28:].min() > 0.8
    opaque = rgba.copy()
    opaque[:, :, 3] = 1.0  # constant alpha is filled, not run through the model
    assert (up.upscale(opaque)[:, :, 3] == 1.0).all()


def test_gray_model_restores_each_colour_channel(tmp_path: Path) -> None:
    path = save_tiny_model(
        tmp_path / "gray_dn.safetensors", {"upscale": 1, "upsampler": "", "in_chans": 1, "window_size": 7}
    )
    restorer = Upscaler(path, device="cpu", tile=28, tile_overlap=7)
    assert restorer.scale == 1
    rgba = np.concatenate([_smooth(30, 40, 3), RNG.random((30, 40, 1), dtype=np.float32)], axis=2)
    out = restorer.upscale(rgba)
    assert out.shape == rgba.shape
    np.testing.assert_array_equal(out[:, :, 3], rgba[:, :, 3])  # alpha untouched by restoration
    gray_out = restorer.upscale((_smooth(30, 40, 1)[:, :, 0] * 255).astype(np.uint8))
    assert gray_out.shape == (30, 40)


def test_tiled_and_whole_agree_and_bf16_is_close(rgb_model: Path, up: Upscaler) -> None:
    img = _smooth(48, 64, 3)
    whole = Upscaler(rgb_model, device="cpu", tile=0).upscale(img)
    tiled = up.upscale(img)
    assert 10 * np.log10(1 / np.mean((whole - tiled) ** 2)) > 40
    bf16 = Upscaler(rgb_model, device="cpu", tile=0, precision="bf16").upscale(img)
    assert 10 * np.log10(1 / np.mean((whole - bf16) ** 2)) > 30


def test_outscale_any_factor(up: Upscaler) -> None:
    arr = (_smooth(20, 30, 3) * 255).astype(np.uint8)
    assert up.upscale(arr, outscale=3).shape == (60, 90, 3)
    assert up.upscale(arr, outscale=1.5).shape == (30, 45, 3)
    assert up.upscale(arr, outscale=0.5).shape == (10, 15, 3)
    with pytest.raises(ValueError, match="outscale"):
        up.upscale(arr, outscale=0)


def test_upscale_file_keeps_bit_depth_icc_and_orientation(up: Upscaler, tmp_path: Path) -> None:
    arr16 = (_smooth(10, 14, 3) * 65535).astype(np.uint16)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = tmp_path / "in16.png"
    src.write_bytes(encode_png16(arr16, icc))
    out = up.upscale_file(src, tmp_path / "out16.png")
    got = read_image(out)
    assert got.bit_depth == 16 and (got.height, got.width) == (20, 28) and got.icc_profile == icc

    im = Image.fromarray((_smooth(10, 14, 3) * 255).astype(np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: shown rotated 90 degrees clockwise
    im.save(tmp_path / "rot.jpg", exif=exif.tobytes())
    with Image.open(up.upscale_file(tmp_path / "rot.jpg", tmp_path / "rot_out.jpg")) as res:
        assert res.size == (20, 28) and res.getexif().get(0x0112, 1) == 1


def test_devices_precisions_and_errors(rgb_model: Path) -> None:
    assert pick_device("auto").type in ("cuda", "mps", "cpu")
    assert pick_device("cpu").type == "cpu"
    with pytest.raises(ValueError, match="device must be"):
        pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            Upscaler(rgb_model, device="cuda")
    with pytest.raises(ValueError, match="precision"):
        Upscaler(rgb_model, device="cpu", precision="fp8")
    with pytest.raises(ValueError, match="backend"):
        Upscaler(rgb_model, device="cpu", backend="tensorrt")
    with pytest.raises(ValueError, match="tile must be"):
        Upscaler(rgb_model, device="cpu", tile="big")
    with pytest.raises(ValueError, match="smaller than the model's window"):
        Upscaler(rgb_model, device="cpu", tile=4)
    # An overlap too large for the tile is reduced to a quarter of it, and noted.
    small = Upscaler(rgb_model, device="cpu", tile=32, tile_overlap=16)
    assert small.tile_overlap == 8 and "using a 8-pixel overlap" in small.notes[0]
    with pytest.raises(TypeError, match="PIL image or a NumPy array"):
        Upscaler(rgb_model, device="cpu").upscale([[0]])  # type: ignore[type-var]


def test_runner_is_the_plug_in_point(up: Upscaler, rgb_model: Path) -> None:
    class NearestRunner:
        scale, in_chans, window_size = 2, 3, 8

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.interpolate(x, scale_factor=2, mode="nearest")

    other = Upscaler(rgb_model, device="cpu", tile=16, tile_overlap=4)
    other.runner = NearestRunner()
    arr = (_smooth(20, 30, 3) * 255).astype(np.uint8)
    np.testing.assert_array_equal(other.upscale(arr), arr.repeat(2, axis=0).repeat(2, axis=1))


def test_auto_tiles_run_whole_within_the_budget_and_tile_beyond_it(rgb_model: Path) -> None:
    from swinir.imageio import from_array

    h, w = 200, 240
    arr = (_smooth(h, w, 3) * 255).astype(np.uint8)
    data = from_array(arr)
    auto = Upscaler(rgb_model, device="cpu")
    assert auto.tile == "auto" and auto.plan(data).whole
    whole = np.asarray(auto.upscale(arr), np.float32)
    # A budget that holds the image's buffers but not the whole-image network: the fewest tiles.
    estimate = auto.memory
    pixels = h * w
    need_whole = estimate.peak(h, w, pixels, whole=True)
    budget = int(estimate.fixed + (estimate.input_per_pixel + estimate.accumulator_per_pixel) * pixels
                 + estimate.network_per_pixel * pixels * 0.4)  # fmt: skip
    assert budget < need_whole
    tight = Upscaler(rgb_model, device="cpu", max_memory=budget)
    plan = tight.plan(data)
    assert not plan.whole and plan.count <= 4
    assert estimate.peak(h, w, plan.tile_h * plan.tile_w, whole=False) <= budget
    tiled = np.asarray(tight.upscale(arr), np.float32)
    mse = float(np.mean((tiled - whole) ** 2))
    assert 10 * np.log10(255.0**2 / max(mse, 1e-12)) > 40
    assert "whole images up to about" in auto.describe_tiling()


def test_options_known_to_be_slower_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import swinir.backends as backends

    cpu = torch.device("cpu")
    thin = SwinIRConfig.from_dict({**preset("lightweight_x2").to_dict()})
    wide = preset("seed_x2")
    assert backends.known_slower(thin, cpu, "fp32", "torch") is None
    assert "thin models" in (backends.known_slower(thin, cpu, "int8", "torch") or "")
    assert backends.known_slower(wide, cpu, "int8", "torch") is None  # int8 pays off there
    assert "onnxruntime" in (backends.known_slower(wide, cpu, "fp32", "onnxruntime") or "")
    monkeypatch.setattr(backends, "cpu_has_native_bf16", lambda: False)
    assert "no native bf16" in (backends.known_slower(thin, cpu, "bf16", "torch") or "")
    monkeypatch.setattr(backends, "cpu_has_native_bf16", lambda: True)
    assert backends.known_slower(thin, cpu, "bf16", "torch") is None
    assert backends.known_slower(thin, torch.device("cuda"), "bf16", "torch") is None
