"""``swinir upscale``: folders with good and bad files, naming, formats, skip-existing, outscale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import png
import pytest
from PIL import Image

from swinir.cli import main
from swinir.imageio import encode_png16

RNG = np.random.default_rng(0)


pytestmark = pytest.mark.usefixtures("one_thread")


def _u8(*shape: int) -> np.ndarray:
    return RNG.integers(0, 256, shape, dtype=np.uint8)


def _folder(root: Path) -> Path:
    src = root / "in"
    src.mkdir()
    Image.fromarray(_u8(12, 16, 3)).save(src / "rgb.png")
    rgba = _u8(12, 16, 4)
    rgba[:, :8, 3] = 0
    Image.fromarray(rgba).save(src / "rgba.png")
    Image.fromarray(_u8(12, 16)).save(src / "gray.png")
    Image.fromarray(RNG.integers(0, 65536, (12, 16), dtype=np.uint16)).save(src / "gray16.png")
    (src / "rgb16.png").write_bytes(encode_png16(RNG.integers(0, 65536, (12, 16, 3), dtype=np.uint16)))
    Image.fromarray(_u8(12, 16, 3)).save(src / "photo.jpg", quality=90)
    good = (src / "rgb.png").read_bytes()
    (src / "truncated.png").write_bytes(good[: len(good) // 2])
    (src / "empty.png").write_bytes(b"")
    (src / "notes.png").write_text("this is text, not a picture\n")
    (src / "readme.txt").write_text("ignored: not an image extension\n")
    return src


def _run(*argv: str) -> int:
    return main(["upscale", *argv])


def test_folder_with_good_and_bad_files(
    tmp_path: Path, tiny_model: str, capsys: pytest.CaptureFixture
) -> None:
    src = _folder(tmp_path)
    out = tmp_path / "out"
    code = _run(str(src), "-o", str(out), "--model", tiny_model, "--tile", "16", "--tile-overlap", "4")
    err = capsys.readouterr().err
    assert code == 1
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "gray16_x2.png",
        "gray_x2.png",
        "photo_x2.jpg",
        "rgb16_x2.png",
        "rgb_x2.png",
        "rgba_x2.png",
    ]
    with Image.open(out / "rgba_x2.png") as im:
        assert im.mode == "RGBA" and im.size == (32, 24)
        assert np.asarray(im)[:, :, 3].min() < 255  # transparency kept
    with Image.open(out / "gray_x2.png") as im:
        assert im.mode == "L" and im.size == (32, 24)
    with Image.open(out / "gray16_x2.png") as im:
        assert im.mode == "I;16"
    _, _, _, info = png.Reader(filename=str(out / "rgb16_x2.png")).read()
    assert info["bitdepth"] == 16 and not info["greyscale"] and info["size"] == (32, 24)
    with Image.open(out / "photo_x2.jpg") as im:
        assert im.format == "JPEG" and im.size == (32, 24)
    for name, reason in [("truncated.png", "truncated or corrupt"), ("empty.png", "file is empty"),
                         ("notes.png", "not an image")]:  # fmt: skip
        lines = [line for line in err.splitlines() if name in line]
        assert len(lines) == 1 and reason in lines[0], (name, err)  # reported once, when it happens
    assert "6 written, 0 skipped, 3 failed (reasons above)" in err


def test_skip_existing_and_quiet(tmp_path: Path, tiny_model: str, capsys: pytest.CaptureFixture) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for i in range(2):
        Image.fromarray(_u8(10, 10, 3)).save(src / f"{i}.png")
    out = tmp_path / "out"
    assert _run(str(src), "-o", str(out), "--model", tiny_model, "-q") == 0
    assert capsys.readouterr().err == ""
    first = (out / "0_x2.png").stat().st_mtime_ns
    (out / "1_x2.png").unlink()
    assert _run(str(src), "-o", str(out), "--model", tiny_model, "--skip-existing") == 0
    assert "1 written, 1 skipped, 0 failed" in capsys.readouterr().err
    assert (out / "0_x2.png").stat().st_mtime_ns == first and (out / "1_x2.png").exists()


def test_single_file_outscale_format_and_suffix(tmp_path: Path, tiny_model: str) -> None:
    src = tmp_path / "pic.png"
    Image.fromarray(_u8(10, 12, 3)).save(src)
    assert (
        _run(str(src), "-o", str(tmp_path / "exact.jpg"), "--model", tiny_model, "--outscale", "3", "-q") == 0
    )
    with Image.open(tmp_path / "exact.jpg") as im:
        assert im.format == "JPEG" and im.size == (36, 30)
    assert _run(str(src), "-o", str(tmp_path / "d"), "--model", tiny_model, "--outscale", "1.5", "-q") == 0
    with Image.open(tmp_path / "d" / "pic_x1.5.png") as im:
        assert im.size == (18, 15)
    assert (
        _run(str(src), "-o", str(tmp_path / "w"), "--model", tiny_model, "-f", "webp", "-s", "_big", "-q")
        == 0
    )
    assert (tmp_path / "w" / "pic_big.webp").is_file()
    # Next to the input by default; never over the input itself.
    assert _run(str(src), "--model", tiny_model, "-q") == 0 and (tmp_path / "pic_x2.png").is_file()
    assert _run(str(src), "--model", tiny_model, "-s", "", "-q") == 1


def test_recursive_keeps_the_tree(tmp_path: Path, tiny_model: str) -> None:
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(_u8(8, 8, 3)).save(src / "a.png")
    Image.fromarray(_u8(8, 8, 3)).save(src / "sub" / "b.bmp")
    out = tmp_path / "out"
    assert _run(str(src), "-o", str(out), "--model", tiny_model, "-q") == 0
    assert not (out / "sub").exists()
    assert _run(str(src), "-o", str(out), "--model", tiny_model, "-r", "-q", "--skip-existing") == 0
    assert (out / "sub" / "b_x2.bmp").is_file()


def test_model_and_option_errors(tmp_path: Path, tiny_model: str, capsys: pytest.CaptureFixture) -> None:
    img = tmp_path / "x.png"
    Image.fromarray(_u8(8, 8, 3)).save(img)
    assert _run(str(img), "--model", str(tmp_path / "nope.pth")) == 2
    assert "nope.pth: no such file" in capsys.readouterr().err
    # An overlap too large for the tile is reduced, and the run says so; a tile under the window fails.
    assert _run(str(img), "--model", tiny_model, "--tile", "16", "--tile-overlap", "8") == 0
    assert "tile 16 leaves no room for a 8-pixel overlap; using a 4-pixel overlap" in capsys.readouterr().err
    assert _run(str(img), "--model", tiny_model, "--tile", "7") == 2
    assert "tile 7 is smaller than the model's window (8 pixels)" in capsys.readouterr().err
    assert _run(str(img), "--model", "defualt") == 2
    assert "did you mean 'default'?" in capsys.readouterr().err
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    assert _run(str(img), "--model", str(notes)) == 2
    assert "notes.txt: is a text file, not a checkpoint" in capsys.readouterr().err
    assert _run(str(img), str(img), "-o", str(tmp_path / "one.png"), "--model", tiny_model) == 2
    assert "several inputs" in capsys.readouterr().err
    assert _run(str(tmp_path / "missing.png"), "--model", tiny_model, "-q") == 1
    assert "missing.png: no such file" in capsys.readouterr().err
    assert _run("--list-models") == 0
    listing = capsys.readouterr().out
    assert "classical-x2" in listing and "real-large-x4-gan" in listing and "default" in listing


def test_missing_input_fails_before_the_model_loads(
    tmp_path: Path, tiny_model: str, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import swinir.upscaler

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(swinir.upscaler.Upscaler, "__init__", refuse)
    assert _run(str(tmp_path / "missing.png"), "--model", tiny_model) == 1
    err = capsys.readouterr().err
    assert err.strip() == f"swinir upscale: {tmp_path / 'missing.png'}: no such file or folder"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _run(str(empty), "--model", tiny_model) == 1
    assert "no images found" in capsys.readouterr().err


def test_skipped_subfolders_and_animated_gifs_are_named(
    tmp_path: Path, tiny_model: str, capsys: pytest.CaptureFixture
) -> None:
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(_u8(8, 8, 3)).save(src / "sub" / "b.png")
    frames = [Image.fromarray(_u8(8, 8, 3)) for _ in range(3)]
    frames[0].save(src / "anim.gif", save_all=True, append_images=frames[1:], duration=50)
    assert _run(str(src), "-o", str(tmp_path / "out"), "--model", tiny_model) == 0
    err = capsys.readouterr().err
    assert f"{src}: 1 subfolder(s) not searched (add --recursive to include them)" in err
    assert "anim.gif: has 3 frames (animated or multi-page); only the first is upscaled" in err
    assert (tmp_path / "out" / "anim_x2.png").is_file()


def test_header_names_model_device_precision_backend_and_tiles(
    tmp_path: Path, tiny_model: str, capsys: pytest.CaptureFixture
) -> None:
    img = tmp_path / "x.png"
    Image.fromarray(_u8(20, 24, 3)).save(img)
    assert _run(str(img), "--model", tiny_model, "--precision", "int8") == 0
    captured = capsys.readouterr()
    header = captured.err.splitlines()[0]
    for part in ["tiny.safetensors", "x2", "on cpu", "int8", "torch back end", "whole images up to"]:
        assert part in header, header
    # int8 on a thin model is known to be slower: said once.
    assert captured.err.count("--precision int8 is slower than fp32 for thin models") == 1
    assert "whole image" in captured.out
    assert _run(str(img), "--model", tiny_model, "--tile", "16", "--tile-overlap", "4") == 0
    assert "4 tiles of 16x16" in capsys.readouterr().out


def test_tile_and_memory_options_are_checked_without_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from swinir.cli import main\n"
        "for argv in (['--help'], ['upscale', '--help'], ['upscale', '--list-models'],"
        " ['upscale', 'x.png', '--tile', 'big'], ['upscale', 'x.png', '--max-memory', '-1']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print('torch' in sys.modules, 'numpy' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "False False"
    assert "expected 'auto' or a number of pixels, got 'big'" in done.stderr
    assert "--max-memory: must be positive" in done.stderr


def test_overlap_default_matches_tiling() -> None:
    from swinir.commands import upscale
    from swinir.tiling import DEFAULT_OVERLAP

    assert upscale.DEFAULT_OVERLAP == DEFAULT_OVERLAP
