"""int8 dynamic quantization (``--precision int8``)."""

from __future__ import annotations

import pytest
import torch

from swinir.backends.int8 import is_quantized, quantize_int8
from swinir.model import SwinIR, SwinIRConfig, preset


def _model(name: str) -> SwinIR:
    base = preset(name).to_dict()
    heads = base["num_heads"][0]
    cfg = SwinIRConfig.from_dict(
        {**base, "depths": [2, 2], "num_heads": [heads, heads], "embed_dim": heads * 4}
    )
    torch.manual_seed(0)
    model = SwinIR(cfg).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Linear):
                m.weight.normal_(0, 0.2)  # make the blocks matter for the output
    return model


@pytest.mark.parametrize("name", ["lightweight_x2", "seed_x2"])
@pytest.mark.parametrize("nthreads", [1, 2])
def test_int8_is_close_to_fp32_and_leaves_the_original(name: str, nthreads: int) -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(nthreads)
    try:
        model = _model(name)
        q = quantize_int8(model)
        assert is_quantized(q) and not is_quantized(model)
        x = torch.rand(2, 3, 19, 26)
        with torch.inference_mode():
            ref, got = model(x), q(x)
        assert got.shape == ref.shape
        rel = ((got - ref).norm() / (ref - ref.mean()).norm()).item()
        assert 0 < rel < 0.02, rel  # quantized, but close
    finally:
        torch.set_num_threads(before)


def test_int8_quantizes_every_linear_layer() -> None:
    q = quantize_int8(_model("lightweight_x2"))
    linears = [n for n, m in q.named_modules() if type(m) is torch.nn.Linear]
    assert linears == []
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    names = {n.rsplit(".", 1)[-1] for n, m in q.named_modules() if isinstance(m, DynamicLinear)}
    assert names == {"qkv", "proj", "fc1", "fc2"}


def test_upscaler_and_cli_run_int8(tmp_path) -> None:
    import numpy as np
    from PIL import Image

    import swinir
    from swinir.cli import main
    from swinir.upscaler import Upscaler

    weights = tmp_path / "tiny.safetensors"
    swinir.save_model(_model("lightweight_x2"), weights)
    img = (np.random.default_rng(0).random((20, 28, 3)) * 255).astype(np.uint8)
    ref = Upscaler(weights, device="cpu", tile=0).upscale(img).astype(int)
    up = Upscaler(weights, tile=0, precision="int8")  # device auto: CPU for int8
    assert up.device.type == "cpu"
    got = up.upscale(img).astype(int)
    assert got.shape == ref.shape == (40, 56, 3)
    assert np.abs(got - ref).mean() < 2.0  # within a couple of 8-bit levels on average
    src, out = tmp_path / "in.png", tmp_path / "out.png"
    Image.fromarray(img).save(src)
    args = ["upscale", str(src), "-o", str(out), "--model", str(weights), "--precision", "int8", "-q"]
    assert main(args) == 0
    assert Image.open(out).size == (56, 40)
