"""``swinir eval``: PSNR/SSIM of a model, of bicubic, or of a folder of SR images, on a benchmark."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="score a model or a folder of SR images against HR images (PSNR/SSIM)",
        description="Evaluate super-resolution with the protocol SR papers report: HR cropped to a "
        "multiple of the scale, LR made with MATLAB-compatible bicubic (or read from --lr-dir), SR "
        "rounded to 8 bits, SCALE border pixels removed, PSNR and SSIM on the BT.601 Y channel and on "
        "RGB. Give --model (bicubic, a checkpoint, or a zoo name) or --sr-dir (SR images made "
        "elsewhere, matched to HR files by stem: baby.png, babyx2.png, baby_SwinIR.png ...).",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="'bicubic', a checkpoint file (.pth/.safetensors), or a zoo model name")
    src.add_argument("--sr-dir", help="folder of SR images produced elsewhere, to score as they are")
    p.add_argument("--hr-dir", required=True, help="folder of ground-truth HR images")
    p.add_argument("--scale", type=int, default=None, help="upscaling factor (default: the model's)")
    p.add_argument(
        "--lr-dir",
        help="folder of LR inputs matched by stem ({stem}.png or {stem}x{scale}.png); "
        "default: made from HR with MATLAB-compatible bicubic",
    )
    p.add_argument("--crop-border", type=int, default=None, help="border pixels ignored (default: scale)")
    p.add_argument(
        "--gray",
        choices=("rgb", "y"),
        default="rgb",
        help="how gray HR images are scored: 'rgb' as three equal channels, Y = 16 + 219*v/255 (as "
        "SwinIR's own test script; default), or 'y' with the gray value itself as Y (MATLAB-era "
        "scripts, e.g. the often-quoted Set14 bicubic rows)",
    )
    p.add_argument("--img-range", type=float, default=None, help="override the checkpoint's input scaling")
    p.add_argument("--tile", type=int, default=None, help="run the model on tiles of this size (LR pixels)")
    p.add_argument("--tile-overlap", type=int, default=32, help="overlap between tiles (LR pixels)")
    p.add_argument(
        "--tta",
        action="store_true",
        help="self-ensemble: average the model over the 8 flips and rotations of each input (8x "
        "slower; the '+' rows of SR papers); the method is labelled MODEL+",
    )
    p.add_argument("--save-dir", help="also write the SR images here as {stem}.png")
    p.add_argument("--json", help="write per-image rows and the mean to this JSON file")
    p.add_argument("--csv", help="write per-image rows and a mean row to this CSV file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..evaluate import (
        EvalError,
        evaluate_folders,
        evaluate_upscaler,
        format_table,
        resolve_upscaler,
        write_csv,
        write_json,
    )

    if args.scale is not None and args.scale < 1:
        print(f"swinir eval: --scale must be >= 1, got {args.scale}", file=sys.stderr)
        return 2
    try:
        if args.sr_dir is not None:
            if args.scale is None:
                raise EvalError("--scale is needed with --sr-dir")
            if args.tta:
                raise EvalError("--tta runs a model: use it with --model, not --sr-dir")
            result = evaluate_folders(
                args.sr_dir, args.hr_dir, args.scale, args.crop_border, args.gray, quiet=args.quiet
            )
        else:
            if args.tile is not None:
                _check_tiling()
            label, upscaler, model_scale = resolve_upscaler(
                args.model,
                args.scale,
                args.img_range,
                args.tile,
                args.tile_overlap,
                not args.quiet,
                tta=args.tta,
            )
            scale = args.scale if args.scale is not None else model_scale
            assert scale is not None
            result = evaluate_upscaler(
                upscaler,
                args.hr_dir,
                scale,
                lr_dir=args.lr_dir,
                crop_border=args.crop_border,
                gray=args.gray,
                method=label,
                save_dir=args.save_dir,
                quiet=args.quiet,
            )
    except EvalError as exc:
        print(f"swinir eval: {exc}", file=sys.stderr)
        return 2

    print(f"{result.method}  x{result.scale}  (crop {result.crop_border}, gray as {result.gray})")
    print(format_table(result))
    for failure in result.failures:
        print(f"swinir eval: {failure}", file=sys.stderr)
    if result.failures:
        print(f"swinir eval: {len(result.failures)} image(s) failed; no JSON/CSV written", file=sys.stderr)
        return 1
    if args.json:
        write_json(result, args.json)
    if args.csv:
        write_csv(result, args.csv)
    return 0


def _check_tiling() -> None:
    from ..evaluate import EvalError

    try:
        from .. import tiling  # noqa: F401
    except ImportError:
        raise EvalError("--tile needs swinir.tiling, which this install does not have") from None
