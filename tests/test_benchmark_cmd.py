"""`swinir benchmark` and the analytic FLOP count its GFLOP/s figures rest on."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import swinir
from swinir.cli import main
from swinir.commands.benchmark import model_flops

SMALL = dict(embed_dim=16, depths=(2, 2), num_heads=(2, 2), window_size=4, num_feat=16)


@pytest.mark.parametrize(
    "overrides",
    [
        dict(upscale=2, upsampler="pixelshuffle"),
        dict(upscale=3, upsampler="pixelshuffle"),
        dict(upscale=4, upsampler="pixelshuffle", resi_connection="3conv"),
        dict(upscale=2, upsampler="pixelshuffledirect", mlp_ratio=4.0),
        dict(upscale=4, upsampler="nearest+conv"),
        dict(upscale=1, upsampler="", in_chans=1),
    ],
)
def test_model_flops_matches_counted_matmuls_and_convs(overrides: dict[str, object]) -> None:
    config = swinir.SwinIRConfig(**SMALL, **overrides)  # type: ignore[arg-type]
    model = swinir.build_model(config).eval()
    x = torch.rand(2, config.in_chans, 20, 12)  # padded to 20x12 (window 4): no padding
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the counter sees this thread's operators only
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        torch.set_num_threads(threads)
    counted = counter.get_total_flops()
    assert model_flops(config, 20, 12, batch=2) == pytest.approx(counted, rel=1e-6)


def test_benchmark_default_model_and_preset(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["benchmark", "--model", "default", "--size", "16", "--repeat", "1", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "model      default" in out and "GFLOP/s" in out
    assert main(["benchmark", "--preset", "lightweight_x2", "--size", "8", "--mode", "train",
                 "--repeat", "1", "--threads", "1"]) == 0  # fmt: skip
    assert "patches/s" in capsys.readouterr().out


def test_benchmark_bad_model_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    for model in (str(bad), "no-such-model"):
        assert main(["benchmark", "--model", model, "--size", "8", "--repeat", "1"]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("swinir benchmark: ") and model in err and "\n" not in err
