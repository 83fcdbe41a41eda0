"""Checkpoint loading: official parity, wrappers, inference of hyperparameters, bad files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import swinir
from swinir.checkpoint import CheckpointError, canonicalize_state_dict, infer_config
from swinir.model import SwinIR, SwinIRConfig, preset

from .conftest import SHARED, shared_path

PARITY_CASES = sorted(p.name for p in (SHARED / "reference" / "swinir_parity").glob("*")) or ["<absent>"]


@pytest.mark.parametrize("case", PARITY_CASES)
def test_official_parity(case: str) -> None:
    folder = shared_path("reference", "swinir_parity", case)
    cfg = json.loads((folder / "config.json").read_text())
    model = swinir.load_model(folder / "model.pth", img_range=cfg["kwargs"]["img_range"])
    inferred = model.config
    for key in ("upscale", "in_chans", "window_size", "embed_dim", "upsampler", "resi_connection"):
        assert getattr(inferred, key) == cfg["kwargs"][key], key
    assert list(inferred.depths) == cfg["kwargs"]["depths"]
    assert list(inferred.num_heads) == cfg["kwargs"]["num_heads"]
    x = torch.from_numpy(np.load(folder / "input.npy"))
    expected = np.load(folder / "output.npy")
    with torch.no_grad():
        out = model(x).numpy()
    assert out.shape == tuple(cfg["output_shape"])
    assert np.abs(out - expected).max() <= 1e-4


def test_parity_without_img_range_uses_task_default() -> None:
    folder = shared_path("reference", "swinir_parity", "color_jpeg_tiny")
    assert swinir.load_model(folder / "model.pth").config.img_range == 255.0


def _tiny(**overrides: object) -> SwinIRConfig:
    base = {**preset("lightweight_x2").to_dict(), "depths": [2, 2], "num_heads": [3, 3], "embed_dim": 12}
    return SwinIRConfig.from_dict({**base, **overrides})


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"upsampler": "pixelshuffle", "upscale": 3, "num_feat": 16},
        {"upsampler": "pixelshuffle", "upscale": 8, "resi_connection": "3conv", "num_feat": 8},
        {"upsampler": "nearest+conv", "upscale": 4, "mlp_ratio": 4.0},
        {"upsampler": "", "upscale": 1, "in_chans": 1, "window_size": 7, "qkv_bias": False},
        {"patch_norm": False, "window_size": 4},
    ],
)
def test_infer_config_from_shapes(overrides: dict[str, object]) -> None:
    cfg = _tiny(**overrides)
    state = SwinIR(cfg).state_dict()
    got = infer_config(state, img_range=cfg.img_range)
    for key in ("upscale", "in_chans", "window_size", "depths", "embed_dim", "num_heads", "mlp_ratio",
                "qkv_bias", "patch_norm", "upsampler", "resi_connection", "num_feat"):  # fmt: skip
        assert getattr(got, key) == getattr(cfg, key), key


def test_wrappers_and_prefixes_are_unwrapped() -> None:
    state = SwinIR(_tiny()).state_dict()
    wrapped = {"params_ema": {f"module.{k}": v for k, v in state.items()}, "params": {"x": torch.zeros(1)}}
    out = canonicalize_state_dict({"state_dict": wrapped})
    assert out.keys() == state.keys()
    with_buffers = {**state, "layers.0.residual_group.blocks.1.attn_mask": torch.zeros(4, 64, 64)}
    assert canonicalize_state_dict(with_buffers).keys() == state.keys()


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_save_load_round_trip_is_identical(tmp_path: Path, suffix: str) -> None:
    torch.manual_seed(1)
    cfg = _tiny(img_range=255.0)
    model = SwinIR(cfg).eval()
    path = tmp_path / f"m{suffix}"
    if suffix == ".safetensors":
        swinir.save_model(model, path)
    else:
        torch.save({"params": model.state_dict()}, path)
    loaded = swinir.load_model(path, img_range=None if suffix == ".safetensors" else 255.0)
    assert loaded.config.img_range == 255.0
    x = torch.rand(1, 3, 19, 23)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))


def test_img_range_override_beats_metadata(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    swinir.save_model(SwinIR(_tiny(img_range=255.0)), path)
    assert swinir.load_model(path, img_range=1.0).config.img_range == 1.0


def test_bad_checkpoints_get_one_line_errors(tmp_path: Path) -> None:
    good = tmp_path / "good.pth"
    torch.save({"params": SwinIR(_tiny()).state_dict()}, good)

    cases: dict[str, tuple[bytes | None, str]] = {
        "missing.pth": (None, "no such file"),
        "empty.pth": (b"", "empty"),
        "text.pth": (b"hello, not a checkpoint\n", "is a text file, not a checkpoint"),
        "picture.pth": (b"\x89PNG\r\n\x1a\n" + bytes(64), "is a PNG image, not a checkpoint"),
        "truncated.pth": (good.read_bytes()[:5000], "truncated or corrupt"),
        "bad.safetensors": (b"\x10\x00\x00\x00\x00\x00\x00\x00{garbage", "unreadable safetensors"),
    }
    for name, (data, reason) in cases.items():
        path = tmp_path / name
        if data is not None:
            path.write_bytes(data)
        with pytest.raises(CheckpointError) as info:
            swinir.load_model(path)
        msg = str(info.value)
        assert name in msg and reason in msg and "\n" not in msg, msg

    other = tmp_path / "resnet.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, other)
    with pytest.raises(CheckpointError, match="not a SwinIR state dict"):
        swinir.load_model(other)

    broken = SwinIR(_tiny()).state_dict()
    broken["conv_after_body.weight"] = torch.zeros(12, 12, 1, 1)
    path = tmp_path / "mismatch.pth"
    torch.save(broken, path)
    with pytest.raises(CheckpointError, match="shape mismatch"):
        swinir.load_model(path)


def test_pickled_code_is_refused(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):  # pragma: no cover - executed only by an unsafe loader
            return (print, ("pwned",))

    path = tmp_path / "evil.pth"
    torch.save({"params": Evil()}, path)
    with pytest.raises(CheckpointError, match=r"evil\.pth: refused to load"):
        swinir.load_model(path)


def test_load_model_takes_model_names() -> None:
    """``load_model("default")`` and zoo spellings, as every command takes them."""
    model = swinir.load_model("default")
    assert model.config.upscale == 2 and model.config.embed_dim == 32
    with pytest.raises(CheckpointError, match=r"defualt: no such file, and not a model name \(did you mean"):
        swinir.load_model("defualt")
