"""What this CPU can do at best, next to the speed targets of issue 5.

    .venv/bin/python benchmarks/ceiling.py --speed-json benchmarks/speed_acceptance.json

A speed-up over the official network is bounded by the machine: a run cannot go faster than its
arithmetic at the best matrix-multiply rate this CPU reaches. This script measures

* the matrix-product ceiling: fp32 ``nn.Linear`` and its dynamic-int8 form (the kernels of
  ``--precision int8``) on the seed preset's MLP shape and on a large matrix, with the given threads;
* the softmax floor: the time ``torch.softmax`` alone takes on the attention scores of one forward
  pass (every window, head and block), which any implementation built from library kernels pays,
  int8 or not, PyTorch or ONNX Runtime;

then reads the baseline times of a ``benchmarks/speed.py`` run (its ``--json``) and prints, for each
target, the time it asks for and the arithmetic rate that time needs.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from collections.abc import Callable
from pathlib import Path

import torch

from swinir.commands.benchmark import model_flops
from swinir.model import preset

# (case in speed.py's JSON, variant the target is about, required speed-up, acceptance point)
TARGETS = (
    ("forward:lightweight_x2:256:1", "fp32", 4.0, "1: fp32 inference"),
    ("forward:seed_x2:256:1", "fp32", 4.0, "1: fp32 inference"),
    ("train:lightweight_x2:64:8", "fp32", 2.0, "2: training step"),
    ("train:seed_x2:64:4", "fp32", 2.0, "2: training step"),
    ("forward:lightweight_x2:256:1", "int8", 6.0, "3: int8"),
    ("forward:seed_x2:256:1", "int8", 6.0, "3: int8"),
    ("forward:lightweight_x2:256:1", "ort", 5.0, "4: onnxruntime"),
)


def _best(fn: Callable[[], object], repeat: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def gemm_ceiling() -> dict[str, float]:
    """Best matrix-product rates, G(FL)OP/s: fp32 ``F.linear`` and dynamic-int8 ``nn.Linear``
    (the kernels ``--precision int8`` uses), on the seed MLP's shape and on a large one."""
    from swinir.backends.int8 import quantize_int8_linear

    rates = {}
    for m, k, n in ((4096, 180, 720), (4096, 2048, 2048)):
        x = torch.randn(m, k)
        layer = torch.nn.Linear(k, n)
        q = quantize_int8_linear(layer)
        with torch.inference_mode():
            for name, fn in (("fp32", layer), ("int8", q)):
                rates[f"{name} linear {m}x{k} -> {n}"] = (
                    2 * m * k * n / _best(functools.partial(fn, x), 10) / 1e9
                )
    return rates


def softmax_floor(name: str, size: int) -> float:
    """Seconds of ``torch.softmax`` over one forward pass's attention scores (in place, as the
    network runs it), done in chunks of 4096 tokens as the network does."""
    cfg = preset(name)
    n = cfg.window_size**2
    tokens = size * size
    scores = torch.randn(4096 // n, cfg.num_heads[0], n, n)
    chunks = tokens // 4096 * sum(cfg.depths)
    one = _best(lambda: torch.softmax(scores, -1, out=scores), 10)
    return one * chunks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--speed-json", type=Path, default=Path("benchmarks/speed_acceptance.json"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    ceiling = gemm_ceiling()
    best = {p: max(v for k, v in ceiling.items() if k.startswith(p)) for p in ("fp32", "int8")}
    print(f"matrix-product ceiling, {args.threads} threads:")
    for k, v in ceiling.items():
        print(f"  {k:32s} {v:6.1f} G(FL)OP/s")
    floors = {name: softmax_floor(name, 256) for name in ("lightweight_x2", "seed_x2")}
    print("softmax alone over one 256x256 forward pass's attention scores:")
    for k, v in floors.items():
        print(f"  {k:24s} {v:6.2f} s")

    report = json.loads(args.speed_json.read_text())
    cases = {c["case"]: c for c in report["cases"]}
    print(f"\ntargets against the baselines of {args.speed_json}:")
    print("| acceptance | case | baseline | target | time needed | G(FL)OP/s needed | ceiling | measured |")
    print("|---|---|---|---|---|---|---|---|")
    for case_name, variant, ratio, point in TARGETS:
        case = cases.get(case_name)
        if case is None:
            continue
        rows = {r["variant"]: r for r in case["results"]}
        base = rows["baseline"]["median"]
        need = base / ratio
        got = rows.get(variant, {}).get("median")
        measured = f"{got:.2f} s ({base / got:.2f}x)" if got else "-"
        cfg = preset(case["preset"])
        passes = 3 if case["mode"] == "train" else 1  # forward + backward ~ 3 forwards
        flops = model_flops(cfg, case["size"], case["size"], case["batch"]) * passes
        print(
            f"| {point} | {case_name} {variant} | {base:.2f} s | {ratio:.0f}x | {need:.2f} s | "
            f"{flops / need / 1e9:.0f} | {best['int8' if 'int8' in variant else 'fp32']:.0f} | {measured} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
