"""Peak memory of training versus dataset size: the streaming loader keeps it flat.

Generates N_MAX images in 20 shard folders, then trains a tiny model (each run in a fresh process)
on the first 2 shards (200 images) and on all 20 (2,000 images), long enough for the loader to
stream through every image. Peak RSS of the trainer and of its data worker processes is reported,
next to the naive alternative of decoding the whole dataset into memory.

    .venv/bin/python benchmarks/train_memory.py [--images 2000] [--size 256] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

SHARDS = 20


def generate(root: Path, total: int, size: int) -> None:
    rng = np.random.default_rng(0)
    per = total // SHARDS
    for s in range(SHARDS):
        folder = root / f"shard{s:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per):
            small = rng.integers(0, 256, size=(size // 8, size // 8, 3), dtype=np.uint8)
            img = Image.fromarray(small).resize((size, size), Image.Resampling.BILINEAR)
            img.save(folder / f"{i:04d}.png")


def child(args: argparse.Namespace) -> None:
    """Train and print peak RSS (MiB) as JSON."""
    from swinir.train import Trainer
    from swinir.train_config import config_from_dict

    dirs = sorted(str(p) for p in Path(args.root).iterdir())[: args.shards]
    batch = 16
    steps = args.images_used // batch + 10  # patches_per_image 1: every image gets decoded
    raw = {
        "model": {"preset": "lightweight_x2", "embed_dim": 12, "depths": [1], "num_heads": [2]},
        "data": {
            "train_dirs": dirs,
            "patch_size": 16,
            "batch_size": batch,
            "lanes": 4,
            "buffer_images": 32,
            "patches_per_image": 1,
            "workers": args.workers,
        },
        "schedule": {"kind": "constant", "total_steps": steps},
        "training": {"ema_decay": 0.999, "threads": 1},
        "logging": {
            "out_dir": args.out,
            "log_every": 1000,
            "save_every": 10**6,
            "tensorboard": False,
        },
    }
    t0 = time.perf_counter()
    trainer = Trainer(config_from_dict(raw), progress=False)
    trainer.run()
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"images": trainer.num_images, "steps": steps, "main_mib": own, "worker_mib": workers,
                      "seconds": time.perf_counter() - t0}))  # fmt: skip


def naive(args: argparse.Namespace) -> None:
    """Decode every image into a list (what a map-style in-memory dataset does); print peak RSS."""
    from swinir.data import list_images, read_image

    dirs = sorted(Path(args.root).iterdir())[: args.shards]
    held = [read_image(str(p), 3) for d in dirs for p in list_images(d)]
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"images": len(held), "main_mib": own}))


def run_child(mode: str, root: Path, shards: int, images: int, workers: int, out: Path) -> dict:
    cmd = [sys.executable, __file__, f"--{mode}", "--root", str(root), "--shards", str(shards)]
    cmd += ["--images-used", str(images), "--workers", str(workers), "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--size", type=int, default=256, help="side of the generated square images")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--naive", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--root", help=argparse.SUPPRESS)
    p.add_argument("--shards", type=int, default=SHARDS, help=argparse.SUPPRESS)
    p.add_argument("--images-used", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args)
    if args.naive:
        return naive(args)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        generate(root, args.images, args.size)
        per = args.images // SHARDS
        print(f"{args.images} generated {args.size}x{args.size} images in {SHARDS} shards; "
              f"buffer 32 images, {args.workers} workers")  # fmt: skip
        print(f"{'images':>7} {'steps':>6} {'trainer MiB':>12} {'worker MiB':>11} {'naive MiB':>10} {'s':>6}")
        rows = []
        for shards in (2, SHARDS):
            n = shards * per
            r = run_child("child", root, shards, n, args.workers, Path(tmp) / f"run{shards}")
            nv = run_child("naive", root, shards, n, 0, Path(tmp) / "naive")
            rows.append((r, nv))
            print(f"{r['images']:>7} {r['steps']:>6} {r['main_mib']:>12.0f} {r['worker_mib']:>11.0f} "
                  f"{nv['main_mib']:>10.0f} {r['seconds']:>6.0f}")  # fmt: skip
        (small, small_nv), (big, big_nv) = rows
        ratio = big["main_mib"] / small["main_mib"]
        wratio = big["worker_mib"] / small["worker_mib"]
        print(f"trainer peak RSS ratio {big['images']}/{small['images']} images: {ratio:.3f} "
              f"(workers {wratio:.3f}); naive: {big_nv['main_mib'] / small_nv['main_mib']:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
