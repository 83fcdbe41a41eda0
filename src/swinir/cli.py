"""The ``swinir`` command line: one subcommand per task, each defined in ``swinir.commands``.

Every command module exposes ``add_parser(subparsers)``, which registers its arguments and sets
``run`` (``args -> exit code``) as the parser default. Heavy imports happen inside ``run`` so that
``swinir --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="swinir",
        description="SwinIR image super-resolution and restoration: upscale, train, evaluate, deploy.",
    )
    parser.add_argument("--version", action="version", version=f"swinir {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    # Explicit list, in the order shown by --help.
    from .commands import benchmark, compare, export_onnx, export_weights, info, train, upscale, web
    from .commands import eval as eval_cmd

    upscale.add_parser(sub)
    info.add_parser(sub)
    eval_cmd.add_parser(sub)
    compare.add_parser(sub)
    train.add_parser(sub)
    export_weights.add_parser(sub)
    export_onnx.add_parser(sub)
    benchmark.add_parser(sub)
    web.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        print("swinir: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
