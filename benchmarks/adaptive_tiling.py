"""Adaptive tiling: upscale time with the default options against whole-image runs, and peak memory.

``speed`` (default): for each input size, ``Upscaler("default")`` with its default options (adaptive
tiles) against ``--tile 0`` (whole image) and against the previous default (full 256-pixel tiles,
``--tile 256`` before adaptive tiling), interleaved in one process, median of ``--repeat`` runs
after a warm-up. Inputs are smooth random RGB images (the network's cost does not depend on
content). The ratio default / whole should be about 1.00 wherever the whole image fits the budget.

``memory``: a fresh child process runs ``Upscaler.upscale_file`` (read PNG, tiles, write PNG) on a
SIZE x SIZE RGB image with the default options and reports its peak resident-memory growth over the
call (``/proc/self/clear_refs`` + ``VmHWM``) against the memory budget and the estimate behind the
tile plan (``swinir.memory``). The network's own peak is also measured for whole images of a few
sizes, against the estimate's per-pixel coefficient.

    .venv/bin/python benchmarks/adaptive_tiling.py                       # 256 288 512 827x1170
    .venv/bin/python benchmarks/adaptive_tiling.py speed --sizes 512 --repeat 3
    .venv/bin/python benchmarks/adaptive_tiling.py memory --size 4096
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _image(height: int, width: int, seed: int = 0):  # -> np.ndarray (H, W, 3) uint8
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    low = rng.integers(0, 256, (max(2, height // 8), max(2, width // 8), 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(low).resize((width, height), Image.Resampling.BICUBIC))


def _parse_size(text: str) -> tuple[int, int]:
    w, _, h = text.partition("x")
    return (int(h or w), int(w))


def speed(ns: argparse.Namespace) -> list[dict]:
    import torch

    import swinir
    from swinir.imageio import from_array
    from swinir.tiling import DEFAULT_OVERLAP, TilePlan, tile_starts

    torch.set_num_threads(ns.threads)
    auto = swinir.Upscaler("default", device="cpu")
    whole = swinir.Upscaler("default", device="cpu", tile=0)
    old = swinir.Upscaler("default", device="cpu", tile=256)

    def old_plan(data) -> TilePlan:  # full 256-pixel tiles, as before adaptive tiling
        h, w = data.height, data.width
        th, tw = min(256, h), min(256, w)
        ys = tuple(tile_starts(h, th, DEFAULT_OVERLAP, 8)) if h > 256 else (0,)
        xs = tuple(tile_starts(w, tw, DEFAULT_OVERLAP, 8)) if w > 256 else (0,)
        if h <= 256 and w <= 256:
            return TilePlan(h, w, h, w, (0,), (0,))
        return TilePlan(h, w, th, tw, ys, xs)

    old.plan = old_plan  # type: ignore[method-assign]
    print(f"bundled model, CPU, {ns.threads} threads, median of {ns.repeat} after a warm-up")
    print(f"{'input':>10s} {'default plan':>22s} {'default':>8s} {'tile 0':>8s} {'ratio':>6s} "
          f"{'old 256':>8s} {'old plan':>18s} {'ratio':>6s}")  # fmt: skip
    rows = []
    for text in ns.sizes:
        h, w = _parse_size(text)
        arr = _image(h, w)
        data = from_array(arr)
        runs = {"default": auto, "tile0": whole, "old256": old}
        if ns.no_old:
            del runs["old256"]
        times: dict[str, list[float]] = {k: [] for k in runs}
        for up in runs.values():  # warm-up: caches for this size
            up.upscale(arr)
        outputs = {}
        for _ in range(ns.repeat):
            for k, up in runs.items():
                t0 = time.perf_counter()
                outputs[k] = up.upscale(arr)
                times[k].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) for k, v in times.items()}
        med.setdefault("old256", float("nan"))
        # Same plan, same computation: then the outputs must be identical and any time difference
        # is the machine's noise.
        same = auto.plan(data) == whole.plan(data) and (outputs["default"] == outputs["tile0"]).all()
        row = {
            "input": f"{w}x{h}",
            "default_plan": auto.plan(data).describe(),
            "old_plan": old.plan(data).describe(),
            **{f"{k}_s": round(v, 2) for k, v in med.items()},
            "default_vs_tile0": round(med["default"] / med["tile0"], 3),
            "old_vs_tile0": round(med["old256"] / med["tile0"], 3),
            "same_plan_and_output": bool(same),
        }
        rows.append(row)
        print(f"{row['input']:>10s} {row['default_plan']:>22s} {med['default']:7.2f}s {med['tile0']:7.2f}s "
              f"{row['default_vs_tile0']:6.2f} {med['old256']:7.2f}s {row['old_plan']:>18s} "
              f"{row['old_vs_tile0']:6.2f}", flush=True)  # fmt: skip
    return rows


def memory_child(size: int, threads: int) -> dict:
    import torch
    from PIL import Image

    import swinir
    from swinir.commands.benchmark import PeakMemory
    from swinir.imageio import read_image

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.png"
        Image.fromarray(_image(size, size)).save(src, compress_level=1)
        up = swinir.Upscaler("default", device="cpu")
        data = read_image(src)
        plan = up.plan(data)
        estimate = up.memory.peak(size, size, plan.tile_h * plan.tile_w, plan.whole, up.batch)
        del data
        t0 = time.perf_counter()
        with PeakMemory() as peak:
            up.upscale_file(src, Path(tmp) / "out.png")
        seconds = time.perf_counter() - t0
    return {
        "size": size,
        "plan": plan.describe(),
        "budget_mib": round(up.max_memory / 2**20),
        "estimate_mib": round(estimate / 2**20),
        "peak_growth_mib": round(peak.peak / 2**20) if peak.peak is not None else None,
        "seconds": round(seconds, 1),
    }


def network_child(sizes: list[int], threads: int) -> list[dict]:
    import torch

    import swinir
    from swinir.commands.benchmark import PeakMemory

    torch.set_num_threads(threads)
    up = swinir.Upscaler("default", device="cpu", tile=0)
    model = up.runner.model
    rows = []
    with torch.inference_mode():
        model(torch.rand(1, 3, 16, 16))
        for s in sizes:
            x = torch.rand(1, 3, s, s)
            with PeakMemory() as peak:
                y = model(x)
            del y
            measured = peak.peak / (s * s) if peak.peak is not None else None
            rows.append({"size": s, "measured_bytes_per_px": round(measured) if measured else None,
                         "estimate_bytes_per_px": round(up.memory.network_per_pixel)})  # fmt: skip
    return rows


def _child(args: list[str]) -> object:
    cmd = [sys.executable, __file__, *args]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def memory(ns: argparse.Namespace) -> dict:
    net = _child(["network-child", str(ns.threads), *[str(s) for s in (256, 512, 1024)]])
    print("network peak per pixel, whole image (bytes): measured vs estimate (incl. 30% margin)")
    for row in net:  # type: ignore[union-attr]
        print(
            f"  {row['size']}x{row['size']}: {row['measured_bytes_per_px']} vs {row['estimate_bytes_per_px']}"
        )
    result = _child(["memory-child", str(ns.size), str(ns.threads)])
    assert isinstance(result, dict)
    print(
        f"upscale_file {ns.size}x{ns.size}, default options: {result['plan']}, peak growth "
        f"{result['peak_growth_mib']} MiB, estimate {result['estimate_mib']} MiB, budget "
        f"{result['budget_mib']} MiB, {result['seconds']} s"
    )
    return {"network": net, "upscale": result}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "memory-child":
        print(json.dumps(memory_child(int(sys.argv[2]), int(sys.argv[3]))))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "network-child":
        print(json.dumps(network_child([int(s) for s in sys.argv[3:]], int(sys.argv[2]))))
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", nargs="?", choices=("speed", "memory", "all"), default="all")
    p.add_argument("--sizes", nargs="+", default=["256", "288", "512", "827x1170"], help="N or WxH")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--no-old", action="store_true", help="skip the old 256-pixel-tile variant")
    p.add_argument("--size", type=int, default=4096, help="edge of the memory run's input")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", type=Path, default=None, help="write the results here")
    ns = p.parse_args()
    results: dict = {}
    if ns.what in ("speed", "all"):
        results["speed"] = speed(ns)
    if ns.what in ("memory", "all"):
        results["memory"] = memory(ns)
    if ns.json:
        ns.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
