"""Mixed precision and gradient checkpointing against fp32: loss curves, speed, peak memory.

1. Loss curves: the same short training run (same data, same initial weights) in fp32, with bf16
   autocast, and with gradient checkpointing; reports the largest deviation from the fp32 curve.
2. Peak memory of one forward+backward on a 128x128 LR patch (lightweight_x2 preset) with and
   without gradient checkpointing, each in a fresh process (peak RSS growth on CPU, peak allocated
   memory on GPU).

    .venv/bin/python benchmarks/train_precision.py [--steps 30] [--patch 128] [--batch 1]

On a CPU without native bf16, bf16 autocast is much slower than fp32: mixed precision is for GPUs.
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


def make_data(root: Path, count: int = 24, size: int = 96) -> None:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        small = rng.integers(0, 256, size=(size // 8, size // 8, 3), dtype=np.uint8)
        Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC).save(root / f"{i:03d}.png")


def loss_curve(root: Path, out: Path, steps: int, **training: object) -> tuple[list[float], float]:
    from swinir.train import Trainer
    from swinir.train_config import config_from_dict

    raw = {
        "seed": 1,
        "model": {
            "preset": "lightweight_x2",
            "embed_dim": 24,
            "depths": [2, 2],
            "num_heads": [4, 4],
            "drop_path_rate": 0.0,
        },
        "data": {"train_dirs": [str(root)], "patch_size": 32, "batch_size": 8, "lanes": 2, "workers": 0},
        "optim": {"lr": 5e-4},
        "schedule": {"kind": "constant", "total_steps": steps},
        "training": {"ema_decay": 0.0, **training},
        "logging": {"out_dir": str(out), "log_every": 10**6, "save_every": 10**6, "tensorboard": False},
    }
    trainer = Trainer(config_from_dict(raw), progress=False)
    losses: list[float] = []
    step = trainer.train_step
    trainer.train_step = lambda lr, hr: losses.append(step(lr, hr)) or losses[-1]  # type: ignore[method-assign]
    t0 = time.perf_counter()
    trainer.run()
    return losses, (time.perf_counter() - t0) / steps


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def memory_child(patch: int, batch: int, checkpointing: bool) -> None:
    """One forward+backward; print the peak memory it added (MiB) as JSON."""
    import torch

    from swinir.model import SwinIR, swinir_lightweight_x2

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    model = SwinIR(swinir_lightweight_x2()).to(device).train()
    model.set_grad_checkpointing(checkpointing)
    x = torch.rand(batch, 3, patch, patch, device=device)
    y = torch.rand(batch, 3, 2 * patch, 2 * patch, device=device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _rss_mib()
    t0 = time.perf_counter()
    (model(x) - y).abs().mean().backward()
    seconds = time.perf_counter() - t0
    if device == "cuda":
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base
    print(json.dumps({"device": device, "peak_mib": peak, "seconds": seconds}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--patch", type=int, default=128, help="LR patch side for the memory test")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--memory-child", choices=("on", "off"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.memory_child:
        return memory_child(args.patch, args.batch, args.memory_child == "on")

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        make_data(root)
        ref, t_ref = loss_curve(root, Path(tmp) / "fp32", args.steps)
        print(f"loss curves over {args.steps} steps (embed 24, depths 2x2, batch 8 of 32x32 LR patches)")
        print(f"  fp32:                  first {ref[0]:.5f} last {ref[-1]:.5f}  {t_ref:.3f} s/step")
        for name, kw in (
            ("bf16 autocast", {"precision": "bf16"}),
            ("grad checkpointing", {"grad_checkpointing": True}),
        ):
            curve, t = loss_curve(root, Path(tmp) / name.split()[0], args.steps, **kw)
            dev = max(abs(a - b) / abs(b) for a, b in zip(curve, ref, strict=True))
            print(f"  {name + ':':22s} first {curve[0]:.5f} last {curve[-1]:.5f}  {t:.3f} s/step "
                  f"({t / t_ref:.2f}x fp32), max relative deviation from fp32 {dev:.2e}")  # fmt: skip

    rows = {}
    for mode in ("off", "on"):
        cmd = [sys.executable, __file__, "--memory-child", mode, "--patch", str(args.patch)]
        cmd += ["--batch", str(args.batch)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        rows[mode] = json.loads(out.strip().splitlines()[-1])
    off, on = rows["off"], rows["on"]
    print(f"peak memory of one forward+backward, lightweight_x2, batch {args.batch} of "
          f"{args.patch}x{args.patch} LR patches, on {off['device']}:")  # fmt: skip
    print(f"  without checkpointing: {off['peak_mib']:8.0f} MiB  {off['seconds']:.2f} s")
    print(f"  with checkpointing:    {on['peak_mib']:8.0f} MiB  {on['seconds']:.2f} s "
          f"({on['peak_mib'] / off['peak_mib']:.2f}x memory, "
          f"{on['seconds'] / off['seconds']:.2f}x time)")  # fmt: skip


if __name__ == "__main__":
    main()
