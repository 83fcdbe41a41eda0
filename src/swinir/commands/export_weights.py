"""``swinir export-weights CKPT OUT.safetensors``: training checkpoint -> deployable weights."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export-weights",
        help="write the (EMA) weights of a checkpoint as .safetensors",
        description="Read a training checkpoint (or any SwinIR checkpoint) and write its weights, with "
        "the model config in the metadata, to a .safetensors file that `swinir upscale` and "
        "swinir.load_model load. The EMA weights are exported unless --weights model is given.",
    )
    p.add_argument("checkpoint", help="training checkpoint (.pt) or any SwinIR weights file")
    p.add_argument("output", help="output .safetensors path")
    p.add_argument(
        "--weights",
        choices=("ema", "model"),
        default="ema",
        help="which weights of a training checkpoint to export (default: ema)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    import torch

    from ..checkpoint import CheckpointError, load_model, load_state_into, read_checkpoint, save_model
    from ..model import SwinIR, SwinIRConfig

    src, out = Path(args.checkpoint), Path(args.output)
    if out.suffix != ".safetensors":
        print(f"swinir export-weights: {out}: the output must end in .safetensors", file=sys.stderr)
        return 2
    if not src.exists():
        print(f"swinir export-weights: {src}: no such file{_run_hint(src)}", file=sys.stderr)
        return 2
    try:
        read_checkpoint(src)  # validates the file (exists, safe to load, holds SwinIR tensors)
        meta = {"source": src.name}
        raw = (
            None
            if src.suffix == ".safetensors"
            else torch.load(str(src), map_location="cpu", weights_only=True)
        )
        if isinstance(raw, dict) and isinstance(raw.get("model"), dict) and "swinir_config" in raw:
            state = raw.get(args.weights)
            if not isinstance(state, dict):
                raise CheckpointError(f"{src}: has no '{args.weights}' weights")
            cfg = SwinIRConfig.from_dict(dict(raw["swinir_config"]))
            model = SwinIR(replace(cfg, drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.0))
            load_state_into(model, state, str(src))
            meta.update(weights=args.weights, step=str(raw.get("step", "")))
            if isinstance(raw.get("train_config"), dict):
                # The recipe travels with the weights: `swinir info --recipe` prints it as TOML.
                meta["train_config"] = json.dumps(raw["train_config"])
        else:
            model = load_model(src)
    except (CheckpointError, ValueError, TypeError) as exc:
        print(f"swinir export-weights: {exc}", file=sys.stderr)
        return 2
    save_model(model, out, extra_metadata=meta)
    n = sum(p.numel() for p in model.parameters())
    print(
        f"{out}: SwinIR x{model.config.upscale}, {n / 1e6:.3f}M parameters ({meta.get('weights', 'weights')})"
    )
    return 0


def _run_hint(missing: Path) -> str:
    """Where a training run's weights are, when ``missing`` points into a run folder."""
    run_dir = missing.parent
    steps = sorted((run_dir / "checkpoints").glob("step_*.pt"))
    if not steps:
        return ""
    why = ""
    if missing.name == "best.pt":
        why = "; best.pt is written only by runs that validate ([validation] hr_dir)"
    return f"{why}; this run's latest checkpoint is {steps[-1]} (export that one)"
