"""``swinir info CHECKPOINT``: print the architecture inferred from a weights file."""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info",
        help="show the architecture and size of a checkpoint",
        description="Load a SwinIR checkpoint (official .pth or .safetensors) and print the "
        "hyperparameters read from its tensor shapes.",
    )
    p.add_argument(
        "checkpoint",
        help="a .pth/.pt/.safetensors file, 'default' (the bundled model) or a zoo name "
        "(see `swinir upscale --list-models`)",
    )
    p.add_argument("--img-range", type=float, default=None, help="override the input scaling (1 or 255)")
    p.add_argument("--json", action="store_true", help="print the config as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..checkpoint import CheckpointError, load_model

    try:
        model = load_model(args.checkpoint, img_range=args.img_range)
    except CheckpointError as exc:
        print(f"swinir info: {exc}", file=sys.stderr)
        return 2
    cfg = model.config.to_dict()
    if args.json:
        print(json.dumps(cfg, indent=2))
        return 0
    n = sum(p.numel() for p in model.parameters())
    print(f"{args.checkpoint}: SwinIR x{model.config.upscale}, {n / 1e6:.3f}M parameters")
    for key, value in cfg.items():
        print(f"  {key:16s} {value}")
    return 0
