"""The ``swinir`` command line: one subcommand per task, each defined in ``swinir.commands``.

Every command module exposes ``add_parser(subparsers)``, which registers its arguments and sets
``run`` (``args -> exit code``) as the parser default. Only the command named on the command line
gets its full parser; the others are listed with their one-line help from :data:`COMMANDS`, so
``swinir --help`` imports no command module's dependencies, and heavy imports (torch, NumPy)
happen inside ``run``: ``swinir --help``, ``--list-models`` and argument errors answer at once.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from . import __version__

# (name, module in swinir.commands, one-line help), in the order --help lists them.
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("upscale", "upscale", "upscale or restore images and folders"),
    ("info", "info", "show the architecture and size of a checkpoint"),
    ("eval", "eval", "score a model or a folder of SR images against HR images (PSNR/SSIM)"),
    ("compare", "compare", "write a side-by-side comparison sheet (PNG) for one image"),
    ("train", "train", "train a super-resolution model on image folders"),
    ("export-weights", "export_weights", "write the (EMA) weights of a checkpoint as .safetensors"),
    ("export-onnx", "export_onnx", "export a model to ONNX (dynamic batch, height, width)"),
    ("benchmark", "benchmark", "time a model on this machine (inference or a training step)"),
    ("web", "web", "serve a local web page (and HTTP API) for upscaling images"),
)


def _command_in(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv`` (the first word that is not an option), if any."""
    for word in argv:
        if not word.startswith("-"):
            return word if any(word == name for name, _, _ in COMMANDS) else None
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for ``argv``: full options for the command it names, help lines for the rest.

    Without ``argv`` every command gets its full parser.
    """
    parser = argparse.ArgumentParser(
        prog="swinir",
        description="SwinIR image super-resolution and restoration: upscale, train, evaluate, deploy.",
        epilog="Run `swinir COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"swinir {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = _command_in(argv) if argv is not None else None
    for name, module, line in COMMANDS:
        if argv is None or name == chosen:
            importlib.import_module(f".commands.{module}", __package__).add_parser(sub)
        else:
            sub.add_parser(name, help=line)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        code = int(args.run(args))
        sys.stdout.flush()  # here, so that a closed pipe is caught below and not at exit
        return code
    except KeyboardInterrupt:
        print("swinir: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`swinir info X | head`): stop quietly, as other tools do.
        _silence_stdout()
        return 141


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush does not fail again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
