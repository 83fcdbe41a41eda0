"""Files and disks that bad luck or an attacker provide: crashes mid-write, full disks, FIFOs, device
links, dangling links, unreadable folders, damaged headers, bombs, and names with control characters.

Each test re-runs a probe of issue 11 and asserts the one-line message, the exit status and that
nothing partial is left. Full disks are real (a small tmpfs) where this process may mount one, and
are also simulated at the write layer (``fsync`` reporting ENOSPC, as it does on NFS) everywhere.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import swinir
from swinir import atomic
from swinir.atomic import WriteError, atomic_path, remove_stale_temps
from swinir.cli import main
from swinir.imageio import ImageReadError, incomplete_reason, read_image
from swinir.model import SwinIR, SwinIRConfig, preset
from swinir.paths import printable

from .conftest import tiny_train_args

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> str:
    torch.manual_seed(0)
    base = {**preset("lightweight_x2").to_dict(), "depths": [1], "num_heads": [2], "embed_dim": 8}
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    swinir.save_model(SwinIR(SwinIRConfig.from_dict(base)), path)
    return str(path)


def _images(folder: Path, count: int, size: int = 16) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    out = []
    for i in range(count):
        path = folder / f"img_{i:02d}.png"
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
        out.append(path)
    return out


@contextmanager
def small_disk(where: Path, size: str = "1m") -> Iterator[Path]:
    """A real tmpfs of ``size`` mounted at ``where``; skips when this process may not mount."""
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root; the simulated full-disk variant runs instead")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()}); the simulated variant runs")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(folder: Path) -> None:
    """Write a filler file until the file system is full."""
    with open(folder / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def _fsync_full(monkeypatch: pytest.MonkeyPatch, only: str = "") -> None:
    """Simulate a full disk at the write layer: ``fsync`` of matching files reports ENOSPC."""
    real = atomic.make_durable

    def full(path: str | os.PathLike[str]) -> None:
        if only in os.fspath(path):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(path)

    monkeypatch.setattr(atomic, "make_durable", full)


# ---------------------------------------------------------------------------------------------
# Atomic, durable writes and stale temporary files
# ---------------------------------------------------------------------------------------------


def test_atomic_write_syncs_file_and_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else str(fd))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    target = tmp_path / "out.bin"
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"data")
    assert target.read_bytes() == b"data"
    if os.path.exists("/proc/self/fd"):
        assert any(".swinir-" in s for s in synced), synced  # the data, before the rename
        assert str(tmp_path) in synced, synced  # the folder, after it
    else:  # pragma: no cover - without /proc only the count is checked
        assert len(synced) == 2


def test_stale_temps_of_dead_processes_are_removed_and_nothing_else(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(dead.stdout)
    stale = tmp_path / f".img_03_x2.png.swinir-{pid}-abc123_z.tmp"
    live = tmp_path / f".other.png.swinir-{os.getpid()}-q1w2e3r4.tmp"
    foreign = [tmp_path / ".img.png.ab12cd34.tmp", tmp_path / "notes.swinir-1-x.tmp", tmp_path / "a.png"]
    for p in [stale, live, *foreign]:
        p.write_bytes(b"x")
    assert remove_stale_temps(tmp_path) == [stale]
    assert sorted(tmp_path.iterdir()) == sorted([live, *foreign])
    assert remove_stale_temps(tmp_path / "missing") == []


def test_upscale_removes_stale_temps_of_a_killed_run(tmp_path: Path, model: str) -> None:
    _images(tmp_path / "in", 2)
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    stale = out / f".img_00_x2.png.swinir-{int(dead.stdout)}-k9k9k9k9.tmp"
    stale.write_bytes(b"\x89PNG half")
    assert main(["upscale", str(tmp_path / "in"), "-o", str(out), "-m", model, "-q"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["img_00_x2.png", "img_01_x2.png"]


def test_skip_existing_redoes_empty_and_truncated_outputs(tmp_path: Path, model: str, capsys) -> None:
    _images(tmp_path / "in", 3)
    out = tmp_path / "out"
    assert main(["upscale", str(tmp_path / "in"), "-o", str(out), "-m", model, "-q"]) == 0
    good = (out / "img_00_x2.png").read_bytes()
    (out / "img_01_x2.png").write_bytes(b"")  # what a power loss can leave
    (out / "img_02_x2.png").write_bytes(good[: len(good) // 2])
    assert main(["upscale", str(tmp_path / "in"), "-o", str(out), "-m", model, "--skip-existing"]) == 0
    err = capsys.readouterr().err
    assert "img_01_x2.png exists but is empty (0 bytes); making it again" in err
    assert "img_02_x2.png exists but is cut short" in err
    assert "2 written, 1 skipped, 0 failed" in err
    for name in ("img_01_x2.png", "img_02_x2.png"):
        assert incomplete_reason(out / name) is None
        assert read_image(out / name).width == 32


def test_incomplete_reason_per_format(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8))
    for fmt, ext in [("PNG", "png"), ("JPEG", "jpg"), ("WEBP", "webp"), ("BMP", "bmp"), ("TIFF", "tif")]:
        path = tmp_path / f"a.{ext}"
        img.save(path, format=fmt)
        assert incomplete_reason(path) is None, fmt
        data = path.read_bytes()
        path.write_bytes(data[: len(data) - 40])
        assert incomplete_reason(path) is not None, fmt
    flipped = bytearray((tmp_path / "a.png").read_bytes())
    img.save(tmp_path / "b.png")
    flipped = bytearray((tmp_path / "b.png").read_bytes())
    flipped[60] ^= 0xFF
    (tmp_path / "b.png").write_bytes(bytes(flipped))
    assert incomplete_reason(tmp_path / "b.png") == "damaged (a PNG chunk fails its checksum)"


# ---------------------------------------------------------------------------------------------
# Full disks
# ---------------------------------------------------------------------------------------------


def _count_upscales(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = swinir.Upscaler.upscale_data

    def counting(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(swinir.Upscaler, "upscale_data", counting)
    return calls


def _check_full_disk_run(src: Path, out: Path, model: str, calls: list[int], capsys) -> None:
    assert main(["upscale", str(src), "-o", str(out), "-m", model]) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err
    assert "stopping: no space left on device; 7 image(s) not processed" in err
    assert len(calls) == 1, "the run went on computing images it could not write"
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "a temporary file was left"
    assert "Traceback" not in err


def test_folder_run_on_a_full_disk_stops_early(tmp_path: Path, model: str, capsys, monkeypatch) -> None:
    _images(tmp_path / "in", 8)
    calls = _count_upscales(monkeypatch)
    with small_disk(tmp_path / "disk", "64k") as disk:
        fill(disk)
        _check_full_disk_run(tmp_path / "in", disk, model, calls, capsys)


def test_folder_run_on_a_full_disk_stops_early_simulated(
    tmp_path: Path, model: str, capsys, monkeypatch
) -> None:
    _images(tmp_path / "in", 8)
    calls = _count_upscales(monkeypatch)
    _fsync_full(monkeypatch)
    out = tmp_path / "out"
    out.mkdir()
    _check_full_disk_run(tmp_path / "in", out, model, calls, capsys)
    assert list(out.iterdir()) == []


def _train_raw(root: Path, out: Path) -> list[str]:
    from tests.test_data import make_images

    make_images(root / "train", {"a": 4}, size=(24, 24))
    return tiny_train_args(root / "train", out, 4)


def test_training_on_a_full_disk_says_so(tmp_path: Path, capsys) -> None:
    from swinir.train import Trainer
    from swinir.train_config import load_config

    with small_disk(tmp_path / "disk", "2m") as disk:
        args = _train_raw(tmp_path, disk / "run")
        overrides = [a for a in args[1:-2] if a != "--set"] + [f'logging.out_dir="{disk / "run"}"']
        trainer = Trainer(load_config(None, overrides), on_step=lambda t: fill(disk) if t.step == 1 else None)
        with pytest.raises(WriteError, match=r"step_00000002\.pt: No space left on device") as info:
            trainer.run()
        assert info.value.disk_full
        leftovers = [p.name for p in (disk / "run" / "checkpoints").iterdir()]
        assert leftovers == [], leftovers  # no partial checkpoint, no temporary file


def test_training_on_a_full_disk_cli_message(tmp_path: Path, capsys, monkeypatch) -> None:
    _fsync_full(monkeypatch, only="step_")
    assert main(_train_raw(tmp_path, tmp_path / "run")) == 1
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.endswith(
        "step_00000002.pt: No space left on device (free some space, then continue with --resume)"
    )
    assert "enforce fail" not in err and "Traceback" not in err
    assert list((tmp_path / "run" / "checkpoints").iterdir()) == []


# ---------------------------------------------------------------------------------------------
# FIFOs, device links, dangling links, damaged headers, bombs, control characters in names
# ---------------------------------------------------------------------------------------------


def test_special_files_are_named_for_what_they_are(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.png")
    os.symlink("/dev/zero", tmp_path / "zero.png")
    os.symlink(tmp_path / "gone.png", tmp_path / "dangling.png")
    cases = {
        "pipe.png": "not a regular file: a FIFO (named pipe)",
        "zero.png": "not a regular file: a symbolic link to /dev/zero, a character device",
        "dangling.png": f"broken symbolic link (it points to {tmp_path / 'gone.png'}, which does not exist)",
    }
    for name, reason in cases.items():
        with pytest.raises(ImageReadError) as info:
            read_image(tmp_path / name)  # a FIFO would block forever if opened
        assert str(info.value) == f"{tmp_path / name}: {reason}"


def test_upscale_reports_special_files_in_a_folder(tmp_path: Path, model: str, capsys) -> None:
    src = tmp_path / "in"
    _images(src, 1)
    os.mkfifo(src / "pipe.png")
    os.symlink("/dev/zero", src / "zero.png")
    os.symlink(src / "gone.png", src / "dangling.png")
    assert main(["upscale", str(src), "-o", str(tmp_path / "out"), "-m", model]) == 1
    err = capsys.readouterr().err
    assert f"{src / 'pipe.png'}: not a regular file: a FIFO (named pipe)" in err
    assert "zero.png: not a regular file: a symbolic link to /dev/zero, a character device" in err
    assert "dangling.png: broken symbolic link" in err
    assert "no such file" not in err
    assert "1 written, 0 skipped, 3 failed" in err
    # The same files given one by one.
    assert (
        main(["upscale", str(src / "pipe.png"), str(src / "dangling.png"), "-o", str(tmp_path / "o2")]) == 1
    )
    err = capsys.readouterr().err
    assert "pipe.png: not a regular file: a FIFO" in err and "dangling.png: broken symbolic link" in err


def _png(width: int, height: int, idat: bytes = b"", bad_crc: bool = False) -> bytes:
    def chunk(kind: bytes, data: bytes, crc_xor: int = 0) -> bytes:
        crc = (zlib.crc32(kind + data) & 0xFFFFFFFF) ^ crc_xor
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr, 0x1 if bad_crc else 0)
        + chunk(b"IDAT", idat or zlib.compress(b"\0" * (1 + 3 * width) * height))
        + chunk(b"IEND", b"")
    )


def test_bad_ihdr_checksum_is_called_a_corrupt_png(tmp_path: Path) -> None:
    path = tmp_path / "bad_crc.png"
    path.write_bytes(_png(4, 4, bad_crc=True))
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    assert str(info.value) == f"{path}: corrupt PNG file (the IHDR header chunk fails its CRC checksum)"


def test_huge_png_gets_our_max_pixels_message(tmp_path: Path, model: str, capsys) -> None:
    path = tmp_path / "huge.png"
    path.write_bytes(_png(30000, 30000, idat=zlib.compress(b"\0" * 64)))  # 900 MP declared, 100 bytes
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    message = str(info.value)
    assert "decompression bomb" not in message
    assert message == (
        f"{path}: too large: 900.0 megapixels exceeds the limit of 89.5 megapixels "
        "(raise it with --max-pixels or max_pixels=)"
    )
    assert main(["upscale", str(path), "-o", str(tmp_path / "out"), "-m", model]) == 1
    assert "--max-pixels" in capsys.readouterr().err


def test_control_characters_in_names_are_printed_escaped(tmp_path: Path, model: str, capsys) -> None:
    src = tmp_path / "in"
    src.mkdir()
    good = src / "ok\nFAKE: line.png"
    Image.fromarray(np.zeros((12, 12, 3), np.uint8)).save(good, format="PNG")
    (src / "bad\x1b[31mred.png").write_bytes(b"not a png")
    assert main(["upscale", str(src), "-o", str(tmp_path / "out"), "-m", model]) == 1
    captured = capsys.readouterr()
    for text in (captured.out, captured.err):
        assert "\x1b" not in text
        assert "\nFAKE" not in text
    assert "ok\\nFAKE: line.png ->" in captured.out
    assert "bad\\x1b[31mred.png: not an image" in captured.err
    assert printable("a\udcffb") == "a\\xffb"
    assert (tmp_path / "out" / "ok\nFAKE: line_x2.png").is_file()  # the file itself keeps its name


# ---------------------------------------------------------------------------------------------
# Unreadable folders and files (as an unprivileged user: root reads everything)
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A folder an unprivileged user can reach (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="swinir-perm-"))
    path.chmod(0o755)
    yield path
    for dirpath, dirnames, _ in os.walk(path):
        for d in dirnames:
            os.chmod(os.path.join(dirpath, d), 0o755)
    shutil.rmtree(path, ignore_errors=True)


_CALLS = """
import contextlib, io, json, sys
from swinir.cli import main
results = []
for args in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(args)
    results.append([code, err.getvalue()])
print(json.dumps(results))
"""


def _run_unprivileged(calls: list[list[str]], cwd: Path) -> list[tuple[int, str]]:
    """Run CLI calls in one process where file permissions apply: as is for a normal user; for
    root, without the capabilities that bypass them (``setpriv``), else as ``nobody``."""
    env = {**os.environ, "HOME": str(cwd), "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-c", _CALLS, json.dumps(calls)]
    user: int | None = None
    if os.geteuid() == 0:
        caps = "-dac_override,-dac_read_search"
        if shutil.which("setpriv"):
            command = ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}", *command]
        else:
            user = 65534  # nobody; needs an interpreter that user can run
    try:
        done = subprocess.run(command, user=user, env=env, cwd=cwd, capture_output=True, text=True)
    except PermissionError:
        pytest.skip("no way to run without root's file access here (no setpriv, no usable 'nobody')")
    assert done.returncode == 0, done.stderr
    return [(code, err) for code, err in json.loads(done.stdout.strip().splitlines()[-1])]


def test_unreadable_folders_and_files(shared_tmp: Path, model: str) -> None:
    root = shared_tmp
    shutil.copy(model, root / "tiny.safetensors")
    (root / "tiny.safetensors").chmod(0o644)
    locked = root / "locked"
    _images(locked, 1)
    open_dir = root / "open"
    _images(open_dir, 2)
    (open_dir / "img_01.png").chmod(0o000)
    for p in (root, open_dir):
        p.chmod(0o777)
    locked.chmod(0o000)
    (root / "train.toml").write_text(
        'seed = 0\n[model]\npreset = "lightweight_x2"\nembed_dim = 8\ndepths = [1]\nnum_heads = [2]\n'
        f'[data]\ntrain_dirs = ["{locked}"]\nworkers = 0\n[logging]\nout_dir = "{root / "run"}"\n'
    )

    (up1, up1_err), (up2, up2_err), (ev, ev_err), (tr, tr_err) = _run_unprivileged(
        [
            ["upscale", str(locked), "-o", str(root / "o1"), "-m", "tiny.safetensors"],
            ["upscale", str(open_dir), "-o", str(root / "o2"), "-m", "tiny.safetensors"],
            ["eval", "--hr-dir", str(locked), "--model", "bicubic", "--scale", "2"],
            ["train", "--config", "train.toml"],
        ],
        root,
    )
    assert up1 == 1, up1_err
    assert f"{locked}: cannot read the folder (permission denied)" in up1_err

    assert up2 == 1, up2_err
    assert f"{open_dir / 'img_01.png'}: permission denied (cannot open the file for reading)" in up2_err
    assert "truncated or corrupt" not in up2_err
    assert "1 written, 0 skipped, 1 failed" in up2_err

    assert ev == 2, ev_err
    assert f"swinir eval: {locked}: permission denied (cannot list the folder)" in ev_err

    assert tr == 2, tr_err
    assert f"{locked}: cannot read the folder (Permission denied)" in tr_err
    assert "no images found" not in tr_err


def test_atomic_path_passes_other_errors_through(tmp_path: Path) -> None:
    target = tmp_path / "model.bin"
    with pytest.raises(TimeoutError), atomic_path(target) as tmp:  # e.g. a download that timed out
        tmp.write_bytes(b"part")
        raise TimeoutError("timed out")
    with pytest.raises(WriteError, match=r"model\.bin: No space left on device") as info, atomic_path(target):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert info.value.disk_full
    assert list(tmp_path.iterdir()) == []


_KILLED_WRITER = """
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("atomic", sys.argv[1])
atomic = importlib.util.module_from_spec(spec)
spec.loader.exec_module(atomic)
with atomic.atomic_path(sys.argv[2]) as tmp:
    with open(tmp, "wb") as f:
        f.write(b"new, but only half")
        f.flush()
        print("writing", flush=True)
        time.sleep(60)
"""


def test_kill_9_mid_write_keeps_the_old_file_and_the_next_run_removes_the_temp(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"old, complete")
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(REPO / "src" / "swinir" / "atomic.py"), str(target)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "writing\n"
    proc.kill()
    proc.wait()
    temps = [p for p in tmp_path.iterdir() if p != target]
    assert len(temps) == 1 and temps[0].name.startswith(f".out.png.swinir-{proc.pid}-")
    assert target.read_bytes() == b"old, complete"
    assert remove_stale_temps(tmp_path) == temps
    assert list(tmp_path.iterdir()) == [target]
