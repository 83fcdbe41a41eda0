"""``swinir export-onnx MODEL OUTPUT``: write a model as an ONNX graph with dynamic sizes."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

EPILOG = """\
The graph takes (B, C, H, W) float32 in [0, 1] with H and W multiples of the model's window size
(batch, height and width are dynamic) and returns (B, C, s*H, s*W); `swinir upscale --backend
onnxruntime --model OUTPUT` pads other sizes itself. The export is checked in ONNX Runtime
against PyTorch (max abs difference <= 1e-4) unless --no-check. Needs `pip install 'swinir[onnx]'`.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export-onnx",
        help="export a model to ONNX (dynamic batch, height, width)",
        description="Export a SwinIR model to ONNX for ONNX Runtime and other ONNX back ends.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", help="weights file (.pth/.safetensors), zoo name, or 'default'")
    p.add_argument("output", type=Path, help="ONNX file to write (e.g. model.onnx)")
    p.add_argument("--img-range", type=float, default=None, help="override the input scaling (1 or 255)")
    p.add_argument("--int8", action="store_true", help="also write OUTPUT with -int8 (dynamic int8 weights)")
    p.add_argument("--no-check", action="store_true", help="skip the ONNX Runtime vs PyTorch check")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..backends.onnxruntime import OnnxError, check_onnx, export_onnx, quantize_onnx
    from ..checkpoint import CheckpointError, load_model
    from ..zoo import ZooError, resolve_model

    if args.output.suffix.lower() != ".onnx":
        print(f"swinir export-onnx: {args.output}: output must end in .onnx", file=sys.stderr)
        return 2
    try:
        model = load_model(resolve_model(args.model), img_range=args.img_range)
    except (CheckpointError, ZooError) as exc:
        print(f"swinir export-onnx: {exc}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    try:
        export_onnx(model, args.output, check=False)
        diff = None if args.no_check else check_onnx(model, args.output)
        int8 = args.output.with_name(args.output.stem + "-int8.onnx") if args.int8 else None
        if int8 is not None:
            quantize_onnx(args.output, int8)
    except OnnxError as exc:
        print(f"swinir export-onnx: {exc}", file=sys.stderr)
        return 1
    size = args.output.stat().st_size / 2**20
    print(f"{args.output}: {size:.1f} MiB, exported in {time.perf_counter() - t0:.0f} s", end="")
    print("" if diff is None else f"; ONNX Runtime vs PyTorch max abs difference {diff:.2g}")
    if int8 is not None:
        print(f"{int8}: {int8.stat().st_size / 2**20:.1f} MiB (int8 weights)")
    return 0
