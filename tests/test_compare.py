"""``swinir compare``: sheet layout, labels, PSNR, crop choice, and errors.

The miku images are CC BY-NC: they are read from ../shared and written only to tmp_path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from swinir.cli import main
from swinir.compare import Panel, compare, pick_crop
from swinir.evaluate import bicubic_upscaler, resolve_upscaler
from swinir.imresize import imresize
from swinir.metrics import psnr
from tests.conftest import shared_path


def _tiny_checkpoint(path: Path) -> Path:
    import torch

    import swinir

    torch.manual_seed(0)
    config = swinir.SwinIRConfig(upscale=2, embed_dim=12, depths=(1,), num_heads=(2,), window_size=8)
    swinir.save_model(swinir.build_model(config), path)
    return path


def _label_has_ink(sheet: np.ndarray, box: tuple[int, int, int, int]) -> bool:
    x0, y0, x1, y1 = box
    strip = sheet[y0:y1, x0:x1]
    return bool((strip.min(axis=2) < 128).sum() > 20)  # dark text pixels on the white strip


def test_miku_with_model_and_waifu2x(tmp_path: Path) -> None:
    folder = shared_path("datasets", "waifu2x_images")
    ckpt = _tiny_checkpoint(tmp_path / "tiny.safetensors")
    out = tmp_path / "sheet.png"
    layout = compare(
        folder / "miku_small.png",
        out,
        models=[resolve_upscaler(str(ckpt), None)],
        others=[("waifu2x", str(folder))],  # a folder: picks miku_small_waifu2x.png among 456x318 files
    )
    assert layout["scale"] == 2
    assert [p["name"] for p in layout["panels"]] == ["LR (nearest)", "bicubic", "tiny", "waifu2x"]
    sheet = np.asarray(Image.open(out).convert("RGB"))
    assert (sheet.shape[1], sheet.shape[0]) == layout["size"]
    x, y, w, h = layout["crop"]
    assert min(x, y) >= 0 and x + w <= 456 and y + h <= 318
    assert layout["zoom"] >= 2
    waifu = np.asarray(Image.open(folder / "miku_small_waifu2x.png").convert("RGB"))
    for panel in layout["panels"]:
        x0, y0, x1, y1 = panel["image"]
        assert (x1 - x0, y1 - y0) == (456, 318)
        cx0, cy0, cx1, cy1 = panel["crop_box"]
        assert (cx1 - cx0, cy1 - cy0) == (w * layout["zoom"], h * layout["zoom"])
        assert panel["label_box"][1] == y1  # the label strip sits under the panel
        assert _label_has_ink(sheet, panel["label_box"]), panel["name"]
        assert panel["psnr"] is None  # no HR given
    # The waifu2x panel shows that file's pixels, except for the 1-pixel red outline of the crop.
    x0, y0, x1, y1 = layout["panels"][3]["image"]
    outline = np.zeros((318, 456), dtype=bool)
    outline[max(y - 1, 0) : y + h + 1, max(x - 1, 0) : x + w + 1] = True
    outline[y : y + h, x : x + w] = False
    shown = sheet[y0:y1, x0:x1]
    np.testing.assert_array_equal(shown[~outline], waifu[~outline])
    assert np.all(shown[outline] == (255, 0, 0))
    # The zoomed crop is the nearest-neighbour enlargement of the region.
    cx0, cy0, _, _ = layout["panels"][3]["crop_box"]
    z = layout["zoom"]
    np.testing.assert_array_equal(
        sheet[cy0 : cy0 + z * 3 : z, cx0 : cx0 + z * 3 : z], waifu[y : y + 3, x : x + 3]
    )


def test_with_hr_psnr_labels_explicit_crop_and_wrapping(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hr_file = shared_path("datasets", "Set5", "HR", "bird.png")
    hr = np.asarray(Image.open(hr_file))
    lr = imresize(hr, 0.5)
    Image.fromarray(lr).save(tmp_path / "bird.png")
    Image.fromarray(imresize(lr, 2.0)).save(tmp_path / "other.png")
    out = tmp_path / "bird_sheet.png"
    other = f"same={tmp_path / 'other.png'}"
    code = main(
        ["compare", str(tmp_path / "bird.png"), "--hr", str(hr_file), "--other", other,
         "--crop", "10,20,40,30", "--max-width", "700", "-o", str(out)]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "4 panels, x2, crop 10,20,40,30" in printed
    layout = compare(
        tmp_path / "bird.png", out, hr_path=hr_file, others=[("same", str(tmp_path / "other.png"))],
        crop="10,20,40,30", max_width=700,
    )  # fmt: skip
    names = [p["name"] for p in layout["panels"]]
    assert names == ["LR (nearest)", "bicubic", "same", "HR"]
    assert layout["columns"] == 2 and layout["crop"] == (10, 20, 40, 30)
    bicubic = layout["panels"][1]
    assert bicubic["psnr"] == pytest.approx(psnr(imresize(lr, 2.0), hr, 2))
    assert bicubic["label"].startswith("bicubic  ") and bicubic["label"].endswith(" dB")
    assert f"{bicubic['psnr']:.2f} dB" in printed
    assert layout["panels"][0]["psnr"] < bicubic["psnr"]  # nearest is worse than bicubic
    assert layout["panels"][3]["psnr"] is None
    sheet = np.asarray(Image.open(out).convert("RGB"))
    assert (sheet.shape[1], sheet.shape[0]) == layout["size"]
    for panel in layout["panels"]:
        assert _label_has_ink(sheet, panel["label_box"])


def test_pick_crop_finds_disagreement() -> None:
    base = np.full((64, 80, 3), 128, dtype=np.uint8)
    other = base.copy()
    other[40:50, 10:20] = 255
    panels = [Panel("LR", base, is_method=False), Panel("a", base), Panel("b", other)]
    x, y, w, h = pick_crop(panels, 16)
    assert (w, h) == (16, 16)
    assert x <= 10 and x + w >= 20 and y <= 40 and y + h >= 50


def test_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lr = np.zeros((20, 30, 3), dtype=np.uint8)
    Image.fromarray(lr).save(tmp_path / "lr.png")
    Image.fromarray(np.zeros((41, 59, 3), dtype=np.uint8)).save(tmp_path / "odd.png")
    cases = [
        (["--scale", "2", "--other", f"x={tmp_path / 'odd.png'}"], "odd.png: x is 59x41, expected 60x40"),
        (["--scale", "2", "--crop", "50,0,20,20"], "outside the 60x40 output"),
        (["--scale", "2", "--other", "nameonly"], "expected NAME=PATH_OR_DIR"),
        ([], "cannot tell the scale"),
    ]
    for extra, message in cases:
        out = tmp_path / "sheet.png"
        assert main(["compare", str(tmp_path / "lr.png"), "-o", str(out), *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
        assert not out.exists()
    assert bicubic_upscaler(2)(lr).shape == (40, 60, 3)
