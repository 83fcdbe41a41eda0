"""``swinir eval``: the published bicubic rows, folder scoring with stem matching, failures."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from swinir.cli import main
from swinir.evaluate import EvalError, match_by_stem, read_image, score_pair
from swinir.imresize import imresize
from tests.conftest import shared_path


def _eval(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["eval", "--quiet", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("scale", "lr_files", "want_psnr", "want_ssim"),
    [(2, True, 33.66, 0.9299), (4, False, 28.42, 0.8104)],
)
def test_set5_bicubic_matches_literature(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    scale: int,
    lr_files: bool,
    want_psnr: float,
    want_ssim: float,
) -> None:
    root = shared_path("datasets", "Set5")
    args = ["--model", "bicubic", "--hr-dir", str(root / "HR"), "--scale", str(scale)]
    if lr_files:  # the standard LR files; otherwise LR is made with our imresize (identical pixels)
        args += ["--lr-dir", str(root / "LR_bicubic" / f"X{scale}")]
    code, out, _ = _eval(capsys, *args, "--json", str(tmp_path / "r.json"), "--csv", str(tmp_path / "r.csv"))
    assert code == 0
    assert "mean (5)" in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert len(report["images"]) == 5
    mean = report["mean"]
    assert mean["psnr_y"] == pytest.approx(want_psnr, abs=0.02)
    assert mean["ssim_y"] == pytest.approx(want_ssim, abs=0.001)
    assert mean["psnr_rgb"] < mean["psnr_y"]  # chroma errors lower the RGB score
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert [r["name"] for r in rows] == ["baby", "bird", "butterfly", "head", "woman", "mean"]
    assert float(rows[-1]["psnr_y"]) == pytest.approx(mean["psnr_y"])


def test_gray_hr_modes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # bridge.png is mode L. As three equal channels Y = 16 + 219 v / 255, so errors shrink by
    # 219/255 against scoring the gray value itself: exactly 20 log10(255/219) dB on bicubic.
    hr_dir = tmp_path / "hr"
    hr_dir.mkdir()
    shutil.copy(shared_path("datasets", "Set14", "HR", "bridge.png"), hr_dir)
    scores = {}
    for mode in ("rgb", "y"):
        code, _, _ = _eval(
            capsys, "--model", "bicubic", "--hr-dir", str(hr_dir), "--scale", "2", "--gray", mode,
            "--json", str(tmp_path / f"{mode}.json"),
        )  # fmt: skip
        assert code == 0
        scores[mode] = json.loads((tmp_path / f"{mode}.json").read_text())["mean"]["psnr_y"]
    assert scores["rgb"] - scores["y"] == pytest.approx(20 * math.log10(255 / 219), abs=1e-9)


def test_sr_dir_with_suffixed_names_matches_model_scores(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hr = shared_path("datasets", "Set5", "HR")
    made = tmp_path / "made"
    code, _, _ = _eval(
        capsys, "--model", "bicubic", "--hr-dir", str(hr), "--scale", "2", "--save-dir", str(made),
        "--json", str(tmp_path / "model.json"),
    )  # fmt: skip
    assert code == 0
    sr_dir = tmp_path / "sr"
    sr_dir.mkdir()
    names = {
        "baby": "baby_x2",
        "bird": "birdx2",
        "butterfly": "butterfly_SwinIR",
        "head": "head",
        "woman": "woman-SR",
    }
    for stem, new in names.items():
        shutil.copy(made / f"{stem}.png", sr_dir / f"{new}.png")
    (sr_dir / "notes.txt").write_text("ignored")
    code, out, _ = _eval(
        capsys,
        "--sr-dir",
        str(sr_dir),
        "--hr-dir",
        str(hr),
        "--scale",
        "2",
        "--json",
        str(tmp_path / "sr.json"),
    )
    assert code == 0, out
    by_model = json.loads((tmp_path / "model.json").read_text())
    by_folder = json.loads((tmp_path / "sr.json").read_text())
    for key in ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb"):
        assert by_folder["mean"][key] == pytest.approx(by_model["mean"][key], abs=1e-12)
    assert by_folder["mean"]["seconds"] is None

    # A missing and a mis-sized SR image: each named, non-zero exit, no partial JSON.
    (sr_dir / "birdx2.png").unlink()
    Image.open(made / "head.png").crop((0, 0, 100, 100)).save(sr_dir / "head.png")
    code, out, err = _eval(
        capsys,
        "--sr-dir",
        str(sr_dir),
        "--hr-dir",
        str(hr),
        "--scale",
        "2",
        "--json",
        str(tmp_path / "bad.json"),
    )
    assert code == 1
    assert "no SR image for HR bird.png" in err
    assert "head.png: SR is 100x100, expected 280x280" in err
    assert not (tmp_path / "bad.json").exists()


def test_match_by_stem_rules() -> None:
    stems = ["baby", "img_01", "img_010", "a", "a_b"]
    files = [
        Path(n) for n in ["babyx2.png", "baby2.png", "img_01_SR.png", "img_010.png", "a_b_x2.png", "a.png"]
    ]
    matches, problems = match_by_stem(stems, files, 2)
    assert not problems
    assert {k: v.name for k, v in matches.items()} == {
        "baby": "babyx2.png",
        "img_01": "img_01_SR.png",
        "img_010": "img_010.png",
        "a": "a.png",
        "a_b": "a_b_x2.png",
    }
    # Several candidates: exact stem, then the one naming the scale, else ambiguous.
    matches, _ = match_by_stem(["x"], [Path("x_x4.png"), Path("x.png")], 4)
    assert matches["x"].name == "x.png"
    matches, _ = match_by_stem(["x"], [Path("x_x4.png"), Path("x_x2.png")], 4)
    assert matches["x"].name == "x_x4.png"
    matches, problems = match_by_stem(["x"], [Path("x_A.png"), Path("x_B.png")], 4)
    assert "x" not in matches and "x_A.png, x_B.png" in problems[0]


def _small_hr_dir(tmp_path: Path) -> Path:
    hr_dir = tmp_path / "hr"
    hr_dir.mkdir()
    rng = np.random.default_rng(0)
    for i, shape in enumerate([(48, 40, 3), (34, 50)]):  # one RGB, one gray, sizes not multiples of 4
        Image.fromarray(rng.integers(0, 256, size=shape, dtype=np.uint8)).save(hr_dir / f"im{i}.png")
    return hr_dir


def test_checkpoint_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    import swinir

    torch.manual_seed(0)
    config = swinir.SwinIRConfig(upscale=2, embed_dim=12, depths=(1,), num_heads=(2,), window_size=8)
    ckpt = tmp_path / "tiny.safetensors"
    swinir.save_model(swinir.build_model(config), ckpt)
    hr_dir = _small_hr_dir(tmp_path)
    code, out, _ = _eval(
        capsys, "--model", str(ckpt), "--hr-dir", str(hr_dir), "--save-dir", str(tmp_path / "sr"),
        "--json", str(tmp_path / "r.json"),
    )  # fmt: skip
    assert code == 0, out
    assert out.startswith("tiny  x2")  # scale taken from the checkpoint
    rows = json.loads((tmp_path / "r.json").read_text())["images"]
    assert [(r["name"], r["height"], r["width"]) for r in rows] == [("im0", 48, 40), ("im1", 34, 50)]
    assert all(r["seconds"] > 0 for r in rows)
    assert read_image(tmp_path / "sr" / "im1.png").shape == (34, 50, 3)  # gray in, RGB out

    code, _, err = _eval(capsys, "--model", str(ckpt), "--hr-dir", str(hr_dir), "--scale", "4")
    assert code == 2 and "model upscales x2, but --scale is 4" in err
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    code, _, err = _eval(capsys, "--model", str(bad), "--hr-dir", str(hr_dir))
    assert code == 2 and str(bad) in err and len(err.strip().splitlines()) == 1
    code, _, err = _eval(capsys, "--model", "no_such_model", "--hr-dir", str(hr_dir), "--scale", "2")
    assert code == 2 and "no_such_model" in err


def test_zoo_name_resolves_from_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    import swinir
    from swinir import zoo

    entry = next(m for m in zoo.list_models() if m.task == "classical_sr" and m.scale == 2)
    monkeypatch.setenv("SWINIR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SWINIR_ZOO_URL", "http://127.0.0.1:9")  # never reached: the file is cached
    torch.manual_seed(0)
    config = swinir.SwinIRConfig(upscale=2, embed_dim=12, depths=(1,), num_heads=(2,), window_size=8)
    swinir.save_model(swinir.build_model(config), tmp_path / "cache" / entry.filename)
    code, out, err = _eval(capsys, "--model", entry.name, "--hr-dir", str(_small_hr_dir(tmp_path)))
    assert code == 0, err
    assert out.startswith(f"{entry.name}  x2")


def test_tiled_model_matches_whole_image(tmp_path: Path) -> None:
    import torch

    import swinir
    from swinir.evaluate import evaluate_upscaler, model_upscaler

    torch.manual_seed(0)
    config = swinir.SwinIRConfig(upscale=2, embed_dim=12, depths=(1,), num_heads=(2,), window_size=8)
    model = swinir.build_model(config).eval()
    hr_dir = _small_hr_dir(tmp_path)
    whole = evaluate_upscaler(model_upscaler(model), hr_dir, 2)
    tiled = evaluate_upscaler(model_upscaler(model, tile=16, tile_overlap=4), hr_dir, 2)
    assert not whole.failures and not tiled.failures
    assert tiled.mean()["psnr_y"] == pytest.approx(whole.mean()["psnr_y"], abs=0.5)


def test_bad_images_reported_and_run_goes_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hr_dir = _small_hr_dir(tmp_path)
    (hr_dir / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    code, out, err = _eval(capsys, "--model", "bicubic", "--hr-dir", str(hr_dir), "--scale", "2")
    assert code == 1
    assert f"{hr_dir / 'broken.png'}: truncated or corrupt" in err
    assert "mean (2)" in out
    code, _, err = _eval(capsys, "--model", "bicubic", "--hr-dir", str(tmp_path / "nope"), "--scale", "2")
    assert code == 2 and "nope: not a folder" in err
    code, _, err = _eval(
        capsys, "--model", "bicubic", "--hr-dir", str(hr_dir), "--scale", "2", "--lr-dir", str(hr_dir)
    )
    assert code == 1 and "im0.png: LR is 40x48, expected 20x24 for HR im0.png at x2" in err


def test_score_pair_gray_y_mode_against_rgb_sr() -> None:
    rng = np.random.default_rng(3)
    hr = rng.integers(0, 256, size=(32, 32), dtype=np.uint8)
    sr = imresize(imresize(hr, 0.5), 2.0)
    # An RGB SR with equal channels scores exactly like the gray SR.
    assert score_pair(np.dstack([sr] * 3), hr, 2, "y") == score_pair(sr, hr, 2, "y")
    with pytest.raises(ValueError):
        score_pair(sr, hr, 2, "luma")
    with pytest.raises(EvalError):
        read_image("/nonexistent/file.png")


def test_bundled_model_beats_bicubic_as_its_card_says(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The shipped weights keep their promise: >= 2 dB over bicubic on Set5 x2 (Y), and the model
    card's Set5 row is what `swinir eval` measures now."""
    import re

    import swinir

    root = shared_path("datasets", "Set5")
    args = ["--model", "default", "--hr-dir", str(root / "HR"), "--lr-dir", str(root / "LR_bicubic" / "X2")]
    code, _, err = _eval(capsys, *args, "--json", str(tmp_path / "r.json"))
    assert code == 0, err
    mean = json.loads((tmp_path / "r.json").read_text())["mean"]
    assert mean["psnr_y"] >= 33.66 + 2.0
    card = (Path(swinir.__file__).parent / "weights" / "MODEL_CARD.md").read_text()
    row = re.search(r"^\| Set5 \| [\d.]+ / [\d.]+ \| \*\*([\d.]+) / ([\d.]+)\*\*", card, re.MULTILINE)
    assert row is not None, "the model card has no Set5 row"
    assert mean["psnr_y"] == pytest.approx(float(row.group(1)), abs=0.005)
    assert mean["ssim_y"] == pytest.approx(float(row.group(2)), abs=0.00005)


def test_no_progress_bar_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    """Logs and pipes get the results, not tqdm's carriage-return updates."""
    import subprocess
    import sys

    hr = tmp_path / "hr"
    hr.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(hr / f"{i}.png")
    done = subprocess.run(
        [sys.executable, "-m", "swinir", "eval", "--model", "bicubic", "--hr-dir", str(hr), "--scale", "2"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr and "\r" not in done.stdout
    assert "PSNR" in done.stdout or "psnr" in done.stdout.lower()


def test_art_models_match_their_card(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every shipped art model loads, and the art card's Set5 row for it (clean Set5 x2 input) is
    what `swinir eval` measures now."""
    import re

    import swinir

    root = shared_path("datasets", "Set5")
    card = (Path(swinir.__file__).parent / "weights" / "ART_MODEL_CARD.md").read_text()
    for name in ("art", "art-noise1", "art-noise2", "art-noise3"):
        row = re.search(rf"^\| Set5 \| `{name}` \| ([\d.]+) / ([\d.]+) \|", card, re.MULTILINE)
        assert row is not None, f"the art card has no Set5 row for {name}"
        args = ["--model", name, "--hr-dir", str(root / "HR"), "--lr-dir", str(root / "LR_bicubic" / "X2")]
        code, _, err = _eval(capsys, *args, "--json", str(tmp_path / f"{name}.json"))
        assert code == 0, err
        mean = json.loads((tmp_path / f"{name}.json").read_text())["mean"]
        assert mean["psnr_y"] == pytest.approx(float(row.group(1)), abs=0.005), name
        assert mean["ssim_y"] == pytest.approx(float(row.group(2)), abs=0.00005), name
