"""Art/val per image: where our art models lose to waifu2x, and on which pixels.

For one noise level, every Art/val image is made into LR as ``peers.py`` makes it; each model of
ours (a zoo name or a checkpoint path) upscales it, and waifu2x UpConv7 (anime) and CUNet outputs
are read from a ``peers.py --cache`` folder (so this needs no waifu2x and runs in the dev env).
It prints, as Markdown:

1. Y-PSNR (dB, border 2) per image and method, and the mean (what ``peers.py`` reports);
2. for one image (``--edges``, the GDQuest wolf by default) the mean absolute error, summed over
   R, G and B, on edge pixels (HR Sobel magnitude of the RGB mean above 100) and on flat ones (no
   Sobel magnitude of 1 or more within 2 pixels): flat-colour game art is where CUNet is near
   lossless, and this says whether the gap is in the lines or in the fills.

    .venv/bin/python benchmarks/art_per_image.py --art-val ../shared/datasets/Art/val \\
        --cache runs/peers_cache --level 0 art default
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from peers import TORCH_SUFFIX, cache_folder, cached, make_lr, ours, read_rgb
from swinir.data import list_images
from swinir.degradations import modcrop
from swinir.metrics import psnr

# The peers.py rows read back from its cache (CUNet as the PyTorch reader ran it here).
PEERS = ("waifu2x UpConv7 anime", "waifu2x CUNet" + TORCH_SUFFIX)
EDGE_IMAGE = "jrpg_wolf"


class NotCached(RuntimeError):
    pass


def from_cache(folder: Path) -> Callable[[np.ndarray], np.ndarray]:
    def missing(lr: np.ndarray) -> np.ndarray:
        raise NotCached(f"{folder}: no output for one of the inputs (run peers.py with --cache first)")

    return cached(missing, folder)


def edge_and_flat(hr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (h, w) masks: Sobel magnitude of the RGB mean above 100; none of 1 or more within 2."""
    t = torch.from_numpy(hr.astype(np.float64).mean(axis=2))[None, None]
    k = torch.tensor([[1.0, 0, -1], [2, 0, -2], [1, 0, -1]], dtype=t.dtype)[None, None]
    padded = F.pad(t, (1, 1, 1, 1), mode="replicate")
    mag = torch.hypot(F.conv2d(padded, k), F.conv2d(padded, k.transpose(2, 3)))
    return (mag > 100)[0, 0].numpy(), (F.max_pool2d(mag, 5, 1, 2) < 1)[0, 0].numpy()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "models", nargs="+", help="our models: zoo names (art, art-noise2, ...) or checkpoint paths"
    )
    p.add_argument("--art-val", required=True, help="the Art/val folder")
    p.add_argument("--cache", required=True, help="a peers.py --cache folder with the waifu2x outputs")
    p.add_argument("--level", type=int, choices=[0, 1, 2, 3], default=0)
    p.add_argument("--edges", default=EDGE_IMAGE, help="image (file stem) for the edge/flat errors")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()

    paths = [Path(f) for f in list_images(args.art_val)]
    if not paths:
        p.error(f"--art-val {args.art_val}: no images")
    hrs = [modcrop(read_rgb(f), 2) for f in paths]
    lrs = [make_lr(hr, args.level) for hr in hrs]
    methods: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
    for model in args.models:  # a checkpoint file is labelled by its stem
        methods[Path(model).stem if Path(model).is_file() else model] = ours(model, args.threads)
    for label in PEERS:
        methods[label] = from_cache(Path(args.cache) / cache_folder(label) / f"level{args.level}")

    scores: dict[str, list[float]] = {}
    errors: dict[str, tuple[float, float]] = {}
    edge_index = next((i for i, f in enumerate(paths) if f.stem == args.edges), None)
    masks = edge_and_flat(hrs[edge_index]) if edge_index is not None else None
    try:
        for label, run in methods.items():
            outs = [run(lr) for lr in lrs]
            scores[label] = [psnr(sr, hr, crop_border=2) for sr, hr in zip(outs, hrs, strict=True)]
            if masks is not None and edge_index is not None:
                err = np.abs(outs[edge_index].astype(int) - hrs[edge_index].astype(int)).sum(axis=2)
                errors[label] = (float(err[masks[0]].mean()), float(err[masks[1]].mean()))
            print(f"{label}: {np.mean(scores[label]):.2f} dB", file=sys.stderr)
    except NotCached as exc:
        print(f"art_per_image: {exc}", file=sys.stderr)
        return 1

    labels = list(scores)
    print(f"Art/val, noise level {args.level}: Y-PSNR (dB), x2, border 2\n")
    print("| image | " + " | ".join(labels) + " |")
    print("|---|" + "---|" * len(labels))
    for i, f in enumerate(paths):
        print(f"| {f.stem} | " + " | ".join(f"{scores[k][i]:.2f}" for k in labels) + " |")
    print("| mean | " + " | ".join(f"{np.mean(scores[k]):.2f}" for k in labels) + " |")
    if masks is not None:
        edge, flat = masks
        print(
            f"\n{args.edges}: mean absolute error (R+G+B) on edge pixels ({edge.mean():.1%} of the "
            f"image) and flat pixels ({flat.mean():.1%})\n"
        )
        print("| method | edge | flat |\n|---|---|---|")
        for label, (e, fl) in errors.items():
            print(f"| {label} | {e:.2f} | {fl:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
