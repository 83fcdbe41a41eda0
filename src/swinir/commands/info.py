"""``swinir info CHECKPOINT``: print the architecture inferred from a weights file."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info",
        help="show the architecture and size of a checkpoint",
        description="Load a SwinIR checkpoint (official .pth or .safetensors) and print the "
        "hyperparameters read from its tensor shapes, the model family it belongs to (the art "
        "noise levels), and how it was trained when the file says (weights exported by "
        "`swinir export-weights` carry their training recipe).",
    )
    p.add_argument(
        "checkpoint",
        help="a .pth/.pt/.safetensors file, 'default' (the bundled model) or a zoo name "
        "(see `swinir upscale --list-models`)",
    )
    p.add_argument("--img-range", type=float, default=None, help="override the input scaling (1 or 255)")
    p.add_argument("--json", action="store_true", help="print the config as JSON")
    p.add_argument(
        "--recipe",
        action="store_true",
        help="print the training config the weights were made with, as TOML for `swinir train "
        "--config` (weights exported by `swinir export-weights` from a training checkpoint)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..checkpoint import CheckpointError, load_model, resolve_weights
    from ..zoo import ZooError

    try:
        path = resolve_weights(args.checkpoint)  # once: the weights and their metadata
        model = load_model(path, img_range=args.img_range)
        meta = _metadata(path)
    except (CheckpointError, ZooError) as exc:
        print(f"swinir info: {exc}", file=sys.stderr)
        return 2
    if args.recipe:
        return _print_recipe(args.checkpoint, meta)
    cfg = model.config.to_dict()
    if args.json:
        print(json.dumps(cfg, indent=2))
        return 0
    n = sum(p.numel() for p in model.parameters())
    print(f"{args.checkpoint}: SwinIR x{model.config.upscale}, {n / 1e6:.3f}M parameters")
    for key, value in cfg.items():
        print(f"  {key:16s} {value}")
    for line in _family_lines(args.checkpoint) + _training_lines(meta):
        print(line)
    return 0


def _metadata(path: Path) -> dict[str, str]:
    from ..zoo import safetensors_metadata

    if path.suffix != ".safetensors":
        return {}
    try:
        return safetensors_metadata(path)
    except (OSError, ValueError):
        return {}  # load_model read it a moment ago; a race or odd header only loses the extras


def _family_lines(name: str) -> list[str]:
    from ..zoo import noise_levels, with_noise

    levels = noise_levels(name)
    if not levels:
        return []
    members = ", ".join(f"{with_noise(name, n)} (--noise {n})" for n in levels)
    return [f"  family           {members}; --noise auto picks from each JPEG's tables"]


def _training_lines(meta: dict[str, str]) -> list[str]:
    lines = []
    if meta.get("step"):
        lines.append(f"  trained          step {meta['step']} ({meta.get('weights', 'weights')} weights)")
    recipe = _recipe(meta)
    if recipe is not None:
        o, d, t = recipe.get("optim", {}), recipe.get("data", {}), recipe.get("training", {})
        lines.append(
            f"  recipe           {o.get('loss', '?')} loss, {o.get('name', '?')} lr {o.get('lr', '?')}, "
            f"batch {d.get('batch_size', '?')} of {d.get('patch_size', '?')} px LR patches, "
            f"{t.get('precision', '?')}, from {t.get('init_from') or 'scratch'} "
            "(`swinir info --recipe` prints it all)"
        )
    return lines


def _recipe(meta: dict[str, str]) -> dict | None:
    try:
        recipe = json.loads(meta["train_config"])
    except (KeyError, ValueError):
        return None
    return recipe if isinstance(recipe, dict) else None


def _print_recipe(name: str, meta: dict[str, str]) -> int:
    from ..train_config import ConfigError, config_from_dict, to_toml

    recipe = _recipe(meta)
    if recipe is None:
        print(
            f"swinir info: {name}: the file carries no training recipe (only weights exported by "
            "`swinir export-weights` from a training checkpoint do)",
            file=sys.stderr,
        )
        return 1
    try:
        print(to_toml(config_from_dict(recipe)), end="")
    except (ConfigError, TypeError, ValueError) as exc:
        print(f"swinir info: {name}: its training recipe is unreadable ({exc})", file=sys.stderr)
        return 1
    return 0
