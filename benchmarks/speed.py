"""Speed of the network against the official SwinIR code (issue 5), in one process.

Runs in the benchmark environment (``make bench-env``: torch, torchvision and ``spandrel``, whose
``SwinIR`` class is the official network as published, MIT licence):

    make bench                                          # = the acceptance suite below
    .venv-bench/bin/python benchmarks/speed.py --suite acceptance
    .venv-bench/bin/python benchmarks/speed.py --suite full --json speed_full.json
    .venv-bench/bin/python benchmarks/speed.py --suite sizes    # full without the acceptance cases
    .venv-bench/bin/python benchmarks/speed.py --case forward:lightweight_x2:256:1 --variants baseline,fp32

For every case the baseline and each variant get the same random weights and input and are
timed in turn (interleaved, so load changes on a shared machine hit them alike) after one warm-up
call each; the table gives the median, throughput, peak resident-memory growth of one call,
analytic GFLOP of the network for that input (``swinir.commands.benchmark.model_flops``; x3 for a
training step) and achieved GFLOP/s, the speed-up over the baseline, and the max abs difference
of the output from the baseline's.

Variants: ``baseline`` (official network, spandrel, fp32), ``fp32`` (this package, PyTorch),
``int8`` (``--precision int8``: dynamic int8 linear layers), ``ort`` / ``ort-int8`` (the exported
graph in ONNX Runtime, fp32 / dynamic int8), ``openvino`` (``--backend openvino``: the graph-mode
network in its plain 4-D attention form, converted for the case's shape into a fresh cache, so its
first call includes the conversion; the conversion and compile times are reported apart). Presets
are those of ``swinir.model.PRESETS`` and ``default`` (the bundled model's architecture). Training
cases time forward + L1 loss + backward.

    .venv-bench/bin/python benchmarks/speed.py --suite openvino     # the OpenVINO cases (issue 13)
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from swinir.commands.benchmark import PeakMemory, model_flops
from swinir.model import SwinIR, SwinIRConfig, preset

FORWARD_VARIANTS = ("baseline", "fp32", "int8", "ort", "ort-int8", "openvino")
OPENVINO_VARIANTS = ("baseline", "fp32", "openvino")
TRAIN_VARIANTS = ("baseline", "fp32")


@dataclass(frozen=True)
class Case:
    mode: str  # forward | train
    preset: str
    size: int
    batch: int
    variants: tuple[str, ...]
    repeat: int | None = None  # None: the --repeat default

    @property
    def name(self) -> str:
        return f"{self.mode}:{self.preset}:{self.size}:{self.batch}"


def _cases(suite: str) -> list[Case]:
    fwd, trn = FORWARD_VARIANTS, TRAIN_VARIANTS
    acceptance = [
        Case("forward", "lightweight_x2", 256, 1, fwd),
        Case("forward", "seed_x2", 256, 1, fwd),
        Case("train", "lightweight_x2", 64, 8, trn),
        # The official network needs ~20 GB of activations for a seed-preset step on 8 patches,
        # which is OOM-killed on a 24 GiB machine shared with other jobs: compare on 4, and time
        # this package alone on 8.
        Case("train", "seed_x2", 64, 4, trn),
        Case("train", "seed_x2", 64, 8, ("fp32",), repeat=2),
    ]
    if suite == "acceptance":
        return acceptance
    if suite == "openvino":  # issue 13
        ov = OPENVINO_VARIANTS
        return [
            Case("forward", "lightweight_x2", 256, 1, ov),
            Case("forward", "default", 256, 1, ov),
            Case("forward", "default", 64, 1, ov),
            Case("forward", "seed_x2", 256, 1, ov, repeat=1),
        ]
    if suite == "quick":
        return [Case("forward", "lightweight_x2", 64, 1, fwd), Case("train", "lightweight_x2", 64, 1, trn)]
    torch_only = ("baseline", "fp32", "int8")
    full = [
        Case("forward", "lightweight_x2", 64, 1, fwd),
        Case("forward", "lightweight_x2", 64, 8, fwd),
        Case("forward", "lightweight_x2", 256, 8, torch_only, repeat=2),
        Case("forward", "lightweight_x2", 512, 1, fwd, repeat=2),
        Case("forward", "seed_x2", 64, 1, fwd),
        Case("forward", "seed_x2", 64, 8, torch_only),
        Case("forward", "seed_x2", 512, 1, ("baseline", "fp32"), repeat=1),
        Case("train", "lightweight_x2", 64, 1, trn),
        Case("train", "seed_x2", 64, 1, trn),
        Case("train", "lightweight_x2", 256, 1, trn, repeat=2),
        # A seed-preset training step on a 256x256 patch: the official network is OOM-killed
        # (over 24 GB); time this package alone.
        Case("train", "seed_x2", 256, 1, ("fp32",), repeat=1),
    ]
    if suite == "full":
        return acceptance + full
    if suite == "sizes":  # the full suite without the acceptance cases
        return full
    raise SystemExit(f"unknown suite {suite!r}")


def baseline_network(cfg: SwinIRConfig) -> torch.nn.Module:
    """The official SwinIR network as shipped in spandrel, built directly with the preset's arguments
    (spandrel's loader cannot know ``img_range``)."""
    from spandrel.architectures.SwinIR.__arch.SwinIR import SwinIR as Official

    if cfg.num_feat != 64:
        raise SystemExit("the official network fixes num_feat = 64")
    return Official(
        img_size=cfg.img_size,
        in_chans=cfg.in_chans,
        embed_dim=cfg.embed_dim,
        depths=list(cfg.depths),
        num_heads=list(cfg.num_heads),
        window_size=cfg.window_size,
        mlp_ratio=cfg.mlp_ratio,
        qkv_bias=cfg.qkv_bias,
        drop_rate=cfg.drop_rate,
        attn_drop_rate=cfg.attn_drop_rate,
        drop_path_rate=cfg.drop_path_rate,
        ape=cfg.ape,
        patch_norm=cfg.patch_norm,
        upscale=cfg.upscale,
        img_range=cfg.img_range,
        upsampler=cfg.upsampler,
        resi_connection=cfg.resi_connection,
    )


@dataclass
class Result:
    variant: str
    times: list[float] = field(default_factory=list)
    peak: list[int] = field(default_factory=list)
    setup_s: float = 0.0
    first_s: float = 0.0
    convert_s: float | None = None  # openvino: torch.export + convert_model + save_model
    compile_s: float | None = None  # openvino: compile_model
    first_peak: int | None = None  # peak memory growth of the first call (conversion included)
    max_diff: float | None = None
    error: str | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def _variant_fn(variant: str, case: Case, ours: SwinIR, base: torch.nn.Module, x: torch.Tensor, threads: int):
    """(callable, output-of-one-forward or None) for a variant."""
    if case.mode == "train":
        net = base if variant == "baseline" else ours
        net.train()
        target = torch.rand(x.shape[0], x.shape[1], x.shape[2] * ours.upscale, x.shape[3] * ours.upscale)

        def step() -> None:
            net.zero_grad(set_to_none=True)
            F.l1_loss(net(x), target).backward()

        return step
    if variant in ("baseline", "fp32", "int8"):
        net: Any = base if variant == "baseline" else ours
        if variant == "int8":
            from swinir.backends.int8 import quantize_int8

            net = quantize_int8(ours)

        def forward() -> torch.Tensor:
            with torch.inference_mode():
                return net(x)

        return forward
    if variant == "openvino":
        import tempfile

        from swinir.backends.openvino import OpenVinoRunner

        # A fresh cache: the first call pays the conversion, as a first run on a machine does.
        runner = OpenVinoRunner(ours, threads=threads, cache=Path(tempfile.mkdtemp()), log=lambda line: None)

        def run_openvino() -> torch.Tensor:
            return runner.forward(x)

        run_openvino.events = runner.events  # type: ignore[attr-defined]  # read by run_case
        return run_openvino
    from swinir.backends.onnxruntime import OnnxRunner

    runner = OnnxRunner.from_model(
        ours, precision="int8" if variant == "ort-int8" else "fp32", threads=threads
    )
    return lambda: runner.forward(x)


def case_config(name: str) -> SwinIRConfig:
    """A preset's config, or for ``default`` the bundled model's (read from its file)."""
    if name == "default":
        from swinir.checkpoint import read_checkpoint
        from swinir.zoo import bundled_path

        cfg = read_checkpoint(bundled_path())[1]
        if cfg is None:
            raise SystemExit("the bundled model file has no config")
        return cfg
    return preset(name)


def run_case(case: Case, threads: int, repeat: int) -> dict[str, Any]:
    cfg = case_config(case.preset)
    torch.manual_seed(0)
    ours = SwinIR(cfg).eval()
    base = baseline_network(cfg).eval()
    missing, unexpected = base.load_state_dict(ours.state_dict(), strict=False)
    assert not unexpected and all(k.endswith(("attn_mask", "relative_position_index")) for k in missing)
    x = torch.rand(case.batch, cfg.in_chans, case.size, case.size)
    reps = case.repeat or repeat
    results: dict[str, Result] = {}
    fns: dict[str, Callable[[], Any]] = {}
    reference = None
    for variant in case.variants:
        res = results[variant] = Result(variant)
        t0 = time.perf_counter()
        try:
            fns[variant] = _variant_fn(variant, case, ours, base, x, threads)
            res.setup_s = time.perf_counter() - t0
            _trim()
            with PeakMemory() as first_mem:
                t0 = time.perf_counter()
                out = fns[variant]()
                res.first_s = time.perf_counter() - t0
            res.first_peak = first_mem.peak
            events = getattr(fns[variant], "events", None)
            if events:
                res.convert_s = sum(e.convert_s for e in events)
                res.compile_s = sum(e.compile_s for e in events)
        except Exception as exc:  # report and go on with the other variants
            res.error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            fns.pop(variant, None)
            continue
        if case.mode == "forward":
            if variant == "baseline":
                reference = out
            elif reference is not None:
                res.max_diff = float((out - reference).abs().max())
        del out
    for _ in range(reps):
        for variant, fn in fns.items():
            _trim()  # return freed heap to the OS, so that each call's peak growth is its own
            with PeakMemory() as mem:
                t0 = time.perf_counter()
                fn()
                results[variant].times.append(time.perf_counter() - t0)
            if mem.peak is not None:
                results[variant].peak.append(mem.peak)
    flops = model_flops(cfg, case.size, case.size, case.batch) * (3 if case.mode == "train" else 1)
    rows = [r.__dict__ | {"median": r.median if r.times else None} for r in results.values()]
    return {"case": case.name, "mode": case.mode, "preset": case.preset, "size": case.size,
            "batch": case.batch, "gflop": flops / 1e9, "repeat": reps, "results": rows}  # fmt: skip


def _trim() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        info["cpu"] = platform.processor()
    info["logical_cpus"] = os.cpu_count()
    for mod in ("spandrel", "onnxruntime", "onnx", "openvino"):
        try:
            info[mod] = __import__(mod).__version__
        except ImportError:
            info[mod] = None
    with contextlib.suppress(ValueError, OSError):
        info["mem_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    return info


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "| case | variant | median | throughput | peak mem | GFLOP | GFLOP/s | vs baseline | max abs diff |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for case in report["cases"]:
        base = next((r for r in case["results"] if r["variant"] == "baseline" and r["median"]), None)
        for r in case["results"]:
            label = f"{case['mode']} {case['preset']} {case['size']}x{case['size']} b{case['batch']}"
            if r["error"]:
                lines.append(f"| {label} | {r['variant']} | failed: {r['error']} | | | | | | |")
                continue
            med = r["median"]
            px = case["batch"] * case["size"] ** 2 / 1e6
            rate = (
                f"{case['batch'] / med:.2f} patches/s" if case["mode"] == "train" else f"{px / med:.3f} MP/s"
            )
            peak = f"{max(r['peak']) / 2**20:.0f} MiB" if r["peak"] else "-"
            ratio = f"**{base['median'] / med:.2f}x**" if base and r is not base else "1.00x" if base else "-"
            diff = "-" if r["max_diff"] is None else f"{r['max_diff']:.1e}"
            lines.append(
                f"| {label} | {r['variant']} | {med:.2f} s | {rate} | {peak} | {case['gflop']:.0f} | "
                f"{case['gflop'] / med:.1f} | {ratio} | {diff} |"
            )
    lines += ["", *startup_table(report)]
    return "\n".join(lines)


def startup_table(report: dict[str, Any]) -> list[str]:
    """Set-up and first-call costs (the first call includes any conversion), and the speed-up over
    this package's PyTorch runner (``fp32``) in the same process."""
    lines = [
        "| case | variant | set-up | first call | of which conversion | compile | first-call peak mem "
        "| median | vs fp32 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for case in report["cases"]:
        ours = next((r for r in case["results"] if r["variant"] == "fp32" and r["median"]), None)
        for r in case["results"]:
            if r["error"] or not r["median"]:
                continue
            label = f"{case['mode']} {case['preset']} {case['size']}x{case['size']} b{case['batch']}"
            conv = "-" if r.get("convert_s") is None else f"{r['convert_s']:.1f} s"
            comp = "-" if r.get("compile_s") is None else f"{r['compile_s']:.1f} s"
            vs = f"{ours['median'] / r['median']:.2f}x" if ours else "-"
            peak = "-" if r.get("first_peak") is None else f"{r['first_peak'] / 2**20:.0f} MiB"
            lines.append(
                f"| {label} | {r['variant']} | {r['setup_s']:.1f} s | {r['first_s']:.1f} s | {conv} | "
                f"{comp} | {peak} | {r['median']:.2f} s | {vs} |"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--suite", default="acceptance", choices=("acceptance", "full", "sizes", "quick", "openvino")
    )
    parser.add_argument("--case", action="append", default=[], help="MODE:PRESET:SIZE:BATCH (repeatable)")
    parser.add_argument("--variants", default=None, help="comma-separated subset of variants")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="also write the raw results here")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    cases = _cases(args.suite)
    if args.case:
        picked = []
        for text in args.case:
            mode, name, size, batch = text.split(":")
            variants = FORWARD_VARIANTS if mode == "forward" else TRAIN_VARIANTS
            picked.append(Case(mode, name, int(size), int(batch), variants))
        cases = picked
    if args.variants:
        keep = tuple(args.variants.split(","))
        cases = [Case(c.mode, c.preset, c.size, c.batch, tuple(v for v in c.variants if v in keep), c.repeat)
                 for c in cases]  # fmt: skip
    report: dict[str, Any] = {
        "machine": machine(),
        "threads": args.threads,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "load_before": os.getloadavg(),
        "cases": [],
    }
    print(f"# {report['machine']} | threads {args.threads} | load {report['load_before']}", file=sys.stderr)
    for case in cases:
        t0 = time.perf_counter()
        report["cases"].append(run_case(case, args.threads, args.repeat))
        print(f"# {case.name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        if args.json:
            args.json.write_text(json.dumps(report, indent=1))
    report["load_after"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    print(markdown(report))
    print(f"\nload average before/after: {report['load_before']} / {report['load_after']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
