"""``swinir compare``: one PNG putting LR, bicubic, models, other tools' outputs and HR side by side."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="write a side-by-side comparison sheet (PNG) for one image",
        description="Upscale one LR image with bicubic and each --model, add outputs of other tools "
        "(--other) and the ground truth (--hr), and write one PNG: every result at output size with "
        "its name (and Y-PSNR when --hr is given, border of SCALE pixels ignored), plus the same "
        "region of each enlarged with nearest-neighbour. The region is --crop, given in OUTPUT "
        "(upscaled) pixel coordinates, or by default the window where the methods differ most.",
    )
    p.add_argument("lr", help="low-resolution input image")
    p.add_argument("-o", "--output", help="PNG to write (default: {LR stem}_compare.png here)")
    p.add_argument(
        "--scale", type=int, default=None, help="factor (default: the model's, or from --hr/--other)"
    )
    p.add_argument(
        "--model",
        action="append",
        default=[],
        help="checkpoint file or zoo model name; repeat for several",
    )
    p.add_argument(
        "--other",
        action="append",
        default=[],
        metavar="NAME=PATH_OR_DIR",
        help="another tool's output for this image (a file, or a folder holding {stem}*.png); repeatable",
    )
    p.add_argument(
        "--tta",
        action="store_true",
        help="run every --model as its self-ensemble (8 flips and rotations averaged; labelled MODEL+)",
    )
    p.add_argument("--hr", help="ground truth: adds an HR panel and PSNR labels")
    p.add_argument("--crop", metavar="X,Y,W,H", help="region to enlarge, in output pixel coordinates")
    p.add_argument("--crop-size", type=int, default=None, help="side of the automatic crop (output pixels)")
    p.add_argument("--max-width", type=int, default=2400, help="wrap panels to keep the sheet this wide")
    p.add_argument("--img-range", type=float, default=None, help="override the checkpoints' input scaling")
    p.add_argument("--tile", type=int, default=None, help="run models on tiles of this size (LR pixels)")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..compare import compare
    from ..evaluate import EvalError, resolve_upscaler

    try:
        if args.tile is not None:
            from .eval import _check_tiling

            _check_tiling()
        others = []
        for item in args.other:
            name, sep, where = item.partition("=")
            if not sep or not name or not where:
                raise EvalError(f"--other {item!r}: expected NAME=PATH_OR_DIR")
            others.append((name, where))
        models = [
            resolve_upscaler(m, args.scale, args.img_range, args.tile, progress=not args.quiet, tta=args.tta)
            for m in args.model
        ]
        output = args.output or f"{Path(args.lr).stem}_compare.png"
        layout = compare(
            args.lr,
            output,
            scale=args.scale,
            models=models,
            others=others,
            hr_path=args.hr,
            crop=args.crop,
            crop_size=args.crop_size,
            max_width=args.max_width,
        )
    except EvalError as exc:
        print(f"swinir compare: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        x, y, w, h = layout["crop"]
        print(f"wrote {output}: {len(layout['panels'])} panels, x{layout['scale']}, crop {x},{y},{w},{h}")
        for panel in layout["panels"]:
            print(f"  {panel['label']}")
    return 0
