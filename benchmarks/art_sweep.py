"""Short training runs that choose the art model's architecture and recipe by measurement.

Each candidate is the art recipe (``configs/art/art_x2_cpu.toml``) with a few ``--set`` overrides,
trained for ``--steps`` steps on one thread; all candidates run at the same time so that they share
the machine's load alike. For every run the script records the held-out validation PSNR curve (from
the run's ``log.jsonl``) and the process's own CPU time (user + system, from ``os.wait4``), and ranks
candidates by validation gain per CPU-hour, the gain counted from the PSNR of the weights the run
started from (bicubic's for runs from scratch) on the same images. Each run leaves a
``result.json`` (CPU time, exit code), and the table covers every candidate with one in ``--out``,
so candidates started by separate invocations land in one table.

    .venv/bin/python benchmarks/art_sweep.py --steps 400 --out runs/art_sweep --markdown sweep.md
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CONFIG = "configs/art/art_x2_cpu.toml"
SMALL = ["model.embed_dim=32", "model.depths=[4, 4, 4]", "model.num_heads=[4, 4, 4]"]
GROWN = ["model.embed_dim=32", "model.depths=[6, 6, 6, 6]", "model.num_heads=[4, 4, 4, 4]"]
LARGER = ["model.embed_dim=48", "model.depths=[4, 4, 4, 4]", "model.num_heads=[6, 6, 6, 6]"]


@dataclass(frozen=True)
class Candidate:
    name: str
    what: str
    overrides: tuple[str, ...]


CANDIDATES = (
    # Session 4 (idle machine): every candidate continues from the shipped ``art`` weights (v0 at
    # the time), so the sweep asks what the next CPU-hour is best spent on. "art" names whatever
    # the package ships now: rebuilding the table after a re-export measures the start anew.
    Candidate(
        "small-bf16",
        "default's shape, from art v0, bf16 autocast, mixed filters",
        (*SMALL, "training.init_from=art", "training.precision=bf16"),
    ),
    Candidate(
        "small-bf16-bicubic",
        "default's shape, from art v0, bf16 autocast, MATLAB bicubic LR only",
        (
            *SMALL,
            "training.init_from=art",
            "training.precision=bf16",
            'data.filters=["bicubic"]',
            "data.filter_weights=[1.0]",
        ),
    ),
    Candidate(
        "small-bf16-p48",
        "default's shape, from art v0, bf16 autocast, mixed filters, 48x48 LR patches",
        (*SMALL, "training.init_from=art", "training.precision=bf16", "data.patch_size=48"),
    ),
    Candidate(
        "small-bf16-bicubic-lr5e-4",
        "default's shape, from art v0, bf16 autocast, MATLAB bicubic LR only, lr 5e-4",
        (
            *SMALL,
            "training.init_from=art",
            "training.precision=bf16",
            'data.filters=["bicubic"]',
            "data.filter_weights=[1.0]",
            "optim.lr=5e-4",
        ),
    ),
    Candidate(
        "small-fp32",
        "default's shape, from art v0, fp32, mixed filters",
        (*SMALL, "training.init_from=art", "training.precision=fp32"),
    ),
    Candidate(
        "grown-bf16",
        "art v0 grown to depths 6x4 (new blocks start as identity), bf16 autocast, mixed filters",
        (*GROWN, "training.init_from=art", "training.precision=bf16"),
    ),
    Candidate(
        "larger-bf16-scratch",
        "embed 48, depths 4x4, heads 6, from scratch, bf16 autocast, mixed filters",
        (*LARGER, 'training.init_from=""', "training.precision=bf16", "optim.lr=5e-4"),
    ),
)


def held_out(config: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(LR, HR) pairs of the recipe's held-out images, as its [validation] section makes them."""
    from swinir.data import load_validation
    from swinir.train_config import load_config

    cfg = load_config(config)
    v = cfg.validation
    images = load_validation(v.hr_dir, cfg.model.upscale, 3, v.lr_dir, v.include, v.max_images)
    return [(lr, hr) for _, lr, hr in images]


def mean_psnr(images: list[tuple[np.ndarray, np.ndarray]], upscale) -> float:
    """Mean Y-PSNR of ``upscale(LR)`` against HR, border 2 (x2, as validation scores)."""
    from swinir.metrics import psnr

    return float(np.mean([psnr(np.asarray(upscale(lr)), hr, crop_border=2) for lr, hr in images]))


def start_value(images: list[tuple[np.ndarray, np.ndarray]], init: str) -> float:
    """Validation PSNR of the weights a candidate starts from (``init``, a model name or file),
    or of bicubic upscaling for a run from scratch (``init`` empty)."""
    if not init:
        from swinir.evaluate import bicubic_upscaler

        return mean_psnr(images, bicubic_upscaler(2))
    from swinir.upscaler import Upscaler

    return mean_psnr(images, Upscaler(init, device="cpu", tile=0).upscale)


def init_of(c: Candidate, config: str) -> str:
    """What a candidate starts from: its ``training.init_from`` override, else the recipe's."""
    for o in c.overrides:
        if o.startswith("training.init_from="):
            return o.split("=", 1)[1].strip('"')
    from swinir.train_config import load_config

    return load_config(config).training.init_from


def curve(log: Path) -> list[tuple[int, float]]:
    out = []
    for line in log.read_text().splitlines():
        rec = json.loads(line)
        if "val_psnr" in rec:
            out.append((int(rec["step"]), float(rec["val_psnr"])))
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=CONFIG)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--every", type=int, default=100, help="validation interval (steps)")
    p.add_argument("--out", default="runs/art_sweep")
    p.add_argument("--only", nargs="*", help="candidate names to run (default: all)")
    p.add_argument("--markdown", help="write the table to this file too")
    args = p.parse_args()

    chosen = [c for c in CANDIDATES if not args.only or c.name in args.only]
    procs: dict[int, tuple[Candidate, float, Path]] = {}
    for c in chosen:
        out = Path(args.out) / c.name
        cmd = [
            sys.executable, "-m", "swinir.train", "--config", args.config, "--out-dir", str(out),
            "--set", f"schedule.total_steps={args.steps}", "--set", "schedule.warmup_steps=50",
            "--set", f"validation.every={args.every}", "--set", f"logging.save_every={args.steps}",
            "--set", "training.threads=1", "--set", "logging.tensorboard=false",
        ]  # fmt: skip
        for o in c.overrides:
            cmd += ["--set", o]
        out.mkdir(parents=True, exist_ok=True)
        log = open(out / "stderr.txt", "w")  # noqa: SIM115 - closed when the child ends
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"}
        )
        procs[proc.pid] = (c, time.time(), out)
        print(f"started {c.name} (pid {proc.pid})", file=sys.stderr)

    while procs:
        pid, status, usage = os.wait4(-1, 0)
        if pid not in procs:
            continue
        c, t0, out = procs.pop(pid)
        cpu_h = (usage.ru_utime + usage.ru_stime) / 3600
        code = os.waitstatus_to_exitcode(status)
        result = {"exit": code, "cpu_h": cpu_h, "wall_s": time.time() - t0, "steps": args.steps}
        (out / "result.json").write_text(json.dumps(result) + "\n")
        print(f"{c.name}: exit {code}, {cpu_h:.3f} CPU-h", file=sys.stderr)

    # The table covers every candidate with a result in --out, so runs started by separate
    # invocations (e.g. one added later) land in one table.
    rows = []
    for c in CANDIDATES:
        out = Path(args.out) / c.name
        if not (out / "result.json").exists():
            continue
        result = json.loads((out / "result.json").read_text())
        pts = curve(out / "log.jsonl") if (out / "log.jsonl").exists() else []
        final = pts[-1][1] if pts else float("nan")
        rows.append((c, result["exit"], result["cpu_h"], result["wall_s"], pts, final))

    # Each run is ranked by what it added to its starting point per CPU-hour: the validation PSNR
    # of the weights it started from, or bicubic's for runs from scratch.
    images = held_out(args.config)
    starts = {i: start_value(images, i) for i in {init_of(r[0], args.config) for r in rows}}

    def rate(row: tuple) -> float:
        c, _code, cpu_h, _wall, _pts, final = row
        if cpu_h <= 0 or not np.isfinite(final):
            return float("nan")
        return (final - starts[init_of(c, args.config)]) / cpu_h

    rows.sort(key=lambda r: -rate(r) if np.isfinite(rate(r)) else 0)
    steps_hdr = sorted({s for r in rows for s, _ in r[4]})
    named = ", ".join(f"{i or 'scratch (bicubic)'} {v:.2f}" for i, v in sorted(starts.items()))
    lines = [
        f"Held-out validation PSNR (dB, Y, x2) after each step count, {args.steps} steps per run, "
        f"batch 16, one thread per run. Start values: {named}.",
        "",
        "| candidate | " + " | ".join(map(str, steps_hdr)) + " | CPU-h | gain over its start per CPU-h |",
        "|---|" + "---|" * len(steps_hdr) + "---|---|",
    ]
    for row in rows:
        c, code, cpu_h, _wall, pts, _final = row
        by = dict(pts)
        cells = " | ".join(f"{by[s]:.2f}" if s in by else "-" for s in steps_hdr)
        lines.append(
            f"| {c.what} | {cells} | {cpu_h:.3f} | {rate(row):.2f} dB |" + ("" if code == 0 else " (failed)")
        )
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
