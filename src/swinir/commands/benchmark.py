"""``swinir benchmark``: time a SwinIR model on this machine (inference or one training step).

    swinir benchmark                                   # lightweight x2 preset, 256x256, fp32, torch
    swinir benchmark --preset seed_x2 --size 64 --batch 8 --mode train
    swinir benchmark --precision int8                  # dynamic int8 linear layers
    swinir benchmark --backend onnxruntime             # exported graph in ONNX Runtime
    swinir benchmark --backend openvino                # converted graph in OpenVINO
    swinir benchmark --model weights.safetensors --size 512x384

Prints the median time over ``--repeat`` runs after one warm-up run (whose time is also shown, as
the first-call cost), throughput, the analytic GFLOP of the network for that input and the
achieved GFLOP/s, and the peak memory growth. The helpers here (``model_flops``, ``PeakMemory``,
``time_interleaved``) are shared with ``benchmarks/speed.py``, which adds the baseline.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..model import SwinIRConfig

MODES: tuple[str, ...] = ("forward", "train")

EXAMPLES = """\
examples:
  swinir benchmark                                   lightweight x2 preset, 256x256, fp32, torch
  swinir benchmark --preset seed_x2 --size 64 --batch 8 --mode train
  swinir benchmark --model default --size 512 --precision int8
  swinir benchmark --backend onnxruntime             exported graph in ONNX Runtime
  swinir benchmark --backend openvino                converted graph in OpenVINO
  swinir benchmark --model weights.safetensors --size 512x384
"""


# ----------------------------------------------------------------------------------------------
# Helpers shared with benchmarks/
# ----------------------------------------------------------------------------------------------


def _conv(pixels: int, cin: int, cout: int, k: int = 3) -> float:
    return 2.0 * pixels * cin * cout * k * k


def _resi(pixels: int, dim: int, kind: str) -> float:
    if kind == "1conv":
        return _conv(pixels, dim, dim)
    q = dim // 4
    return _conv(pixels, dim, q) + _conv(pixels, q, q, 1) + _conv(pixels, q, dim)


def model_flops(config: SwinIRConfig, height: int, width: int, batch: int = 1) -> float:
    """Analytic FLOPs (2 per multiply-add) of one forward pass on (batch, C, height, width).

    Counts convolutions, linear layers and the two attention products on the input padded to
    whole windows; normalisation, softmax, activations and additions are left out (a few %).
    A training step (forward + backward) is about 3x this.
    """
    ws = config.window_size
    hp, wp = -(-height // ws) * ws, -(-width // ws) * ws
    pix = hp * wp
    c, n = config.embed_dim, ws * ws
    hidden = int(c * config.mlp_ratio)
    per_block = 2.0 * pix * (4 * c * c + 2 * c * hidden) + 2.0 * pix * n * c * 2
    total = _conv(pix, config.in_chans, c) + sum(config.depths) * per_block
    total += (len(config.depths) + 1) * _resi(pix, c, config.resi_connection)
    s, nf, out = config.upscale, config.num_feat, config.in_chans
    if config.upsampler == "pixelshuffle":
        total += _conv(pix, c, nf)
        if s == 3:
            total += _conv(pix, nf, 9 * nf)
        else:
            p = pix
            while p < pix * s * s:
                total += _conv(p, nf, 4 * nf)
                p *= 4
        total += _conv(pix * s * s, nf, out)
    elif config.upsampler == "pixelshuffledirect":
        total += _conv(pix, c, s * s * out)
    elif config.upsampler == "nearest+conv":
        total += _conv(pix, c, nf) + _conv(4 * pix, nf, nf)
        if s == 4:
            total += _conv(16 * pix, nf, nf)
        total += _conv(pix * s * s, nf, nf) + _conv(pix * s * s, nf, out)
    else:
        total += _conv(pix, c, out)
    return total * batch


class PeakMemory:
    """Peak resident-memory growth of the process over a ``with`` block, in bytes.

    Resets the kernel's high-water mark (``/proc/self/clear_refs``) on entry and reads it on exit;
    ``peak`` stays None where that is unavailable (non-Linux).
    """

    def __init__(self) -> None:
        self.peak: int | None = None
        self._start: int | None = None

    @staticmethod
    def _status(key: str) -> int | None:
        try:
            text = Path("/proc/self/status").read_text()
        except OSError:
            return None
        m = re.search(rf"^{key}:\s+(\d+) kB", text, re.MULTILINE)
        return int(m.group(1)) * 1024 if m else None

    def __enter__(self) -> PeakMemory:
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self._start = self._status("VmRSS")
        except OSError:
            self._start = None
        return self

    def __exit__(self, *exc: object) -> None:
        hwm = self._status("VmHWM")
        if self._start is not None and hwm is not None:
            self.peak = max(0, hwm - self._start)


def time_interleaved(fns: dict[str, Callable[[], Any]], repeat: int) -> dict[str, list[float]]:
    """Wall times of each function, run in turn ``repeat`` times (so that load changes on a shared
    machine hit every variant alike); no warm-up here."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def physical_cores() -> int:
    """Physical CPU cores available to this process (hyper-threads share a core's FMA units)."""
    try:
        cpus = os.sched_getaffinity(0)
    except AttributeError:  # pragma: no cover - non-Linux
        cpus = set(range(os.cpu_count() or 1))
    cores = set()
    for cpu in cpus:
        path = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/core_cpus_list")
        try:
            cores.add(path.read_text().strip())
        except OSError:
            return max(1, len(cpus))
    return max(1, len(cores))


def parse_size(text: str) -> tuple[int, int]:
    """``256`` or ``512x384`` (height x width) -> (height, width)."""
    m = re.fullmatch(r"(\d+)(?:x(\d+))?", text.strip())
    if not m or int(m.group(1)) < 1 or (m.group(2) is not None and int(m.group(2)) < 1):
        raise argparse.ArgumentTypeError(f"size must be N or HxW with positive integers, got {text!r}")
    h = int(m.group(1))
    return h, int(m.group(2)) if m.group(2) else h


# ----------------------------------------------------------------------------------------------
# Command
# ----------------------------------------------------------------------------------------------


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "benchmark",
        help="time a model on this machine (inference or a training step)",
        description="Time a SwinIR model on this machine: the median of --repeat runs after one "
        "warm-up run (whose time is shown as the first-call cost), throughput, the network's "
        "analytic GFLOP and achieved GFLOP/s, and the peak memory growth.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--preset",
        default=None,
        help="architecture preset with random weights, e.g. lightweight_x2 (or lightweight-x2) "
        "(default: lightweight_x2)",
    )
    src.add_argument(
        "--model",
        default=None,
        help="trained weights instead of a preset: 'default', a zoo name (see `swinir upscale "
        "--list-models`) or a .pth/.safetensors file",
    )
    p.add_argument("--size", type=parse_size, default=(256, 256), help="input size N or HxW (default 256)")
    p.add_argument("--batch", type=int, default=1, help="images per call (default 1)")
    p.add_argument(
        "--mode",
        choices=MODES,
        default="forward",
        help="forward: inference; train: one training step, forward and backward (default: forward)",
    )
    p.add_argument(
        "--precision",
        choices=("fp32", "int8"),
        default="fp32",
        help="fp32, or int8 dynamic linear layers (CPU) (default: fp32)",
    )
    p.add_argument(
        "--backend",
        choices=("torch", "onnxruntime", "openvino"),
        default="torch",
        help="torch, onnxruntime (CPU, needs swinir[onnx]; exports the model once) or openvino (CPU, "
        "fp32, needs swinir[openvino]; converts the model once per input shape) (default: torch)",
    )
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: physical cores)")
    p.add_argument("--repeat", type=int, default=3, help="timed runs after the warm-up (default 3)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from ..checkpoint import CheckpointError, load_model
    from ..model import SwinIR, preset
    from ..zoo import ZooError, resolve_model

    if args.batch < 1 or args.repeat < 1:
        print("swinir benchmark: --batch and --repeat must be >= 1", file=sys.stderr)
        return 2
    if args.mode == "train" and (args.backend != "torch" or args.precision != "fp32"):
        print("swinir benchmark: --mode train needs --backend torch --precision fp32", file=sys.stderr)
        return 2
    threads = args.threads or physical_cores()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    try:
        if args.model is not None:
            model = load_model(resolve_model(args.model))
            label = args.model
        else:
            name = args.preset or "lightweight_x2"
            model = SwinIR(preset(name))
            label = f"preset {name} (random weights)"
    except (CheckpointError, ZooError, ValueError) as exc:
        print(f"swinir benchmark: {exc}", file=sys.stderr)
        return 1
    cfg = model.config
    h, w = args.size
    x = torch.rand(args.batch, cfg.in_chans, h, w)

    t0 = time.perf_counter()
    try:
        fn = _make_call(model, x, args)
    except (ImportError, RuntimeError, ValueError) as exc:
        print(f"swinir benchmark: {exc}", file=sys.stderr)
        return 1
    setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    with PeakMemory() as mem:
        times = time_interleaved({"run": fn}, args.repeat)["run"]
    med = statistics.median(times)
    flops = model_flops(cfg, h, w, args.batch) * (3 if args.mode == "train" else 1)
    mp = args.batch * h * w / 1e6
    print(f"model      {label}")
    case = f"{args.mode}, batch {args.batch} of {h}x{w}, {args.precision}, {args.backend}"
    print(f"case       {case}, {threads} threads")
    print(f"setup      {setup:.2f} s (model preparation: quantisation, export or conversion, session)")
    print(f"first call {first:.2f} s")
    print(f"median     {med:.3f} s over {args.repeat} runs ({', '.join(f'{t:.3f}' for t in times)})")
    rate = f"{args.batch / med:.2f} patches/s" if args.mode == "train" else f"{mp / med:.3f} input MP/s"
    print(f"throughput {rate}")
    print(f"compute    {flops / 1e9:.1f} GFLOP, {flops / 1e9 / med:.1f} GFLOP/s")
    if mem.peak is not None:
        print(f"peak mem   +{mem.peak / 2**20:.0f} MiB (resident set growth during the timed runs)")
    return 0


def _make_call(model: Any, x: Any, args: argparse.Namespace) -> Callable[[], Any]:
    import torch

    if args.mode == "train":
        model.train()
        target = torch.rand(x.shape[0], x.shape[1], x.shape[2] * model.upscale, x.shape[3] * model.upscale)

        def step() -> None:
            model.zero_grad(set_to_none=True)
            torch.nn.functional.l1_loss(model(x), target).backward()

        return step
    model.eval()
    if args.backend == "openvino":
        from ..backends.openvino import OpenVinoRunner

        if args.precision != "fp32":
            raise ValueError("the openvino back end runs fp32 only")
        ov_runner = OpenVinoRunner(model, threads=torch.get_num_threads())
        b, _, h, w = x.shape
        ov_runner.prepare([ov_runner.input_shape(b, h, w)])  # conversion (or cache) is set-up time
        return lambda: ov_runner.forward(x)
    if args.backend == "onnxruntime":
        from ..backends.onnxruntime import OnnxRunner

        runner = OnnxRunner.from_model(model, precision=args.precision, threads=torch.get_num_threads())
        return lambda: runner.forward(x)
    if args.precision == "int8":
        from ..backends.int8 import quantize_int8

        model = quantize_int8(model)

    def forward() -> None:
        with torch.inference_mode():
            model(x)

    return forward
