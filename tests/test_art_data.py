"""Art training data: the procedural generator, weighted source mixing, art degradations."""

from __future__ import annotations

import dataclasses
import io
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from swinir import artgen
from swinir.artgen import generate
from swinir.data import GENERATOR_PREFIX, DataError, build_spec, mix_quotas, scan_shards
from swinir.degradations import FILTERS, JPEG_LEVELS, Degradation, downscale, jpeg_level
from swinir.jpeg_quality import estimate_quality
from swinir.train import Trainer
from swinir.train_config import ConfigError, config_from_dict
from tests.test_data import make_images
from tests.test_train import assert_sigterm_resume_is_exact, tiny_config

# ---------------------------------------------------------------------------------------------
# Generator
# ---------------------------------------------------------------------------------------------


def test_generator_is_a_pure_function_of_the_seed() -> None:
    a, b, c = generate(11, 64), generate(11, 64), generate(12, 64)
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_generator_draws_varied_antialiased_art() -> None:
    imgs = [generate(s, 96) for s in range(12)]
    # Varied: pictures differ from each other, and each has structure (not a flat canvas).
    assert len({img.tobytes() for img in imgs}) == 12
    assert all(img.std() > 5 for img in imgs)
    # Anti-aliased: drawn at 3x and box-reduced, so edges carry intermediate values: far more
    # distinct colours than the handful of cel colours and inks a picture is painted with.
    assert np.median([len(np.unique(img.reshape(-1, 3), axis=0)) for img in imgs]) > 200
    # Some pictures are grey (manga-like) and some are in colour.
    grey = [bool(np.all(img[..., 0] == img[..., 1]) and np.all(img[..., 1] == img[..., 2])) for img in imgs]
    assert any(grey) or len(imgs) < 4
    assert not all(grey)


# ---------------------------------------------------------------------------------------------
# Degradations
# ---------------------------------------------------------------------------------------------


def test_patterns_over_a_box_equal_the_whole_picture_s() -> None:
    """The generator computes screentones, hatching and shape gradients only where they show;
    each must be exactly the whole-picture pattern there (the pictures stay the same)."""
    shape = (96, 128)
    rng = np.random.default_rng(7)
    for trial in range(12):
        mask = np.zeros(shape, bool)
        y0, x0 = (int(v) for v in rng.integers(0, 60, 2))
        mask[y0 : y0 + int(rng.integers(1, 36)), x0 : x0 + int(rng.integers(1, 60))] = True
        box = artgen._box(mask)
        assert mask[box].all() and mask.sum() == mask[box].size
        for pattern in (artgen._screentone, artgen._hatching):
            whole = pattern(np.random.default_rng(trial), shape, 3)
            part = pattern(np.random.default_rng(trial), shape, 3, box)
            assert np.array_equal(part, whole[box]), pattern.__name__
        a, b = np.array([10.0, 20.0, 30.0]), np.array([200.0, 100.0, 0.0])
        whole = artgen._gradient(np.random.default_rng(trial), shape, a, b)
        assert np.array_equal(
            artgen._gradient(np.random.default_rng(trial), shape, a, b, where=mask), whole[mask]
        )
    assert artgen._box(np.zeros(shape, bool)) == (slice(0, 0), slice(0, 0))


def test_every_filter_halves_and_differs() -> None:
    hr = generate(3, 64)
    outs = {f: downscale(hr, 2, f) for f in FILTERS}
    assert all(o.shape == (32, 32, 3) for o in outs.values())
    assert len({o.tobytes() for o in outs.values()}) == len(FILTERS)
    # Each is a sensible reduction: close to the box average of the HR.
    box = hr.reshape(32, 2, 32, 2, 3).mean(axis=(1, 3))
    for f, o in outs.items():
        assert np.abs(o.astype(float) - box).mean() < 12, f


def test_filters_are_drawn_by_weight() -> None:
    deg = Degradation(2, filters=("bicubic", "box"), filter_weights=(0.75, 0.25))
    assert deg.random
    hr = generate(5, 32)
    ref = {f: downscale(hr, 2, f).tobytes() for f in ("bicubic", "box")}
    picks = Counter()
    for i in range(400):
        out = deg(hr, np.random.default_rng(i)).tobytes()
        picks[next(f for f, r in ref.items() if r == out)] += 1
    assert 240 < picks["bicubic"] < 360


def test_jpeg_levels_get_stronger() -> None:
    lr = generate(9, 96)
    damage = []
    for spec in JPEG_LEVELS.values():
        outs = [jpeg_level(lr, spec, np.random.default_rng(i)) for i in range(6)]
        assert all(o.shape == lr.shape for o in outs)
        damage.append(np.mean([np.abs(o.astype(float) - lr).mean() for o in outs]))
    assert damage[0] > 0.3 and damage == sorted(damage)


def test_jpeg_block_grid_phase_is_random() -> None:
    """Patches are cut anywhere, so the 8x8 grid must not sit at one fixed offset in them."""
    lr = generate(4, 64)
    spec = JPEG_LEVELS[3]
    outs = {jpeg_level(lr, spec, np.random.default_rng(i)).tobytes() for i in range(8)}
    assert len(outs) > 4


def test_bad_degradation_settings() -> None:
    with pytest.raises(ValueError, match="unknown downscale filter 'nearest'"):
        Degradation(2, filters=("nearest",))
    with pytest.raises(ValueError, match="noise level"):
        Degradation(2, noise_level=4)


# ---------------------------------------------------------------------------------------------
# Mixed sources
# ---------------------------------------------------------------------------------------------


def test_mix_quotas() -> None:
    assert mix_quotas([1, 1]) == [32, 32]
    assert sum(mix_quotas([0.6, 0.3, 0.1])) == 64
    assert mix_quotas([100, 0.001])[1] == 1  # a tiny weight still gets its slot
    assert mix_quotas([1, 0]) == [64, 0]
    with pytest.raises(DataError, match="not all 0"):
        mix_quotas([0, 0])


def mixed_spec(root: Path, weights=(3, 1), gen: float = 0.0, buffer: int = 4):
    sources = [scan_shards([str(root / "a")]), scan_shards([str(root / "b")])]
    flat = [s for src in sources for s in src]
    deg = Degradation(2, "bicubic")
    return build_spec(flat, 2, 7, buffer, 2, 8, 2, 3, deg, sources=sources, weights=weights,
                      generator_weight=gen, generator_size=32)  # fmt: skip


def test_sources_are_drawn_by_weight_not_size(tmp_path: Path) -> None:
    make_images(tmp_path / "a", {"": 2}, size=(24, 24))  # 2 images, weight 3
    make_images(tmp_path / "b", {"": 12}, size=(24, 24), seed=1)  # 12 images, weight 1
    spec = mixed_spec(tmp_path)
    lane = spec.stream(0)
    counts = Counter(Path(lane.record(i).hr).parent.name for i in range(640))
    assert counts["a"] == 480 and counts["b"] == 160  # exactly 48/16 of every 64 slots
    # Each source still walks whole epochs: every image of b appears before any repeats.
    seq_b = [lane.record(i).hr for i in range(640) if "/b/" in lane.record(i).hr]
    assert len(set(seq_b[:6])) == 6  # lane 0 holds 6 of b's 12 images


def test_generator_source_is_bounded_and_deterministic(tmp_path: Path) -> None:
    make_images(tmp_path / "a", {"": 3}, size=(32, 32))
    make_images(tmp_path / "b", {"": 3}, size=(32, 32), seed=1)
    spec = mixed_spec(tmp_path, weights=(1, 1), gen=2.0, buffer=4)
    s1, s2 = spec.stream(0), spec.stream(0)
    names = [s1.record(i).hr for i in range(256)]
    gen = [n for n in names if n.startswith(GENERATOR_PREFIX)]
    assert len(gen) == 128 and len(set(gen)) == 128  # half the slots, each a new picture
    for c in range(0, 60):
        lr1, hr1 = s1.patch(c)
        assert s1.decoded <= 2  # window = buffer / lanes, whatever the sources
    lr2, hr2 = s2.patch(59)  # random access gives the same patch as the sequential walk
    assert np.array_equal(lr1, lr2) and np.array_equal(hr1, hr2)


def test_generator_only_training_config(tmp_path: Path) -> None:
    raw = tiny_config(tmp_path, tmp_path / "run", steps=2)
    raw["data"].update({"train_dirs": [], "generator_weight": 1.0, "generator_size": 32})
    trainer = Trainer(config_from_dict(raw))
    assert trainer.run() == 0


def test_mixed_training_resumes_exactly(tmp_path: Path) -> None:
    make_images(tmp_path / "train" / "x", {"": 3}, size=(24, 24))
    make_images(tmp_path / "train" / "y", {"": 2}, size=(24, 24), seed=4)
    data = {
        "train_dirs": [str(tmp_path / "train" / "x"), str(tmp_path / "train" / "y")],
        "train_weights": [0.5, 0.2],
        "generator_weight": 0.3,
        "generator_size": 32,
        "filters": ["bicubic", "lanczos", "box"],
        "noise_level": 2,
    }
    assert_sigterm_resume_is_exact(tmp_path, tmp_path, 3, data)


def test_mixing_config_errors(tmp_path: Path) -> None:
    raw = tiny_config(tmp_path, tmp_path / "run")
    for data, message in (
        ({"train_weights": [1.0, 2.0]}, "one weight per train dir"),
        ({"filters": ["nearest"]}, "data.filters"),
        ({"noise_level": 5}, "noise_level"),
        ({"generator_weight": -1.0}, "generator_weight"),
    ):
        bad = {**raw, "data": {**raw["data"], **data}}
        with pytest.raises(ConfigError, match=message):
            config_from_dict(bad)


def test_init_from_weights(tmp_path: Path) -> None:
    make_images(tmp_path / "train", {"": 3}, size=(24, 24))
    first = Trainer(config_from_dict(tiny_config(tmp_path, tmp_path / "a", steps=2)))
    assert first.run() == 0
    from swinir.checkpoint import save_model

    save_model(first.model, tmp_path / "w.safetensors")
    raw = tiny_config(
        tmp_path, tmp_path / "b", steps=2, training={"init_from": str(tmp_path / "w.safetensors")}
    )
    second = Trainer(config_from_dict(raw))
    for k, v in first.model.state_dict().items():
        assert torch.equal(second.model.state_dict()[k], v), k
        assert torch.equal(second.ema.state_dict()[k], v), k
    raw["model"]["embed_dim"] = 16
    with pytest.raises(ConfigError, match="different architecture"):
        Trainer(config_from_dict(raw))
    raw = tiny_config(tmp_path, tmp_path / "c", training={"init_from": str(tmp_path / "nope.pth")})
    with pytest.raises(ConfigError, match=r"init_from.*nope\.pth"):
        Trainer(config_from_dict(raw))


def test_validation_with_jpeg_lr(tmp_path: Path) -> None:
    from swinir.data import load_validation

    make_images(tmp_path / "v", {"": 1}, size=(48, 48))
    clean = load_validation(str(tmp_path / "v"), 2)[0][1]
    noisy = load_validation(str(tmp_path / "v"), 2, jpeg_quality=30)[0][1]
    assert clean.shape == noisy.shape and not np.array_equal(clean, noisy)
    buf = io.BytesIO()
    Image.fromarray(clean).save(buf, "JPEG", quality=30)
    assert estimate_quality(Image.open(buf).quantization) == 30


def test_art_recipes_load() -> None:
    import tomllib

    from swinir.train_config import load_config, to_toml

    root = Path(__file__).resolve().parents[1] / "configs" / "art"
    paths = sorted(root.glob("*.toml"))
    assert paths
    for path in paths:
        cfg = load_config(path)
        assert config_from_dict(tomllib.loads(to_toml(cfg))) == cfg
        assert not any("Art/val" in d for d in cfg.data.train_dirs)  # never train on the test set
        held_out = set(cfg.validation.include)
        assert held_out and held_out <= set(cfg.data.exclude)


def test_init_from_grows_a_shallower_network(tmp_path: Path) -> None:
    """A deeper [model] starts from a shallower network's weights as the same function, and its new
    blocks and stage train (their gradients are not stuck at zero)."""
    from swinir.checkpoint import save_model
    from swinir.growth import grow_into
    from swinir.model import SwinIR

    make_images(tmp_path / "train", {"": 3}, size=(24, 24))
    small = Trainer(config_from_dict(tiny_config(tmp_path, tmp_path / "a", steps=2)))
    assert small.run() == 0
    save_model(small.model, tmp_path / "w.safetensors")
    depths = list(small.model.config.depths)
    heads = list(small.model.config.num_heads)
    model = {"depths": [d + 2 for d in depths] + [2], "num_heads": [*heads, heads[-1]]}
    raw = tiny_config(
        tmp_path,
        tmp_path / "b",
        steps=2,
        model=model,
        training={"init_from": str(tmp_path / "w.safetensors")},
    )
    grown = Trainer(config_from_dict(raw))
    x = torch.rand(1, 3, 16, 16)
    small.model.eval()
    grown.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(grown.model(x), small.model(x), rtol=0, atol=1e-6)
    for k, v in grown.model.state_dict().items():
        assert torch.equal(grown.ema.state_dict()[k], v), k
    before = {k: v.clone() for k, v in grown.model.state_dict().items()}
    assert grown.run() == 0
    after = grown.model.state_dict()
    last = len(depths)
    for key in (f"layers.0.residual_group.blocks.{depths[0]}.attn.proj.weight", f"layers.{last}.conv.weight"):
        assert not torch.equal(before[key], after[key]), key
    # Shapes that cannot grow are refused with the reason.
    with pytest.raises(ValueError, match="embed_dim"):
        cfg = dataclasses.replace(small.model.config, embed_dim=small.model.config.embed_dim * 2)
        grow_into(SwinIR(cfg), small.model.config, small.model.state_dict())
    raw["model"].update(depths=[1] * len(depths), num_heads=heads)
    with pytest.raises(ConfigError, match="fewer than"):
        Trainer(config_from_dict(raw))
