"""Network structure: presets, any input size, size-derived tables, training features."""

from __future__ import annotations

import pytest
import torch

from swinir.model import PRESETS, SwinIR, SwinIRConfig, preset
from swinir.windows import relative_position_index, shifted_window_mask, window_token_order


def _shrink(cfg: SwinIRConfig) -> SwinIRConfig:
    """Same architecture family, fewer/narrower blocks, so every preset runs fast in tests."""
    heads = cfg.num_heads[0]
    return SwinIRConfig.from_dict(
        {**cfg.to_dict(), "depths": [2, 2], "num_heads": [heads, heads], "embed_dim": heads * 4}
    )


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_runs_on_odd_sizes(name: str) -> None:
    full = preset(name)
    model = SwinIR(_shrink(full)).eval()
    x = torch.rand(1, full.in_chans, 37, 53)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (1, full.in_chans, 37 * full.upscale, 53 * full.upscale)
    assert torch.isfinite(y).all()


def test_full_size_presets_have_published_parameter_counts() -> None:
    # Counts from the SwinIR paper / official code (lightweight x2: 878K, classical x2: 11.75M).
    lw = sum(p.numel() for p in SwinIR(preset("lightweight_x2")).parameters())
    assert 0.87e6 < lw < 0.92e6
    cl = sum(p.numel() for p in SwinIR(preset("classical_x2")).parameters())
    assert 11.7e6 < cl < 11.9e6


def test_tiny_inputs_smaller_than_window() -> None:
    model = SwinIR(_shrink(preset("lightweight_x2"))).eval()
    with torch.no_grad():
        y = model(torch.rand(2, 3, 3, 5))
    assert y.shape == (2, 3, 6, 10)


def test_no_padding_when_size_divides() -> None:
    model = SwinIR(_shrink(preset("lightweight_x2")))
    x = torch.rand(1, 3, 16, 24)
    assert model.pad_to_window(x) is x
    assert model.pad_to_window(torch.rand(1, 3, 17, 24)).shape[-2:] == (24, 24)


def test_size_derived_buffers_are_not_in_state_dict() -> None:
    keys = SwinIR(_shrink(preset("classical_x2"))).state_dict().keys()
    assert not any("attn_mask" in k or "relative_position_index" in k for k in keys)
    assert "mean" not in keys


def test_token_order_equals_roll_then_partition() -> None:
    h, w, ws, shift = 16, 24, 8, 4
    grid = torch.arange(h * w).view(h, w)
    rolled = torch.roll(grid, shifts=(-shift, -shift), dims=(0, 1))
    windows = rolled.view(h // ws, ws, w // ws, ws).permute(0, 2, 1, 3).reshape(-1)
    assert torch.equal(window_token_order(h, w, ws, shift), windows)


def test_mask_blocks_only_cross_region_pairs() -> None:
    mask = shifted_window_mask(16, 16, 8, 4)
    assert mask.shape == (4, 64, 64)
    assert (mask[0] == 0).all()  # the top-left window holds one region
    assert (mask[3] < 0).any() and torch.equal(mask[3], mask[3].T)


def test_relative_position_index_range() -> None:
    idx = relative_position_index(7)
    assert idx.shape == (49, 49)
    assert idx.min() == 0 and idx.max() == 13 * 13 - 1
    assert (idx.diagonal() == 6 * 13 + 6).all()


def test_gradient_checkpointing_gives_same_gradients() -> None:
    torch.manual_seed(0)
    cfg = SwinIRConfig.from_dict({**_shrink(preset("lightweight_x2")).to_dict(), "drop_path_rate": 0.0})
    a = SwinIR(cfg).train()
    b = SwinIR(cfg).train()
    b.load_state_dict(a.state_dict())
    b.set_grad_checkpointing(True)
    x = torch.rand(2, 3, 16, 16)
    a(x).abs().mean().backward()
    b(x).abs().mean().backward()
    for (name, pa), pb in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.allclose(pa.grad, pb.grad, atol=1e-6), name


def test_config_rejects_unknown_keys_and_bad_values() -> None:
    with pytest.raises(ValueError, match="unknown SwinIR config keys: embed_dimm"):
        SwinIRConfig.from_dict({"embed_dimm": 60})
    with pytest.raises(ValueError, match="upsampler"):
        SwinIRConfig(upsampler="bilinear")
    with pytest.raises(ValueError, match="divisible"):
        SwinIRConfig(embed_dim=50, num_heads=(6, 6, 6, 6))


@pytest.mark.parametrize("attention", ["fused", "plain4d"])
def test_graph_mode_forms_compute_the_same_function(attention: str) -> None:
    """Both graph-mode attention forms (ONNX Runtime's, OpenVINO's) equal the eager network, with
    shifted windows, several images and a size that is not square."""
    base = preset("seed_x2").to_dict()
    cfg = SwinIRConfig.from_dict(
        {**base, "depths": [2, 2], "num_heads": [2, 2], "embed_dim": 16, "num_feat": 8}
    )
    torch.manual_seed(0)
    model = SwinIR(cfg).eval()
    x = torch.rand(2, 3, 20, 28)
    with torch.inference_mode():
        want = model(x)
        model.set_graph_mode(True, attention=attention)  # type: ignore[arg-type]
        got = model(x)
    assert (got - want).abs().max() <= 1e-5
    with pytest.raises(ValueError, match="attention must be one of"):
        model.set_graph_mode(True, attention="5d")  # type: ignore[arg-type]
