"""JPEG quality estimation, --noise levels and the art model family."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from swinir.artgen import generate
from swinir.cli import main as cli_main
from swinir.jpeg_quality import choose_noise, estimate_quality, jpeg_tables, level_for_quality
from swinir.upscaler import Upscaler
from swinir.zoo import ZooError, bundled_path, find_model, noise_levels, with_noise


def jpeg_bytes(img: np.ndarray, quality: int, subsampling: int = 2) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=quality, subsampling=subsampling)
    return buf.getvalue()


@pytest.mark.parametrize("subsampling", [0, 2])
def test_quality_estimate_at_known_qualities(subsampling: int) -> None:
    img = generate(1, 64)
    for q in (10, 25, 35, 50, 60, 70, 85, 90, 95, 100):
        tables = Image.open(io.BytesIO(jpeg_bytes(img, q, subsampling))).quantization
        assert estimate_quality(tables) == q


def test_quality_estimate_for_gray_and_other_encoders() -> None:
    gray = np.asarray(Image.fromarray(generate(2, 64)).convert("L"))
    buf = io.BytesIO()
    Image.fromarray(gray).save(buf, "JPEG", quality=40)
    assert estimate_quality(Image.open(buf).quantization) == 40  # luminance table only
    # Tables not made by the IJG formula: the nearest IJG quality.
    tables = {0: [3] * 64, 1: [5] * 64}
    assert 80 <= (estimate_quality(tables) or 0) <= 99
    assert estimate_quality({}) is None


def test_levels_from_quality_and_files(tmp_path: Path) -> None:
    assert [level_for_quality(q) for q in (100, 96, 90, 76, 70, 51, 50, 20)] == [0, 0, 1, 1, 2, 2, 3, 3]
    img = generate(3, 64)
    (tmp_path / "q30.jpg").write_bytes(jpeg_bytes(img, 30))
    (tmp_path / "q85.jpg").write_bytes(jpeg_bytes(img, 85))
    Image.fromarray(img).save(tmp_path / "clean.png")
    (tmp_path / "not.jpg").write_text("hello")
    assert choose_noise(jpeg_tables(tmp_path / "q30.jpg")).level == 3
    assert choose_noise(jpeg_tables(tmp_path / "q85.jpg")).level == 1
    assert "quality about 85" in choose_noise(jpeg_tables(tmp_path / "q85.jpg")).reason
    assert choose_noise(jpeg_tables(tmp_path / "clean.png")).level == 0
    assert jpeg_tables(tmp_path / "not.jpg") is None


def test_family_names() -> None:
    assert noise_levels("art") == (0, 1, 2, 3)
    assert noise_levels("art-noise2") == (0, 1, 2, 3)
    assert noise_levels("default") == ()
    assert with_noise("art", 0) == "art" and with_noise("art", 3) == "art-noise3"
    assert with_noise("art-noise1", 2) == "art-noise2"
    assert with_noise("default", 0) == "default"
    with pytest.raises(ZooError, match="'default' has no noise levels"):
        with_noise("default", 2)
    for name in ("art", "art-noise1", "art-noise2", "art-noise3"):
        entry = find_model(name)
        assert entry is not None and entry.task == "bundled" and entry.scale == 2


def test_info_shows_the_family(capsys: pytest.CaptureFixture) -> None:
    assert cli_main(["info", "art-noise2"]) == 0
    out = capsys.readouterr().out
    assert "family           art (--noise 0), art-noise1 (--noise 1), art-noise2 (--noise 2)" in out
    assert cli_main(["info", "default"]) == 0
    assert "family" not in capsys.readouterr().out


def test_noise_errors(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    Image.fromarray(generate(4, 32)).save(tmp_path / "a.png")
    assert cli_main(["upscale", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "--noise", "2"]) == 2
    err = capsys.readouterr().err
    assert "--noise 2: model 'default' has no noise levels" in err and err.count("\n") == 1
    with pytest.raises(ZooError, match="no noise levels"):
        Upscaler("default", noise="auto")
    with pytest.raises(ValueError, match="noise must be"):
        Upscaler("art", noise=5)
    with pytest.raises(SystemExit):
        cli_main(["upscale", str(tmp_path / "a.png"), "--noise", "4"])
    assert not (tmp_path / "o").exists()


ART_FILES = [bundled_path(find_model(n)) for n in ("art", "art-noise1", "art-noise2", "art-noise3")]


def test_auto_noise_picks_per_file_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    missing = [p.name for p in ART_FILES if not p.is_file()]
    assert not missing, f"the bundled art models are part of the package: {missing}"
    img = generate(5, 48)
    src = tmp_path / "in"
    src.mkdir()
    (src / "heavy.jpg").write_bytes(jpeg_bytes(img, 30))
    Image.fromarray(img).save(src / "clean.png")
    out = tmp_path / "out"
    code = cli_main(
        ["upscale", str(src), "-o", str(out), "--model", "art", "--noise", "auto", "--format", "png"]
    )
    assert code == 0
    err = capsys.readouterr().err
    assert "heavy.jpg: noise level 3 (JPEG quality about 30)" in err
    assert "clean.png: noise level 0 (not a JPEG)" in err
    # The chosen member did the work: same pixels as asking for that level directly.
    direct = Upscaler("art", noise=3, tile=0).upscale(Image.open(src / "heavy.jpg"))
    assert np.array_equal(np.asarray(Image.open(out / "heavy_x2.png")), np.asarray(direct))
    clean = Upscaler("art", tile=0).upscale(Image.open(src / "clean.png"))
    assert np.array_equal(np.asarray(Image.open(out / "clean_x2.png")), np.asarray(clean))
    # The Python API chooses the same way for PIL images carrying JPEG tables.
    auto = Upscaler("art", noise="auto", tile=0)
    assert np.array_equal(np.asarray(auto.upscale(Image.open(src / "heavy.jpg"))), np.asarray(direct))
