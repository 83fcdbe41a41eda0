"""Peak memory of tiled upscaling, and how far tiled output is from whole-image output.

Two measurements:

``memory`` (default): peak RSS of ``Upscaler.upscale_file`` (read PNG -> tiles -> write PNG) on a
SIZE x SIZE RGB image with the default tile, for the lightweight and classical presets (random
weights; memory does not depend on their values). Each run is a fresh child process, so its peak RSS
(``ru_maxrss``) is its own. The baseline is the same run on a BASE x BASE image: the ratio
SIZE/BASE shows whether memory follows the tile (ratio near 1) or the image (ratio near
(SIZE/BASE)^2). A full classical run on 2048x2048 takes hours on 2 CPU cores, so by default only the
last ``--real-tiles`` tiles run the network and the earlier ones a nearest-neighbour stand-in of the
same output shape: every buffer of the pipeline (input, output accumulator, conversion, encoder) is
still allocated and touched, and the network runs when the output accumulator is already full, so
the peak is the one a full run reaches. ``--real-tiles 0`` runs the network on every tile.

``psnr``: PSNR between tiled and whole-image output of the official-layout lightweight x2 network
(../shared/reference/swinir_parity/lightweight_x2/model.pth) on Set5 ``baby`` (256x256 LR).

    .venv/bin/python benchmarks/tiling_memory.py                      # memory, 2048 vs 512
    .venv/bin/python benchmarks/tiling_memory.py --presets classical_x2 --tiles 128 256 384
    .venv/bin/python benchmarks/tiling_memory.py psnr --tile 64 --overlap 16
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SWINIR_SHARED", REPO.parent / "shared"))


def child(preset_name: str, size: int, tile: int, overlap: int, real_tiles: int, threads: int) -> dict:
    """One measurement in this (fresh) process; returns a JSON-able dict."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from PIL import Image

    import swinir
    from swinir.model import SwinIR, preset
    from swinir.tiling import count_tiles

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "model.safetensors"
        swinir.save_model(SwinIR(preset(preset_name)), weights)
        src = Path(tmp) / "in.png"
        rng = np.random.default_rng(0)
        low = rng.integers(0, 256, (size // 16, size // 16, 3), dtype=np.uint8)
        Image.fromarray(low).resize((size, size), Image.Resampling.BICUBIC).save(src)
        del low

        up = swinir.Upscaler(weights, device="cpu", tile=tile, tile_overlap=overlap)
        real_forward = up.runner.forward
        total = count_tiles(size, size, tile, overlap, up.runner.window_size)
        calls = {"n": 0, "real_seconds": 0.0}

        def forward(x: torch.Tensor) -> torch.Tensor:
            calls["n"] += 1
            if real_tiles and calls["n"] <= total - real_tiles:
                return F.interpolate(x, scale_factor=up.scale, mode="nearest")
            start = time.perf_counter()
            out = real_forward(x)
            calls["real_seconds"] += time.perf_counter() - start
            return out

        up.runner.forward = forward  # type: ignore[method-assign]
        base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        start = time.perf_counter()
        up.upscale_file(src, Path(tmp) / "out.png")
        seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux -> MiB
    real = min(total, real_tiles) if real_tiles else total
    return {
        "preset": preset_name,
        "size": size,
        "tile": tile,
        "tiles": total,
        "real_tiles": real,
        "s_per_real_tile": round(calls["real_seconds"] / max(1, real), 2),
        "seconds": round(seconds, 1),
        "rss_after_load_mib": round(base_rss),
        "peak_rss_mib": round(peak),
    }


def run_child(args: list[str]) -> dict:
    cmd = [sys.executable, __file__, "child", *args]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def memory(ns: argparse.Namespace) -> None:
    from swinir.tiling import DEFAULT_OVERLAP, DEFAULT_TILE

    tiles = ns.tiles or [DEFAULT_TILE]
    print(
        f"peak RSS of upscale_file, {ns.size}x{ns.size} vs {ns.base}x{ns.base} RGB, CPU, {ns.threads} threads"
    )
    header = ("preset", "tile", "tiles", "base MiB", "peak MiB", "ratio", "s/tile")
    print("{:16s} {:>5s} {:>6s} {:>9s} {:>9s} {:>6s} {:>7s}".format(*header))
    for preset_name in ns.presets:
        for tile in tiles:
            common = [str(tile), str(ns.overlap or DEFAULT_OVERLAP), str(ns.real_tiles), str(ns.threads)]
            base = run_child([preset_name, str(ns.base), *common]) if ns.base else None
            big = run_child([preset_name, str(ns.size), *common])
            base_mib = base["peak_rss_mib"] if base else 0
            ratio = f"{big['peak_rss_mib'] / base_mib:6.2f}" if base else "     -"
            print(
                f"{preset_name:16s} {tile:5d} {big['tiles']:6d} {base_mib:9d} "
                f"{big['peak_rss_mib']:9d} {ratio} {big['s_per_real_tile']:7.1f}",
                flush=True,
            )
            if ns.verbose:
                print("  ", json.dumps(base), "\n  ", json.dumps(big))


def psnr(ns: argparse.Namespace) -> None:
    import numpy as np
    import torch
    from PIL import Image

    import swinir
    from swinir.tiling import run_tiled

    torch.set_num_threads(ns.threads)
    weights = SHARED / "reference" / "swinir_parity" / "lightweight_x2" / "model.pth"
    image = SHARED / "datasets" / "Set5" / "LR_bicubic" / "X2" / "babyx2.png"
    model = swinir.load_model(weights)
    with Image.open(image) as im:
        lr = np.asarray(im.convert("RGB"), np.float32).transpose(2, 0, 1) / 255

    def forward(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model(x)

    start = time.perf_counter()
    whole = np.clip(run_tiled(forward, np.ascontiguousarray(lr), 2, 0, 0), 0, 1)
    whole_s = time.perf_counter() - start
    start = time.perf_counter()
    tiled = np.clip(run_tiled(forward, np.ascontiguousarray(lr), 2, ns.tile, ns.overlap, window=8), 0, 1)
    tiled_s = time.perf_counter() - start
    mse = float(np.mean((whole.astype(np.float64) - tiled) ** 2))
    print(f"{image.name} {lr.shape[2]}x{lr.shape[1]}, lightweight x2 (random weights), tile {ns.tile}, "
          f"overlap {ns.overlap}")  # fmt: skip
    diff = float(np.abs(whole - tiled).max())
    print(f"PSNR tiled vs whole: {10 * np.log10(1 / mse):.2f} dB, max abs diff {diff:.4f}")
    print(f"time: whole {whole_s:.1f} s, tiled {tiled_s:.1f} s (ratio {tiled_s / whole_s:.2f})")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        preset_name, size, tile, overlap, real_tiles, threads = sys.argv[2:8]
        print(
            json.dumps(child(preset_name, int(size), int(tile), int(overlap), int(real_tiles), int(threads)))
        )
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", nargs="?", choices=("memory", "psnr"), default="memory")
    parser.add_argument("--presets", nargs="+", default=["lightweight_x2", "classical_x2"])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--base", type=int, default=512, help="baseline image size for the ratio (0: none)")
    parser.add_argument("--tiles", type=int, nargs="+", help="tile sizes (default: the library default)")
    parser.add_argument("--tile", type=int, default=64, help="psnr: tile size")
    parser.add_argument(
        "--overlap", type=int, default=None, help="tile overlap (default: library default; psnr 16)"
    )
    parser.add_argument("--real-tiles", type=int, default=1, help="tiles that run the network (0 = all)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("-v", "--verbose", action="store_true")
    ns = parser.parse_args()
    if ns.what == "psnr":
        ns.overlap = 16 if ns.overlap is None else ns.overlap
        psnr(ns)
    else:
        memory(ns)


if __name__ == "__main__":
    main()
