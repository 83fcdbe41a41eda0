"""The OpenVINO back end: a folder through ``--backend openvino`` matches torch, and the per-shape
conversions are cached (a second run converts nothing)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import swinir
from swinir.cli import main
from swinir.imageio import encode_png16, read_image
from swinir.model import SwinIR, SwinIRConfig, preset

pytest.importorskip("openvino", reason="the openvino extra is not installed (pip install 'swinir[openvino]')")

from swinir.backends import openvino as ov_backend  # after the skip: it needs openvino

RNG = np.random.default_rng(0)
# Both images cut into 24x24 tiles with --tile 24 (window 4, overlap 4): one conversion serves both.
TILE = ("--tile", "24", "--tile-overlap", "4")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private conversion cache for the module (SWINIR_CACHE), shared by its tests in order."""
    folder = tmp_path_factory.mktemp("cache")
    old = os.environ.get("SWINIR_CACHE")
    os.environ["SWINIR_CACHE"] = str(folder)
    yield folder
    if old is None:
        os.environ.pop("SWINIR_CACHE", None)
    else:
        os.environ["SWINIR_CACHE"] = old


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Seed-preset family (window 4, shifted blocks, 3conv, pixel shuffle, img_range 255), tiny, with
    weights large enough that a wrong attention shows in the output."""
    base = preset("seed_x2").to_dict()
    cfg = SwinIRConfig.from_dict({**base, "depths": [2], "num_heads": [2], "embed_dim": 16, "num_feat": 8})
    torch.manual_seed(0)
    net = SwinIR(cfg).eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Linear):
                m.weight.normal_(0, 0.2)
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    swinir.save_model(net, path)
    return str(path)


def _folder(root: Path) -> Path:
    src = root / "in"
    src.mkdir()
    (src / "rgb16.png").write_bytes(encode_png16(RNG.integers(0, 65536, (40, 40, 3), dtype=np.uint16)))
    rgba = RNG.integers(0, 65536, (40, 56, 4), dtype=np.uint16)
    rgba[:, :20, 3] = 0  # alpha that varies: it goes through the model too
    (src / "rgba16.png").write_bytes(encode_png16(rgba))
    return src


def _upscale(src: Path, out: Path, model: str, backend: str, capsys: pytest.CaptureFixture) -> str:
    code = main(["upscale", str(src), "-o", str(out), "--model", model, "--backend", backend, *TILE])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out + captured.err


def test_folder_matches_torch_and_a_second_run_reuses_the_conversion(
    tmp_path: Path, model: str, cache: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _folder(tmp_path)
    _upscale(src, tmp_path / "torch", model, "torch", capsys)
    first = _upscale(src, tmp_path / "ov", model, "openvino", capsys)
    assert "openvino back end" in first
    assert "openvino: 1x3x24x24 converted in" in first  # the header says what it converted
    for name in ("rgb16_x2.png", "rgba16_x2.png"):
        want, got = read_image(tmp_path / "torch" / name), read_image(tmp_path / "ov" / name)
        assert got.pixels.shape == want.pixels.shape and got.pixels.shape[:2] in ((80, 80), (80, 112))
        # Float outputs within 1e-4, seen through 16-bit files: one more step of rounding.
        assert np.abs(got.pixels - want.pixels).max() <= 1e-4 + 1 / 65535, name
        if want.alpha is not None:
            assert got.alpha is not None
            assert np.abs(got.alpha - want.alpha).max() <= 1e-4 + 1 / 65535, name

    def no_conversion(*args: object) -> None:
        raise AssertionError("converted again although the conversion is cached")

    monkeypatch.setattr(ov_backend, "convert", no_conversion)
    second = _upscale(src, tmp_path / "ov2", model, "openvino", capsys)
    assert "openvino: 1x3x24x24 loaded from the cache in" in second
    assert "converted in" not in second
    for name in ("rgb16_x2.png", "rgba16_x2.png"):
        assert (tmp_path / "ov2" / name).read_bytes() == (tmp_path / "ov" / name).read_bytes()


def test_runner_matches_torch_on_odd_sizes_and_batches(
    model: str, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    net = swinir.load_model(model).eval()
    runner = ov_backend.OpenVinoRunner(net, threads=1)
    x = torch.rand(2, 3, 21, 23)  # padded to 24x24 inside: the cached shape, at batch 2 (new)
    with torch.inference_mode():
        want = net(x)
    got = runner.forward(x)
    assert got.shape == want.shape == (2, 3, 42, 46)
    assert (got - want).abs().max() <= 1e-4
    assert [(e.shape, e.converted) for e in runner.events] == [((2, 3, 24, 24), True)]
    # A last, smaller batch runs on the compiled batch-2 graph, padded: no new shape.
    monkeypatch.setattr(ov_backend, "convert", lambda *a: pytest.fail("converted a batch of one"))
    one = runner.forward(x[1:])
    assert (one - want[1:]).abs().max() <= 1e-4
    assert len(runner.events) == 1


def test_auto_tiling_reuses_a_converted_shape(model: str, cache: Path) -> None:
    """tile="auto" would run a 40x56 image whole (a new shape); with 24x24 converted, it tiles."""
    up = swinir.Upscaler(model, backend="openvino", tile_overlap=4)
    up.prepare([up.plan_size(24, 24)])  # converted by the folder test already: read from the cache
    assert (1, 3, 24, 24) in up.runner.cached_shapes()
    plan = up.plan_size(40, 56)
    assert (plan.tile_h, plan.tile_w, plan.count) == (24, 24, 6)
    # A shape no conversion fits (smaller than every converted tile) keeps its own plan.
    small = up.plan_size(16, 20)
    assert small.whole and (small.tile_h, small.tile_w) == (16, 20)
    torch_up = swinir.Upscaler(model, backend="torch", tile_overlap=4)
    assert torch_up.plan_size(40, 56).whole


def test_self_ensemble_converts_both_orientations_and_matches_torch(model: str, cache: Path) -> None:
    """--tta turns tiles by 90 degrees: a 24x32 tile also needs its 32x24 graph, converted ahead."""
    up = swinir.Upscaler(model, backend="openvino", tile=0, tta=True)
    plan = up.plan_size(24, 32)
    lines = up.prepare([plan])
    assert (
        len(lines) == 2
        and any("1x3x24x32" in line for line in lines)
        and any("1x3x32x24" in line for line in lines)
    )
    assert {(1, 3, 24, 32), (1, 3, 32, 24)} <= set(up.runner.cached_shapes())
    img = RNG.random((24, 32, 3), dtype=np.float32)
    want = swinir.Upscaler(model, backend="torch", tile=0, tta=True).upscale(img)
    assert np.abs(up.upscale(img) - want).max() <= 1e-4


def test_options_it_cannot_run_are_refused(model: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(ValueError, match="openvino back end runs fp32 only, not int8"):
        swinir.Upscaler(model, backend="openvino", precision="int8")
    img = Path(model).with_name("x.png")
    Image.fromarray(RNG.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(img)
    code = main(["upscale", str(img), "--model", model, "--backend", "openvino", "--precision", "bf16"])
    assert code == 2
    assert "openvino back end runs fp32 only, not bf16" in capsys.readouterr().err


def test_torch_on_cpu_names_the_faster_back_end(model: str) -> None:
    from swinir import backends

    cfg = swinir.load_model(model).config
    cpu = torch.device("cpu")
    note = backends.known_faster(cfg, cpu, "fp32", "torch") or ""
    assert "--backend openvino" in note and "conversion" in note
    assert backends.known_faster(cfg, cpu, "fp32", "openvino") is None
    assert backends.known_faster(cfg, cpu, "int8", "torch") is None
    assert note in swinir.Upscaler(model, device="cpu").notes


def test_a_damaged_cache_entry_is_converted_again(
    model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    net = swinir.load_model(model)
    runner = ov_backend.OpenVinoRunner(net, threads=1, cache=tmp_path, log=lambda line: None)
    folder = runner.folder / "1x3x8x8"
    folder.mkdir(parents=True)
    (folder / "model.xml").write_text("<net>truncated")
    assert runner.cached_shapes() == [(1, 3, 8, 8)]

    class Converting(Exception):
        pass

    def convert(*args: object) -> None:
        raise Converting

    monkeypatch.setattr(ov_backend, "convert", convert)
    with pytest.raises(Converting):
        runner.prepare([(1, 3, 8, 8)])
    assert not folder.exists()
