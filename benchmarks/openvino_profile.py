"""Where OpenVINO spends its time on a SwinIR forward, and what that bounds (issue 13).

Runs in the benchmark environment (``make bench-env``; the official network comes from spandrel):

    PYTHONPATH=src .venv-bench/bin/python benchmarks/openvino_profile.py --preset lightweight_x2 --size 256

In one process: the official network (PyTorch, fp32) and the ``--backend openvino`` graph of the
same weights are timed alternately (medians of ``--repeat``); then OpenVINO's own per-node counters
(``PERF_COUNT``) are summed by node type and kernel. The shares are ratios inside one run, so they
hold on a loaded machine too.

The last line is a bound: the kernels that do the arithmetic (matrix multiplies, the fused
attention and element-wise subgraphs, convolutions) cannot get faster without changing the
arithmetic (bf16/AMX is not exact), so even if every other node (transposes, layer norms, rolls,
reorders) cost nothing, OpenVINO could be at most ``speed-up / arithmetic share`` times the official
network on this CPU.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from speed import baseline_network, case_config
from swinir.backends.openvino import OpenVinoRunner, compile_config, require_openvino, shift_mask
from swinir.model import SwinIR

# Node types whose kernels do the arithmetic (OpenVINO CPU plugin names).
ARITHMETIC = ("FullyConnected", "Subgraph", "Convolution", "MatMul")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="lightweight_x2", help="a preset name, or default (the bundled model)")
    p.add_argument("--size", type=int, default=256, help="LR side (square, a multiple of the window)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)

    ov = require_openvino()
    torch.set_num_threads(args.threads)
    cfg = case_config(args.preset)
    torch.manual_seed(0)
    ours = SwinIR(cfg).eval()
    base = baseline_network(cfg).eval()
    base.load_state_dict(ours.state_dict(), strict=False)
    x = torch.rand(1, cfg.in_chans, args.size, args.size)

    cache = Path(tempfile.mkdtemp())
    runner = OpenVinoRunner(ours, threads=args.threads, cache=cache, log=lambda line: None)
    with torch.inference_mode():
        reference = base(x)
    diff = float((runner.forward(x) - reference).abs().max())  # converts and compiles
    times: dict[str, list[float]] = {"official": [], "openvino": []}
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        with torch.inference_mode():
            base(x)
        times["official"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        runner.forward(x)
        times["openvino"].append(time.perf_counter() - t0)
    official, openvino = (statistics.median(times[k]) for k in ("official", "openvino"))
    speedup = official / openvino

    # The same converted graph, compiled with the runner's settings plus per-node counters.
    xml = next(cache.rglob("model.xml"))
    core = ov.Core()
    config = {**compile_config(args.threads), "PERF_COUNT": True}
    compiled = core.compile_model(core.read_model(str(xml)), "CPU", config)
    request = compiled.create_infer_request()
    inputs = [x.numpy()]
    if len(compiled.inputs) > 1:
        inputs.append(shift_mask(args.size, args.size, cfg.window_size).numpy())
    request.infer(inputs)  # warm-up
    total: dict[tuple[str, str], float] = collections.defaultdict(float)
    count: collections.Counter[tuple[str, str]] = collections.Counter()
    for _ in range(args.repeat):
        request.infer(inputs)
        for node in request.profiling_info:
            key = (node.node_type, node.exec_type)
            total[key] += node.real_time.total_seconds()
            count[key] += 1
    whole = sum(total.values()) or 1.0
    arithmetic = sum(v for (kind, _), v in total.items() if kind in ARITHMETIC) / whole

    shape = f"{args.size}x{args.size}, {args.threads} threads, median of {args.repeat}"
    print(f"{args.preset} x{cfg.upscale}, {shape}")
    print(f"official {official:.3f} s, openvino {openvino:.3f} s: {speedup:.2f}x (max abs diff {diff:.1e})")
    print()
    print("| node type | kernel | nodes | share of OpenVINO's time |")
    print("|---|---|---|---|")
    for (kind, kernel), v in sorted(total.items(), key=lambda kv: -kv[1]):
        if v / whole >= 0.001:
            print(f"| {kind} | {kernel} | {count[(kind, kernel)] // args.repeat} | {100 * v / whole:.1f}% |")
    print()
    print(
        f"arithmetic kernels ({', '.join(ARITHMETIC)}): {100 * arithmetic:.1f}% of the time; with every "
        f"other node free, at most {speedup / arithmetic:.2f}x the official network on this CPU"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
