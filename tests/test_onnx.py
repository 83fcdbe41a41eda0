"""ONNX export with dynamic sizes, the ONNX Runtime back end, and ``swinir export-onnx``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from swinir.backends import onnxruntime as ort_backend
from swinir.backends.onnxruntime import OnnxError, OnnxRunner, export_onnx, quantize_onnx
from swinir.cli import main
from swinir.model import SwinIR, SwinIRConfig, preset

pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
pytest.importorskip("onnxruntime")


def _tiny() -> SwinIR:
    """Seed-preset family (window 4, 3conv, pixel shuffle, img_range 255), tiny."""
    base = preset("seed_x2").to_dict()
    cfg = SwinIRConfig.from_dict(
        {**base, "depths": [2, 2], "num_heads": [2, 2], "embed_dim": 16, "num_feat": 8}
    )
    torch.manual_seed(0)
    model = SwinIR(cfg).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Linear):
                m.weight.normal_(0, 0.2)  # blocks visible in the output
    return model


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[SwinIR, Path]:
    model = _tiny()
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    export_onnx(model, path, check=True)
    return model, path


@pytest.mark.parametrize("shape", [(1, 3, 16, 24), (2, 3, 9, 30), (3, 3, 3, 5), (1, 3, 4, 44)])
def test_onnxruntime_matches_pytorch_on_any_size(
    exported: tuple[SwinIR, Path], shape: tuple[int, ...]
) -> None:
    model, path = exported
    runner = OnnxRunner(path, threads=2)
    assert (runner.scale, runner.in_chans, runner.window_size) == (2, 3, 4)
    x = torch.rand(*shape)
    with torch.inference_mode():
        expected = model(x)
    got = runner.forward(x)
    assert got.shape == expected.shape == (shape[0], 3, 2 * shape[2], 2 * shape[3])
    assert (got - expected).abs().max() <= 1e-4


def test_int8_graph_runs_close_to_fp32(exported: tuple[SwinIR, Path], tmp_path: Path) -> None:
    model, path = exported
    int8 = quantize_onnx(path, tmp_path / "tiny-int8.onnx")
    x = torch.rand(1, 3, 12, 20)
    with torch.inference_mode():
        expected = model(x)
    got = OnnxRunner(int8).forward(x)
    err = (got - expected).abs().max().item()
    assert 0 < err < 0.05  # quantized (not identical), but close


def test_from_model_exports_once_into_the_cache(
    exported: tuple[SwinIR, Path], tmp_path: Path, monkeypatch
) -> None:
    model, path = exported
    calls = []

    def fake_export(m: SwinIR, dst: Path, check: bool = True) -> Path:
        calls.append(dst)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(path.read_bytes())
        return dst

    monkeypatch.setattr(ort_backend, "export_onnx", fake_export)
    first = OnnxRunner.from_model(model, cache=tmp_path)
    second = OnnxRunner.from_model(model, cache=tmp_path)
    assert len(calls) == 1 and first.path == second.path
    other = _tiny()
    with torch.no_grad():
        other.conv_first.bias.add_(1.0)
    assert OnnxRunner.from_model(other, cache=tmp_path).path != first.path  # keyed by weights
    int8 = OnnxRunner.from_model(model, precision="int8", cache=tmp_path)
    assert int8.quantized and not first.quantized


def test_non_swinir_or_broken_files_give_one_line_errors(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    other = tmp_path / "other.onnx"
    onnx.save(helper.make_model(graph), other)
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not onnx")
    for path, reason in [(other, "not a SwinIR export"), (broken, "not a loadable ONNX model")]:
        with pytest.raises(OnnxError) as info:
            OnnxRunner(path)
        assert str(path) in str(info.value) and reason in str(info.value) and "\n" not in str(info.value)


def test_export_onnx_command(exported: tuple[SwinIR, Path], tmp_path: Path, monkeypatch, capsys) -> None:
    import swinir

    model, path = exported
    weights = tmp_path / "tiny.safetensors"
    swinir.save_model(model, weights)
    monkeypatch.setattr(
        ort_backend, "export_onnx", lambda m, dst, check=True: Path(dst).write_bytes(path.read_bytes())
    )
    out = tmp_path / "out.onnx"
    assert main(["export-onnx", str(weights), str(out), "--int8"]) == 0
    printed = capsys.readouterr().out
    assert "max abs difference" in printed and OnnxRunner(tmp_path / "out-int8.onnx").quantized
    assert main(["export-onnx", str(weights), str(tmp_path / "out.bin")]) == 2
    assert main(["export-onnx", str(tmp_path / "missing.pth"), str(out)]) == 2
    assert "missing.pth" in capsys.readouterr().err


def test_upscaler_and_cli_onnxruntime_backend(exported: tuple[SwinIR, Path], tmp_path: Path, capsys) -> None:
    import numpy as np
    from PIL import Image

    import swinir
    from swinir.upscaler import Upscaler

    model, path = exported
    weights = tmp_path / "tiny.safetensors"
    swinir.save_model(model, weights)
    img = (np.random.default_rng(0).random((21, 30, 3)) * 255).astype(np.uint8)
    ref = Upscaler(weights, device="cpu", tile=16, tile_overlap=4).upscale(img).astype(int)
    got = Upscaler(path, tile=16, tile_overlap=4, backend="onnxruntime").upscale(img).astype(int)
    assert got.shape == ref.shape and np.abs(got - ref).max() <= 1  # fp32 both: same 8-bit output
    src, out = tmp_path / "in.png", tmp_path / "out.png"
    Image.fromarray(img).save(src)
    base = ["upscale", str(src), "-o", str(out), "--model", str(path), "-q"]
    assert main([*base, "--backend", "onnxruntime"]) == 0
    assert Image.open(out).size == (60, 42)
    assert main([*base, "--backend", "onnxruntime", "--precision", "bf16"]) == 2
    assert main(base) == 2  # an .onnx file with the torch back end
    err = capsys.readouterr().err
    assert "not bf16" in err and "needs --backend onnxruntime" in err
