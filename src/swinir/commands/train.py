"""``swinir train``: train a model from a TOML config (the same as ``python -m swinir.train``)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a super-resolution model on image folders",
        description="Train SwinIR from a TOML config (see configs/), with --set overrides. "
        "Checkpoints go to logging.out_dir; --resume continues exactly where a run stopped. "
        "For several processes use: torchrun --nproc_per_node=N -m swinir.train --config ...",
    )
    from ..train import add_arguments

    add_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..train import run_from_args

    return run_from_args(args)
