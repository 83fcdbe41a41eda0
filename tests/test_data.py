"""Training data: folder scanning, shards and lanes, patch streams, degradations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from swinir.data import (
    DataError,
    PatchLoader,
    build_spec,
    load_validation,
    scan_shards,
    split_lanes,
)
from swinir.degradations import (
    Degradation,
    add_gaussian_noise,
    bicubic_downscale,
    bilinear_downscale,
    gaussian_blur,
    jpeg_compress,
)


def make_images(root: Path, shards: dict[str, int], size: tuple[int, int] = (40, 36), seed: int = 0) -> None:
    """Write ``count`` random smooth RGB PNGs into each ``root/shard`` folder."""
    rng = np.random.default_rng(seed)
    for shard, count in shards.items():
        folder = root / shard
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            small = rng.integers(0, 256, size=(size[1] // 4, size[0] // 4, 3), dtype=np.uint8)
            img = Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)
            img.save(folder / f"img{i:03d}.png")


def spec_for(root: Path, lanes: int = 2, buffer: int = 4, degradation: str = "bilinear", **kw):
    shards = scan_shards([str(root)], scale=2)
    return build_spec(shards, lanes, 7, buffer, 3, 8, 2, 3, Degradation(2, degradation), **kw)


def test_scan_recursive_shards_and_exclude(tmp_path: Path) -> None:
    make_images(tmp_path, {"a": 3, "a/deep": 2, "b": 4})
    (tmp_path / "b" / "notes.txt").write_text("not an image")
    shards = scan_shards([str(tmp_path)], exclude=["img001.png", "b/img003.png"])
    assert [len(s) for s in shards] == [2, 1, 2]  # a, a/deep, b; excluded by name and by path
    assert all(Path(r.hr).parent == Path(s[0].hr).parent for s in shards for r in s)


def test_scan_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such folder"):
        scan_shards([str(tmp_path / "missing")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        scan_shards([str(tmp_path / "empty")])


def test_paired_lookup_benchmark_naming(tmp_path: Path) -> None:
    make_images(tmp_path / "hr", {"": 2})
    (tmp_path / "lr").mkdir()
    for p in sorted((tmp_path / "hr").glob("*.png")):
        Image.open(p).resize((20, 18)).save(tmp_path / "lr" / f"{p.stem}x2.png")
    shards = scan_shards([str(tmp_path / "hr")], [str(tmp_path / "lr")], scale=2)
    assert [Path(r.lr).name for r in shards[0]] == ["img000x2.png", "img001x2.png"]
    (tmp_path / "lr" / "img001x2.png").unlink()
    with pytest.raises(DataError, match=r"img001\.png: no LR image"):
        scan_shards([str(tmp_path / "hr")], [str(tmp_path / "lr")], scale=2)


def test_split_lanes_balances_and_splits_shards() -> None:
    from swinir.data import ImageRecord

    shards = [[ImageRecord(f"{s}/{i}") for i in range(n)] for s, n in zip("abcd", (5, 1, 3, 2), strict=True)]
    lanes = split_lanes(shards, 2)
    assert sorted(sum(len(s) for s in lane) for lane in lanes) == [5, 6]
    assert sorted(r.hr for lane in lanes for s in lane for r in s) == sorted(r.hr for s in shards for r in s)
    few = split_lanes(shards[:1], 3)  # one shard, three lanes: split file by file
    assert [sum(len(s) for s in lane) for lane in few] == [2, 2, 1]
    with pytest.raises(DataError, match="cannot feed"):
        split_lanes([shards[1]], 2)


def test_patches_are_aligned_and_augmented(tmp_path: Path) -> None:
    """Bilinear x2 is a 2x2 box average, so every LR patch must be the box average of its HR patch,
    whatever crop, flip and rotation was drawn."""
    make_images(tmp_path, {"s": 4})
    spec = spec_for(tmp_path)
    stream = spec.stream(0)
    for c in range(30):
        lr, hr = stream.patch(c)
        assert lr.shape == (8, 8, 3) and hr.shape == (16, 16, 3)
        box = hr.reshape(8, 2, 8, 2, 3).astype(np.float64).mean(axis=(1, 3))
        assert np.abs(box - lr).max() <= 0.5 + 1e-9


def test_stream_is_deterministic_random_access_and_bounded(tmp_path: Path) -> None:
    make_images(tmp_path, {"a": 5, "b": 5, "c": 5})
    spec = spec_for(tmp_path, lanes=1, buffer=3)
    seq = spec.stream(0)
    first = [seq.patch(c) for c in range(60)]  # 60 patches, 3 per image: 20 images, > one epoch
    assert seq.decoded <= 3
    jumped = spec.stream(0)
    for c in (45, 46, 12, 59):
        lr, hr = jumped.patch(c)
        assert np.array_equal(lr, first[c][0]) and np.array_equal(hr, first[c][1])
    other_seed = build_spec(scan_shards([str(tmp_path)]), 1, 8, 3, 3, 8, 2, 3, Degradation(2, "bilinear"))
    assert not np.array_equal(other_seed.stream(0).patch(0)[1], first[0][1])


def test_epoch_order_goes_shard_by_shard(tmp_path: Path) -> None:
    make_images(tmp_path, {"a": 4, "b": 4, "c": 4})
    stream = spec_for(tmp_path, lanes=1).stream(0)
    for epoch in range(3):
        order = stream.order(epoch)
        shards = [Path(r.hr).parent.name for r in order]
        assert sorted(order, key=lambda r: r.hr) == sorted(stream.order(0), key=lambda r: r.hr)
        assert [shards[i] for i in range(0, 12, 4)] == [shards[i + 3] for i in range(0, 12, 4)]
    assert stream.order(0) != stream.order(1) or stream.order(1) != stream.order(2)


def test_loader_is_independent_of_processes_and_workers(tmp_path: Path) -> None:
    make_images(tmp_path, {"a": 3, "b": 3, "c": 3, "d": 3})
    spec = spec_for(tmp_path, lanes=4, buffer=8)
    whole = PatchLoader(spec, batch_size=8, start_step=0)
    it = iter(whole)
    batches = [next(it) for _ in range(3)]
    assert batches[0][0].shape == (8, 3, 8, 8) and batches[0][1].shape == (8, 3, 16, 16)
    assert batches[0][0].dtype == torch.float32 and batches[0][0].min() >= 0 and batches[0][0].max() <= 1
    ranks = [iter(PatchLoader(spec, batch_size=8, rank=r, world=2, workers=2)) for r in range(2)]
    for step in range(3):
        parts = [next(r) for r in ranks]
        for k in range(2):  # rank r holds global patches j with j % 2 == r
            merged = torch.stack([parts[j % 2][k][j // 2] for j in range(8)])
            assert torch.equal(merged, batches[step][k])
    resumed = next(iter(PatchLoader(spec, batch_size=8, start_step=2)))
    assert torch.equal(resumed[1], batches[2][1])
    with pytest.raises(DataError, match="multiples of the number of processes"):
        PatchLoader(spec, batch_size=8, rank=0, world=3)


def test_unusable_images_are_skipped_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    make_images(tmp_path, {"s": 3})
    (tmp_path / "s" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    Image.new("RGB", (10, 10)).save(tmp_path / "s" / "tiny.png")
    stream = spec_for(tmp_path, lanes=1, buffer=8).stream(0)
    for c in range(20):
        stream.patch(c)
    err = capsys.readouterr().err
    assert "broken.png: unreadable image" in err and "tiny.png: smaller than a 16x16 HR patch" in err


def test_random_degradations_are_seeded(tmp_path: Path) -> None:
    make_images(tmp_path, {"s": 2}, size=(64, 64))
    deg = Degradation(2, "bicubic", blur_prob=1.0, noise_prob=1.0, jpeg_prob=1.0)
    assert deg.random
    shards = scan_shards([str(tmp_path)])
    spec = build_spec(shards, 1, 3, 4, 4, 8, 2, 3, deg)
    a = [spec.stream(0).patch(c)[0] for c in range(3)]
    b = [spec.stream(0).patch(c)[0] for c in range(3)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    clean = build_spec(shards, 1, 3, 4, 4, 8, 2, 3, Degradation(2, "bicubic")).stream(0).patch(0)[0]
    assert not np.array_equal(clean, a[0])


def test_degradation_functions() -> None:
    rng = np.random.default_rng(0)
    img = np.kron(rng.integers(0, 256, (8, 8, 3)), np.ones((4, 4, 1))).astype(np.uint8)  # 32x32 blocks
    lr = bicubic_downscale(img, 2)
    assert lr.shape == (16, 16, 3) and lr.dtype == np.uint8
    flat = np.full((16, 16), 77, np.uint8)
    assert np.array_equal(bicubic_downscale(flat, 2), np.full((8, 8), 77, np.uint8))
    assert np.array_equal(bilinear_downscale(flat, 2), np.full((8, 8), 77, np.uint8))
    with pytest.raises(ValueError, match="multiple of the scale"):
        bicubic_downscale(img[:31], 2)
    blurred = gaussian_blur(img, 1.5)
    assert blurred.shape == img.shape and blurred.std() < img.std()
    assert np.array_equal(gaussian_blur(flat, 2.0), flat)
    noisy = add_gaussian_noise(img, 10.0, np.random.default_rng(1))
    assert 5 < np.abs(noisy.astype(float) - img).mean() < 12
    assert jpeg_compress(img, 30).shape == img.shape and not np.array_equal(jpeg_compress(img, 30), img)


def test_load_validation(tmp_path: Path) -> None:
    make_images(tmp_path, {"v": 3}, size=(41, 33))
    images = load_validation(str(tmp_path), 2, include=["v/img00[01].png"])
    assert [name for name, _, _ in images] == ["v/img000.png", "v/img001.png"]
    _, lr, hr = images[0]
    assert hr.shape == (32, 40, 3) and lr.shape == (16, 20, 3)


def test_validation_errors_name_the_file(tmp_path: Path) -> None:
    make_images(tmp_path, {"": 1})
    (tmp_path / "bad.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"bad\.png: unreadable validation image"):
        load_validation(str(tmp_path), 2)
    with pytest.raises(DataError, match="no validation images"):
        load_validation(str(tmp_path), 2, include=["nothing*"])


def test_worker_errors_are_one_line(tmp_path: Path) -> None:
    make_images(tmp_path, {"s": 2})
    for p in (tmp_path / "s").iterdir():
        p.write_bytes(b"broken")  # every image unusable
    spec = spec_for(tmp_path, lanes=1)
    with pytest.raises(DataError, match=r"^no usable image among 2 in the window") as info:
        next(iter(PatchLoader(spec, batch_size=2, workers=1)))
    assert "\n" not in str(info.value)
