"""``swinir upscale INPUT... -o OUT``: upscale files and folders with any SwinIR model."""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .. import ranks as ranks_mod
    from ..upscaler import Upscaler

EXAMPLES = """\
examples:
  swinir upscale photo.jpg -o photo_x2.png             one file, output file
  swinir upscale shots/ -o big/ --recursive            a folder tree into another folder
  swinir upscale a.png b.png -o out/ --format webp     several files, WebP output
  swinir upscale scan.tif -o out/ --model real-x4-gan --outscale 3
  swinir upscale noisy/ -o clean/ --model color-denoise-25
  swinir upscale page.jpg -o out/ --model art --noise auto   anime/illustration, JPEG noise removed
  swinir upscale in/ -o out/ --model path/to/001_classicalSR_DF2K_s64w8_SwinIR-M_x2.pth --tile 192
  swinir upscale --list-models                         names accepted by --model
  torchrun --nproc_per_node=2 -m swinir upscale in/ -o out/   shared among 2 processes

Tiles: by default (--tile auto) an image runs whole when the estimated memory of that fits
--max-memory, else in the fewest equal tiles that fit. The estimate per input pixel is about
4 x embed_dim floats of feature maps for the network (more for wide upsamplers), plus 30%, plus
the image's own buffers (input, float output, encoded copy), plus twice the weights; for the bundled model
(embed_dim 32) that is about 0.8 KB per pixel: images up to about 5.1 megapixels run whole in
4 GiB. The run's first line shows the rule for the chosen model, each file line its tile plan.

Several processes: launched by torchrun (one per GPU, or several on a CPU), the inputs are shared
among the processes, each file done by exactly one, with the same outputs as a single process;
the summary is printed by the first process.

Outputs keep the input's mode (gray stays gray), alpha channel, 16-bit depth (PNG/TIFF) and ICC
profile; EXIF orientation is applied. Files are written atomically. A file that cannot be read is
reported with the reason and the run goes on; the exit status is 1 if any file failed, 2 for bad
options or a model that cannot be loaded.
"""

FORMATS = ("same", "png", "jpg", "webp", "tiff", "bmp")
_EXT = {"png": ".png", "jpg": ".jpg", "webp": ".webp", "tiff": ".tiff", "bmp": ".bmp"}


# Must match swinir.tiling.DEFAULT_OVERLAP (not imported here: it would load NumPy and torch
# before --help; tests/test_cli_upscale.py checks that they agree).
DEFAULT_OVERLAP = 32


def tile_arg(text: str) -> int | str:
    """``--tile``: ``auto`` or a number of pixels >= 0."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a number of pixels, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 'auto', 0 (whole image) or positive, got {value}")
    return value


def gib_arg(text: str) -> float:
    """``--max-memory``: a positive number of GiB."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of GiB, e.g. 4 or 1.5, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "upscale",
        help="upscale or restore images and folders",
        description="Upscale (or denoise, or remove JPEG artifacts from) images with a SwinIR model.\n"
        "INPUT can be image files and folders.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="image files and/or folders")
    p.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="output folder (created if needed), or an output file when there is one input file and "
        "OUT ends in an image extension; default: next to each input",
    )
    p.add_argument(
        "-m",
        "--model",
        default="default",
        help="zoo name (see --list-models; downloaded once to $SWINIR_CACHE or ~/.cache/swinir), "
        "an official file name, or a path to a .pth/.safetensors file (default: %(default)s, the "
        "bundled model)",
    )
    p.add_argument(
        "-n",
        "--noise",
        choices=("0", "1", "2", "3", "auto"),
        default="0",
        help="JPEG noise removal for models that have levels (the art family): 0 none, 1 light, "
        "2 medium, 3 heavy; auto picks per file from its JPEG quantization tables (estimated "
        "quality) and 0 for PNG and other formats, and says which it chose (default: %(default)s)",
    )
    p.add_argument("--list-models", action="store_true", help="list the zoo names and exit")
    p.add_argument("-r", "--recursive", action="store_true", help="also process images in subfolders")
    p.add_argument(
        "-f",
        "--format",
        choices=FORMATS,
        default="same",
        help="output format; 'same' keeps each input's format (default: %(default)s)",
    )
    p.add_argument(
        "-s",
        "--suffix",
        default=None,
        help="added to output file names, e.g. photo_x2.png (default: _x<factor>; '' for none)",
    )
    p.add_argument(
        "--outscale",
        type=float,
        default=None,
        metavar="F",
        help="final size relative to the input, any positive factor, e.g. 1.5 or 3: the model output "
        "is resized with Lanczos (default: the model's own scale)",
    )
    p.add_argument(
        "--img-range",
        type=float,
        default=None,
        metavar="R",
        help="input scaling of the model, 1 or 255 (default: from the file or the zoo entry)",
    )
    p.add_argument(
        "--tile",
        type=tile_arg,
        default="auto",
        metavar="auto|N",
        help="auto: the whole image when its estimated memory fits --max-memory, else the fewest "
        "equal tiles that do (see below); N: the fewest equal tiles of at most N input pixels a "
        "side, rounded down to the model window; 0: always the whole image (default: auto)",
    )
    p.add_argument(
        "--max-memory",
        type=gib_arg,
        default=None,
        metavar="GIB",
        help="memory budget of --tile auto, in GiB (default: 4, or half the RAM if less)",
    )
    p.add_argument(
        "--tile-overlap",
        type=int,
        default=DEFAULT_OVERLAP,
        metavar="N",
        help="overlap between tiles in input pixels, feathered so no seam shows; reduced to a "
        "quarter of an explicit --tile that is too small for it (default: %(default)s)",
    )
    p.add_argument("--batch", type=int, default=1, metavar="N", help="tiles per model call (default: 1)")
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda", "mps"),
        default="auto",
        help="auto picks CUDA, then Apple MPS, then CPU (default: %(default)s)",
    )
    p.add_argument(
        "--precision",
        choices=("fp32", "bf16", "int8"),
        default="fp32",
        help="bf16 runs the model in bfloat16: faster on recent GPUs, output differs slightly; "
        "int8 (CPU) quantizes the linear layers (default: %(default)s)",
    )
    p.add_argument(
        "--backend",
        choices=("torch", "onnxruntime", "openvino"),
        default="torch",
        help="onnxruntime (CPU, needs swinir[onnx]) runs an exported graph: --model can be an .onnx "
        "file from `swinir export-onnx`, or weights, exported once into the cache; openvino (CPU, "
        "fp32, needs swinir[openvino]) converts the model once per tile shape (tens of seconds, "
        "cached) and then runs faster than torch (default: %(default)s)",
    )
    p.add_argument(
        "--alpha",
        choices=("model", "resize"),
        default="model",
        help="upscale the alpha channel with the model (sharp) or with Lanczos (faster) "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--tta",
        action="store_true",
        help="self-ensemble: run every tile in its 8 flips and rotations and average the results "
        "turned back; 8x slower, the same memory, a little more quality (default on Set5: +0.19 dB)",
    )
    p.add_argument("--quality", type=int, default=95, metavar="Q", help="JPEG/WebP quality (default: 95)")
    p.add_argument(
        "--max-pixels",
        type=int,
        default=None,
        metavar="N",
        help="refuse inputs with more pixels than this (decompression bombs); 0 = no limit "
        "(default: about 89.5 million, Pillow's limit)",
    )
    p.add_argument("--skip-existing", action="store_true", help="skip inputs whose output file exists")
    p.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    p.set_defaults(run=run)


@dataclass
class Job:
    src: Path
    dst: Path


@dataclass
class Plan:
    """What a run will do: jobs, inputs already known to fail, and notes for the user."""

    jobs: list[Job]
    failures: list[tuple[Path, str]]
    notes: list[str]


def plan_jobs(inputs: list[str], output: str | None, recursive: bool, fmt: str, suffix: str) -> Plan:
    """Pair every input image with its output path; problems found now are returned as failures."""
    from ..imageio import FORMAT_BY_SUFFIX, IMAGE_SUFFIXES
    from ..paths import file_problem, printable

    def out_name(src: Path) -> str:
        ext = src.suffix.lower() if fmt == "same" else _EXT[fmt]
        if ext not in FORMAT_BY_SUFFIX:
            ext = ".png"
        return f"{src.stem}{suffix}{ext}"

    out = Path(output) if output else None
    single = (
        out is not None
        and len(inputs) == 1
        and Path(inputs[0]).is_file()
        and out.suffix.lower() in FORMAT_BY_SUFFIX
        and not out.is_dir()
    )
    jobs: list[Job] = []
    failures: list[tuple[Path, str]] = []
    notes: list[str] = []
    for text in inputs:
        src = Path(text)
        if src.is_dir():
            files, skipped_dirs = _folder_images(src, recursive, IMAGE_SUFFIXES, failures)
            skipped_dirs = [d for d in skipped_dirs if not (out and _inside(d, out))]
            if skipped_dirs:
                notes.append(
                    f"{printable(src)}: {len(skipped_dirs)} subfolder(s) not searched "
                    "(add --recursive to include them)"
                )
            root = out or src
            for f in files:
                if out is not None and _inside(f, out) and out.resolve() != src.resolve():
                    continue  # earlier outputs written inside the input tree
                jobs.append(Job(f, root / f.relative_to(src).parent / out_name(f)))
        elif (problem := file_problem(src, "image")) is None:
            if single:
                assert out is not None
                jobs.append(Job(src, out))
            else:
                jobs.append(Job(src, (out or src.parent) / out_name(src)))
        else:
            failures.append((src, "no such file or folder" if problem == "no such file" else problem))
    seen: dict[Path, Path] = {}
    kept: list[Job] = []
    for job in jobs:
        key = job.dst.resolve()
        if key == job.src.resolve():
            failures.append((job.src, "the output would overwrite the input (use --suffix or -o)"))
        elif key in seen:
            failures.append((job.src, f"same output name as {seen[key]} ({job.dst.name})"))
        else:
            seen[key] = job.src
            kept.append(job)
    return Plan(kept, failures, notes)


def _folder_images(
    src: Path, recursive: bool, suffixes: frozenset[str], failures: list[tuple[Path, str]]
) -> tuple[list[Path], list[Path]]:
    """Image files in ``src`` (and below with ``recursive``), sorted, hidden names skipped; and,
    without ``recursive``, the subfolders left out (so that the run can say so).

    A folder that cannot be listed and an image-named entry that is not a readable regular file
    (a FIFO, a link to a device, a dangling link) are failures, so nothing is left out silently.
    """
    from ..paths import file_problem

    def unreadable(err: OSError) -> None:
        failures.append((Path(err.filename or src), f"cannot read the folder ({_strerror(err)})"))

    found: list[Path] = []
    left_out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(src, onerror=unreadable):
        dirnames.sort()
        for name in filenames:
            path = Path(dirpath, name)
            if name.startswith(".") or path.suffix.lower() not in suffixes:
                continue
            problem = file_problem(path, "image")
            if problem is None:
                found.append(path)
            else:
                failures.append((path, problem))
        if not recursive:
            left_out = [Path(dirpath, d) for d in dirnames if not d.startswith(".")]
            break
    return sorted(found), left_out


def _strerror(err: OSError) -> str:
    return "permission denied" if isinstance(err, PermissionError) else (err.strerror or str(err)).lower()


def _looks_like_image(name: str) -> bool:
    from ..imageio import FORMAT_BY_SUFFIX

    return Path(name).suffix.lower() in FORMAT_BY_SUFFIX


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def _say(text: str) -> None:
    print(f"swinir upscale: {text}", file=sys.stderr)


def _check_options(args: argparse.Namespace) -> str | None:
    """The first problem with the options that needs no model, or None."""
    if not args.inputs:
        return "no INPUT given (see swinir upscale --help)"
    if args.outscale is not None and args.outscale <= 0:
        return f"--outscale must be positive, got {args.outscale}"
    if not 1 <= args.quality <= 100:
        return f"--quality must be 1-100, got {args.quality}"
    if args.batch < 1:
        return f"--batch must be at least 1, got {args.batch}"
    if args.tile_overlap < 0:
        return f"--tile-overlap must be >= 0, got {args.tile_overlap}"
    several = len(args.inputs) > 1 or Path(args.inputs[0]).is_dir()
    if several and args.output and not Path(args.output).is_dir() and _looks_like_image(args.output):
        return f"-o {args.output} is a file name, but there are several inputs; give a folder"
    return None


def run(args: argparse.Namespace) -> int:
    from ..paths import printable

    if args.list_models:
        from ..zoo import describe_models

        print(describe_models())
        return 0
    problem = _check_options(args)
    if problem:
        _say(problem)
        return 2
    # Inputs are checked before the model loads: a typo answers at once. (The real suffix needs
    # the model's scale; a stand-in finds the same files.)
    scan = plan_jobs(args.inputs, args.output, args.recursive, args.format, args.suffix or "_x")
    missing = [(src, reason) for src, reason in scan.failures if reason == "no such file or folder"]
    for src, reason in missing:
        _say(f"{printable(src)}: {reason}")
    if not scan.jobs:
        for src, reason in scan.failures:
            if reason != "no such file or folder":
                _say(f"{printable(src)}: {reason}")
        if not scan.failures:
            _say("no images found in the given input(s)")
        for note in scan.notes:
            _say(note)
        return 1

    from .. import ranks as ranks_mod

    ranks = ranks_mod.from_environment()
    ranks_mod.start(ranks)
    try:
        return _run(args, scan, ranks)
    finally:
        ranks_mod.stop(ranks)


def _run(args: argparse.Namespace, scan: Plan, ranks: ranks_mod.Ranks) -> int:
    from tqdm import tqdm

    from .. import ranks as ranks_mod
    from ..atomic import WriteError, remove_stale_temps
    from ..checkpoint import CheckpointError
    from ..imageio import (
        DEFAULT_MAX_PIXELS,
        ImageReadError,
        ImageWriteError,
        incomplete_reason,
        read_image,
        write_image,
    )
    from ..paths import printable
    from ..upscaler import Upscaler
    from ..zoo import ZooError

    quiet_here = args.quiet or not ranks.main
    upscaler = None
    error = None
    # The first process resolves the model first (a download or an ONNX export happens once).
    for turn in ("first", "others"):
        if (turn == "first") == ranks.main:
            try:
                upscaler = Upscaler(
                    args.model,
                    device=_device(args.device, ranks),
                    tile=args.tile,
                    tile_overlap=args.tile_overlap,
                    precision=args.precision,
                    img_range=args.img_range,
                    batch=args.batch,
                    alpha=args.alpha,
                    backend=args.backend,
                    max_memory=_budget(args.max_memory, ranks),
                    noise=args.noise if args.noise == "auto" else int(args.noise),
                    tta=args.tta,
                )
            except (ZooError, CheckpointError, ValueError) as exc:
                error = str(exc)
        ranks_mod.barrier(ranks)
    errors = [e for e in ranks_mod.all_gather(error, ranks) if e]
    if errors or upscaler is None:
        if ranks.main:
            _say(errors[0] if errors else "the model could not be loaded")
        return 2

    factor = args.outscale if args.outscale is not None else upscaler.scale
    suffix = args.suffix if args.suffix is not None else (f"_x{factor:g}" if factor != 1 else "_out")
    plan = plan_jobs(args.inputs, args.output, args.recursive, args.format, suffix)
    failures = list(plan.failures) if ranks.main else []
    if ranks.main:
        for src, reason in plan.failures:
            if reason != "no such file or folder":  # those were reported already
                _say(f"{printable(src)}: {reason}")
        # Before any process writes: a temp file found now is an interrupted run's, not ours.
        for folder in sorted({job.dst.parent for job in plan.jobs}):
            removed = remove_stale_temps(folder)
            if removed and not args.quiet:
                _say(
                    f"removed {len(removed)} temporary file(s) an interrupted run left in {printable(folder)}"
                )
    ranks_mod.barrier(ranks)
    jobs = ranks_mod.share(plan.jobs, ranks, cost=_file_cost)
    max_pixels = DEFAULT_MAX_PIXELS if args.max_pixels is None else args.max_pixels
    tag = f"[{ranks.rank}] " if ranks.several else ""
    prepared = _prepare(upscaler, jobs, quiet_here)
    if not quiet_here:
        _say(_header(upscaler, args, len(plan.jobs), ranks))
        for line in prepared:
            _say(line)
        for note in [*plan.notes, *upscaler.notes]:
            _say(note)

    bars_off = True if args.quiet else None  # None: tqdm shows bars only on a terminal
    written = skipped = 0
    files_bar = tqdm(jobs, desc="images", unit="img", disable=True if len(jobs) < 2 else bars_off)
    for index, job in enumerate(files_bar):
        if args.skip_existing and os.path.lexists(job.dst):
            problem = incomplete_reason(job.dst)
            if problem is None:
                skipped += 1
                continue
            tqdm.write(
                f"swinir upscale: {tag}{printable(job.dst)} exists but is {problem}; making it again",
                file=sys.stderr,
            )
        start = time.perf_counter()
        try:
            data = read_image(job.src, max_pixels=max_pixels)
            if data.frames > 1 and not args.quiet:
                tqdm.write(
                    f"swinir upscale: {tag}{printable(job.src)}: has {data.frames} frames "
                    "(animated or multi-page); only the first is upscaled",
                    file=sys.stderr,
                )
            member, choice = upscaler.choose_noise_for_file(job.src)
            if args.noise == "auto" and not args.quiet:
                note = f"{tag}{printable(job.src)}: noise level {choice.level} ({choice.reason})"
                tqdm.write(note, file=sys.stderr)
            tiles = member.plan(data)
            total = member.count_tiles(data)
            with tqdm(
                total=total,
                desc=job.src.name,
                unit="tile",
                leave=False,
                disable=True if total < 2 else bars_off,
            ) as tiles_bar:
                result = member.upscale_data(data, args.outscale, tiles_bar.update)
            write_image(job.dst, result, quality=args.quality)
        except (ImageReadError, ImageWriteError) as exc:
            failures.append((job.src, _reason(exc, job.src)))
            tqdm.write(f"swinir upscale: {tag}{exc}", file=sys.stderr)
            continue
        except WriteError as exc:
            failures.append((job.src, f"cannot write {printable(job.dst)}: {exc.reason}"))
            tqdm.write(f"swinir upscale: {tag}{exc}", file=sys.stderr)
            if exc.disk_full:
                # Every later write would fail the same way: stop rather than compute them all.
                not_done = jobs[index + 1 :]
                failures.extend((j.src, "not processed: the disk is full") for j in not_done)
                tqdm.write(
                    f"swinir upscale: {tag}stopping: no space left on device; {len(not_done)} image(s) "
                    "not processed (free some space, then rerun with --skip-existing)",
                    file=sys.stderr,
                )
                break
            continue
        except (MemoryError, RuntimeError, OSError, ValueError) as exc:
            reason = _reason(exc, job.src)
            if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
                reason = "out of memory (try --max-memory with less, a smaller --tile, or --precision bf16)"
            failures.append((job.src, reason))
            tqdm.write(f"swinir upscale: {tag}{printable(job.src)}: {reason}", file=sys.stderr)
            continue
        written += 1
        if not args.quiet:
            seconds = time.perf_counter() - start
            tqdm.write(
                f"{tag}{printable(job.src)} -> {printable(job.dst)} ({data.width}x{data.height} -> "
                f"{result.width}x{result.height}, {tiles.describe()}, {seconds:.1f} s)"
            )
    files_bar.close()

    results = ranks_mod.all_gather((written, skipped, [(str(p), r) for p, r in failures]), ranks)
    written = sum(r[0] for r in results)
    skipped = sum(r[1] for r in results)
    failed = sum(len(r[2]) for r in results)
    if ranks.main and (not args.quiet or failed):
        # Each failure was reported when it happened; the summary counts them.
        summary = f"{written} written, {skipped} skipped, {failed} failed"
        if failed:
            summary += " (reasons above)"
        if ranks.several:
            summary += f" ({ranks.world} processes)"
        _say(summary)
    return 1 if failed else 0


def _budget(gib: float | None, ranks: ranks_mod.Ranks) -> int | None:
    """--max-memory in bytes; by default, processes on one machine split the default budget."""
    from ..memory import GIB, default_budget

    if gib is not None:
        return int(gib * GIB)
    if not ranks.several:
        return None
    try:
        local = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        local = 1
    return default_budget() // local


def _device(device: str, ranks: ranks_mod.Ranks) -> str:
    """Under torchrun, each process on its own GPU (``cuda:LOCAL_RANK``) when CUDA is in use."""
    if not ranks.several or device not in ("auto", "cuda"):
        return device
    import torch

    if torch.cuda.is_available() and torch.cuda.device_count() > 1:
        return f"cuda:{ranks.local_rank % torch.cuda.device_count()}"
    return device


def _file_cost(job: Job) -> float:
    try:
        return float(job.src.stat().st_size)
    except OSError:
        return 0.0


def _header(upscaler: Upscaler, args: argparse.Namespace, count: int, ranks: ranks_mod.Ranks) -> str:
    model = args.model if not Path(args.model).is_file() else upscaler.weights.name
    params = getattr(upscaler.runner, "params", None)
    size = f", {params / 1e6:.2f}M parameters" if params else ""
    where = str(upscaler.device)
    if ranks.several:
        where += f", {ranks.world} processes"
    tta = ", self-ensemble of 8" if upscaler.tta else ""
    return (
        f"model {model} (x{upscaler.scale}{size}) on {where}, {upscaler.precision}, "
        f"{upscaler.backend} back end{tta}; tiles: {upscaler.describe_tiling()}; {count} image(s)"
    )


def _prepare(upscaler: Upscaler, jobs: list[Job], quiet: bool) -> list[str]:
    """For back ends that convert the model per tile shape (openvino): convert the shapes this
    run's images need before the first one, so that the header can say what that cost.

    Sizes come from the files' headers; a file that cannot be read here is left to fail (or be
    converted for) when its turn comes.
    """
    if not hasattr(upscaler.runner, "prepare"):
        return []
    if quiet and hasattr(upscaler.runner, "log"):
        upscaler.runner.log = lambda line: None
    plans = []
    for job in jobs:
        size = _probe(job.src)
        if size is not None:
            plans.append(upscaler.plan_size(*size))
    try:
        lines = upscaler.prepare(plans)
    except ValueError as exc:  # a conversion failed: each image will say so in turn
        return [f"openvino: {exc}"]
    return [f"{upscaler.backend}: {line}" for line in lines]


def _probe(path: Path) -> tuple[int, int, int] | None:
    """(height, width, channels with alpha) from an image file's header, EXIF rotation applied."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            width, height = im.size
            bands = len(im.getbands()) if im.mode != "P" else (4 if "transparency" in im.info else 3)
            if im.mode == "CMYK":
                bands = 3
            orientation = im.getexif().get(0x0112, 1)
    except Exception:
        return None
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    return height, width, bands


def _reason(exc: BaseException, src: Path) -> str:
    """The reason part of an error message, without a leading 'path: '."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    prefix = f"{src}: "
    return text[len(prefix) :] if text.startswith(prefix) else text
