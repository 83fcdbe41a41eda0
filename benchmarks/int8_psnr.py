"""PSNR cost of int8 (and of the ONNX Runtime back end) on Set5 x2, with a trained model.

    .venv/bin/python benchmarks/int8_psnr.py                       # the bundled model
    .venv/bin/python benchmarks/int8_psnr.py --model runs/bundled_x2/best.pt

Scores Y-PSNR/SSIM with the papers' protocol (``swinir.evaluate``: MATLAB-bicubic LR from
``../shared/datasets/Set5/LR_bicubic/X2``, SR rounded to uint8, ``scale`` border pixels cropped) for
fp32 PyTorch, ``--precision int8`` (dynamic int8 linear layers), and ONNX Runtime fp32 / int8,
whole images (no tiling), and prints each variant's difference from fp32.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from swinir.checkpoint import load_model
from swinir.evaluate import evaluate_upscaler, model_upscaler

REPO = Path(__file__).resolve().parents[1]
SET5 = REPO.parent / "shared" / "datasets" / "Set5"
BUNDLED = REPO / "src" / "swinir" / "weights" / "swinir_default_x2.safetensors"


class _OrtModel:
    """Callable like the network ((B, C, h, w) -> (B, C, s*h, s*w)) for ``model_upscaler``."""

    def __init__(self, model: torch.nn.Module, precision: str) -> None:
        from swinir.backends.onnxruntime import OnnxRunner

        self.config = model.config
        self.runner = OnnxRunner.from_model(model, precision=precision)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.runner.forward(x)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=BUNDLED)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX Runtime variants")
    args = parser.parse_args(argv)
    if not SET5.is_dir():
        print(f"{SET5} is absent (shared datasets are only on developer machines)", file=sys.stderr)
        return 1
    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    from swinir.backends.int8 import quantize_int8

    variants: dict[str, object] = {"fp32": model, "int8": quantize_int8(model)}
    if not args.no_onnx:
        variants["onnxruntime fp32"] = _OrtModel(model, "fp32")
        variants["onnxruntime int8"] = _OrtModel(model, "int8")
    scores = {}
    for name, net in variants.items():
        t0 = time.perf_counter()
        res = evaluate_upscaler(model_upscaler(net), SET5 / "HR", 2, lr_dir=SET5 / "LR_bicubic" / "X2")
        if res.failures:
            print(f"{name}: failures: {res.failures}", file=sys.stderr)
            return 1
        scores[name] = (res, time.perf_counter() - t0)
    base = scores["fp32"][0]
    cfg = model.config
    print(f"model {args.model} (embed {cfg.embed_dim}, depths {list(cfg.depths)}, window {cfg.window_size})")
    print("| variant | Y-PSNR (dB) | change | Y-SSIM | largest per-image change | Set5 time |")
    print("|---|---|---|---|---|---|")
    for name, (res, seconds) in scores.items():
        psnr = sum(r.psnr_y for r in res.rows) / len(res.rows)
        ssim = sum(r.ssim_y for r in res.rows) / len(res.rows)
        delta = psnr - sum(r.psnr_y for r in base.rows) / len(base.rows)
        worst = max((abs(a.psnr_y - b.psnr_y) for a, b in zip(res.rows, base.rows, strict=True)), default=0.0)
        print(f"| {name} | {psnr:.3f} | {delta:+.3f} | {ssim:.4f} | {worst:.3f} | {seconds:.1f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
