"""Fuzzing our readers: images, checkpoints and configs, mutated from real files.

A fixed seed and a fixed count of cases: the bundled sample image and model, the shipped configs, and
files written by our own writers and by Pillow (PNG 8/16-bit, JPEG, WebP, BMP, TIFF 8/16-bit, .pth,
training checkpoints) are mutated blindly (bit flips, overwritten, inserted and deleted bytes,
truncation, repeated blocks) and with their structure in mind (PNG sizes with valid checksums,
safetensors headers, torch pickles re-zipped with valid checksums, TOML values of other types).
Every case must end in the reader's result or in its one-line error naming the file: no other
exception (a traceback for a user), no hang (an alarm per case), and no allocation beyond a stated
bound (the cases run in a child process whose address space is capped at ``ADDRESS_SPACE``; its peak
resident memory must stay under ``PEAK_RSS``).

Run by pytest; ``python tests/test_fuzz_readers.py --child OUT`` is the child's entry point.
"""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import struct
import subprocess
import sys
import tempfile
import traceback
import zlib
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SEED = 11
COUNTS = {"image": 260, "checkpoint": 110, "config": 150}
MAX_PIXELS = 4_000_000  # the --max-pixels the image readers are called with
ADDRESS_SPACE = 3 << 30  # the child's virtual memory cap (torch and the interpreter take ~0.7 GB)
PEAK_RSS = 1 << 30  # the child's peak resident memory must stay under this
CASE_SECONDS = 10  # a case running longer counts as a hang


# ---------------------------------------------------------------------------------------------
# Mutations
# ---------------------------------------------------------------------------------------------


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    """One to four blind edits of ``data``."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(6)
        pos = rng.randrange(len(buf)) if buf else 0
        if kind == 0 and buf:  # bit flips
            for _ in range(rng.randint(1, 8)):
                i = rng.randrange(len(buf))
                buf[i] ^= 1 << rng.randrange(8)
        elif kind == 1 and buf:  # overwrite with random or extreme bytes
            n = rng.randint(1, 16)
            fill = rng.choice([bytes(rng.randrange(256) for _ in range(n)), b"\xff" * n, b"\0" * n])
            buf[pos : pos + n] = fill
        elif kind == 2:  # insert
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        elif kind == 3 and buf:  # delete
            del buf[pos : pos + rng.randint(1, 256)]
        elif kind == 4 and buf:  # truncate
            del buf[rng.randrange(len(buf)) :]
        elif buf:  # repeat a block
            n = rng.randint(1, 512)
            buf[pos:pos] = buf[pos : pos + n]
    return bytes(buf)


def png_with_size(data: bytes, rng: random.Random) -> bytes:
    """A PNG whose IHDR declares another size (and maybe depth/colour type), checksum recomputed."""
    if data[12:16] != b"IHDR":
        return mutate_bytes(data, rng)
    w, h, depth, color = struct.unpack(">IIBB", data[16:26])
    w, h = rng.choice([(w * 64, h * 64), (30000, 30000), (1, 1 << 31), (0, h), (w + 1, h), (2000, 2000)])
    if rng.random() < 0.3:
        depth, color = rng.choice([(16, 2), (1, 0), (8, 3), (16, 6), (4, 2)])
    body = struct.pack(">IIBB", w, h, depth, color) + data[26:29]
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + body) & 0xFFFFFFFF)
    return data[:16] + body + crc + data[33:]


def safetensors_header(data: bytes, rng: random.Random) -> bytes:
    """A safetensors file with one tensor's shape, dtype or offsets rewritten in its JSON header."""
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    names = [k for k in header if k != "__metadata__"]
    entry = header[rng.choice(names)]
    kind = rng.randrange(5)
    if kind == 0:
        entry["shape"] = [rng.choice([0, 1, 3000, 10**6, 2**40]) for _ in entry["shape"]] or [10**9]
    elif kind == 1:
        entry["shape"] = [*entry["shape"], 0]
    elif kind == 2:
        entry["dtype"] = rng.choice(["F64", "I8", "BOOL", "F8_E4M3", "XYZ"])
    elif kind == 3:
        entry["data_offsets"] = [0, rng.choice([0, 2**62, len(data) * 2])]
    else:
        meta = header.setdefault("__metadata__", {})
        cfg = json.loads(meta.get("swinir_config", "{}") or "{}")
        key = rng.choice(["embed_dim", "depths", "num_heads", "window_size", "upscale", "mlp_ratio"])
        cfg[key] = rng.choice([0, -1, 10**7, "big", [10**9], [0], 2.5, None])
        meta["swinir_config"] = json.dumps(cfg)
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data[8 + n :]


def torch_pickle(data: bytes, rng: random.Random) -> bytes:
    """A torch zip checkpoint whose pickle (sizes, keys, storage numels) is mutated and re-zipped, so
    the zip checksums hold and the mutation reaches torch's restricted unpickler."""
    import io
    import zipfile

    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as target:
        for name in source.namelist():
            member = source.read(name)
            if name.endswith("data.pkl"):
                member = mutate_bytes(member, rng)
            target.writestr(name, member)
    return out.getvalue()


_TOML_VALUES = [
    '"big"',
    "4",
    "-3",
    "[2.0, 0.9]",
    "nan",
    "inf",
    "true",
    "[]",
    "{a = 1}",
    '""',
    "1e400",
    "[[1]]",
]


def toml_value(data: bytes, rng: random.Random) -> bytes:
    """A TOML config with one value replaced by one of another type or range, or a line dropped."""
    lines = data.decode().splitlines()
    assignments = [i for i, line in enumerate(lines) if "=" in line and not line.lstrip().startswith("#")]
    i = rng.choice(assignments)
    if rng.random() < 0.15:
        del lines[i]
    else:
        key = lines[i].split("=", 1)[0]
        lines[i] = f"{key}= {rng.choice(_TOML_VALUES)}"
    return ("\n".join(lines) + "\n").encode()


# ---------------------------------------------------------------------------------------------
# Real files to start from
# ---------------------------------------------------------------------------------------------


def image_corpus(folder: Path) -> list[Path]:
    import numpy as np
    import tifffile
    from PIL import Image

    from swinir.imageio import encode_png16

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)
    im = Image.fromarray(rgb)
    files = [REPO / "src" / "swinir" / "assets" / "sample.png"]
    for name, save in [
        ("rgb.png", lambda p: im.save(p)),
        ("rgba.png", lambda p: im.convert("RGBA").save(p)),
        ("palette.png", lambda p: im.convert("P").save(p)),
        ("gray.png", lambda p: im.convert("L").save(p)),
        (
            "rgb16.png",
            lambda p: p.write_bytes(encode_png16(rng.integers(0, 65536, (12, 10, 3), dtype=np.uint16))),
        ),
        ("photo.jpg", lambda p: im.save(p, quality=90)),
        ("photo.webp", lambda p: im.save(p, quality=80)),
        ("pic.bmp", lambda p: im.save(p)),
        ("pic.tif", lambda p: im.save(p, compression="tiff_deflate")),
        ("pic16.tif", lambda p: tifffile.imwrite(p, rng.integers(0, 65536, (8, 8, 3), dtype=np.uint16))),
    ]:
        path = folder / name
        save(path)
        files.append(path)
    return files


def checkpoint_corpus(folder: Path) -> list[Path]:
    import torch

    from swinir.model import SwinIR, SwinIRConfig, preset
    from swinir.train import CHECKPOINT_FORMAT

    torch.manual_seed(0)
    cfg = SwinIRConfig.from_dict(
        {
            **preset("lightweight_x2").to_dict(),
            "depths": [1],
            "num_heads": [2],
            "embed_dim": 8,
            "window_size": 4,
        }
    )
    model = SwinIR(cfg)
    pth = folder / "official.pth"
    torch.save({"params_ema": model.state_dict()}, pth)
    train = folder / "step_00000002.pt"
    opt = torch.optim.Adam(model.parameters())
    torch.save(
        {
            "format": CHECKPOINT_FORMAT,
            "step": 2,
            "swinir_config": cfg.to_dict(),
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": {},
            "scaler": {},
            "rng": [],
        },
        train,
    )
    return [REPO / "src" / "swinir" / "weights" / "swinir_default_x2.safetensors", pth, train]


def config_corpus() -> list[Path]:
    return sorted((REPO / "configs").glob("*.toml"))


# ---------------------------------------------------------------------------------------------
# The child: run every case, report one JSON line per case
# ---------------------------------------------------------------------------------------------


class Hang(Exception):
    pass


def _readers() -> dict[str, tuple[Callable[[Path], object], tuple[type[BaseException], ...]]]:
    from swinir.checkpoint import CheckpointError, load_model
    from swinir.evaluate import EvalError
    from swinir.evaluate import read_image as eval_read
    from swinir.imageio import ImageReadError, read_image
    from swinir.train import read_training_checkpoint
    from swinir.train_config import ConfigError, load_config

    def checkpoint(path: Path) -> object:
        if path.suffix == ".pt":
            return read_training_checkpoint(path)
        return load_model(path)

    return {
        "image": (lambda p: read_image(p, max_pixels=MAX_PIXELS), (ImageReadError,)),
        "image-eval": (eval_read, (EvalError,)),
        "checkpoint": (checkpoint, (CheckpointError, ConfigError)),
        "config": (load_config, (ConfigError,)),
    }


def _cases(folder: Path) -> list[tuple[str, str, Path, bytes]]:
    """(reader, description, base file, mutated bytes) for every case, from the fixed seed."""
    rng = random.Random(SEED)
    cases: list[tuple[str, str, Path, bytes]] = []
    images = image_corpus(folder)
    for i in range(COUNTS["image"]):
        base = images[i % len(images)]
        data = base.read_bytes()
        smart = base.suffix == ".png" and rng.random() < 0.3
        mutated = png_with_size(data, rng) if smart else mutate_bytes(data, rng)
        cases.append(
            ("image-eval" if i % 5 == 4 else "image", "png-size" if smart else "bytes", base, mutated)
        )
    ckpts = checkpoint_corpus(folder)
    for i in range(COUNTS["checkpoint"]):
        base = ckpts[i % len(ckpts)]
        data = base.read_bytes()
        smart = rng.random() < 0.5
        mutation = (
            (safetensors_header if base.suffix == ".safetensors" else torch_pickle) if smart else mutate_bytes
        )
        how = ("header" if base.suffix == ".safetensors" else "pickle") if smart else "bytes"
        cases.append(("checkpoint", how, base, mutation(data, rng)))
    configs = config_corpus()
    for i in range(COUNTS["config"]):
        base = configs[i % len(configs)]
        data = base.read_bytes()
        smart = rng.random() < 0.7
        cases.append(
            (
                "config",
                "value" if smart else "bytes",
                base,
                (toml_value if smart else mutate_bytes)(data, rng),
            )
        )
    return cases


def child(report: Path) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    import torch

    torch.set_num_threads(1)
    readers = _readers()

    def alarm(_signum: int, _frame: object) -> None:
        raise Hang

    signal.signal(signal.SIGALRM, alarm)
    with tempfile.TemporaryDirectory() as tmp, open(report, "w") as out:
        folder = Path(tmp)
        for n, (reader, how, base, data) in enumerate(_cases(folder)):
            path = folder / f"case_{n:04d}{base.suffix}"
            path.write_bytes(data)
            read, expected = readers[reader]
            record = {"case": n, "reader": reader, "mutation": how, "base": base.name}
            signal.alarm(CASE_SECONDS)
            try:
                read(path)
                record["outcome"] = "read"
            except Hang:
                record["outcome"] = "hang"
            except expected as exc:
                record.update(outcome="error", message=str(exc), path=str(path))
            except BaseException as exc:  # what the fuzz is looking for
                record.update(outcome="traceback", message="".join(traceback.format_exception(exc))[-2000:])
            finally:
                signal.alarm(0)
            out.write(json.dumps(record) + "\n")
            out.flush()
            path.unlink()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
        out.write(json.dumps({"peak_rss": peak}) + "\n")


# ---------------------------------------------------------------------------------------------
# The test
# ---------------------------------------------------------------------------------------------


def test_readers_survive_mutated_files(tmp_path: Path) -> None:
    import pytest

    if sys.platform != "linux":  # pragma: no cover - the bounds use Linux's rlimits and ru_maxrss
        pytest.skip("the memory bounds of this test are Linux's")
    report = tmp_path / "report.jsonl"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(report)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    records = [json.loads(line) for line in report.read_text().splitlines()] if report.exists() else []
    assert done.returncode == 0, f"child died after {len(records)} records: {done.stderr[-3000:]}"
    # libtiff's C code may print one line about a damaged strip; Python warnings and logs must not show.
    for word in ("Warning", "Traceback", "tifffile", "raised"):
        assert word not in done.stderr, f"readers printed warnings or logs: {done.stderr[-2000:]}"
    peak = records.pop()["peak_rss"]
    assert len(records) == sum(COUNTS.values())
    bad = [r for r in records if r["outcome"] in ("hang", "traceback")]
    assert not bad, json.dumps(bad[:3], indent=1)
    for r in records:
        if r["outcome"] != "error":
            continue
        message = r["message"]
        assert "\n" not in message, r
        assert message.startswith(r["path"]), r
        assert "out of memory" not in message and "MemoryError" not in message, r
    assert peak < PEAK_RSS, f"peak resident memory {peak / 2**20:.0f} MiB"
    # The fuzz must reach past the first checks: some mutated files still read, many are refused.
    outcomes = [r["outcome"] for r in records]
    assert 0.05 < outcomes.count("read") / len(records) < 0.95, outcomes.count("read")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        sys.path.insert(0, str(REPO / "src"))
        child(Path(sys.argv[2]))
    else:
        sys.exit("usage: test_fuzz_readers.py --child REPORT.jsonl")
