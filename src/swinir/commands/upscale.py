"""``swinir upscale INPUT... -o OUT``: upscale files and folders with any SwinIR model."""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

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

Outputs keep the input's mode (gray stays gray), alpha channel, 16-bit depth (PNG/TIFF) and ICC
profile; EXIF orientation is applied. Files are written atomically. A file that cannot be read is
reported with the reason and the run goes on; the exit status is 1 if any file failed, 2 for bad
options or a model that cannot be loaded.
"""

FORMATS = ("same", "png", "jpg", "webp", "tiff", "bmp")
_EXT = {"png": ".png", "jpg": ".jpg", "webp": ".webp", "tiff": ".tiff", "bmp": ".bmp"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..tiling import DEFAULT_OVERLAP, DEFAULT_TILE

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
        type=int,
        default=DEFAULT_TILE,
        metavar="N",
        help="tile edge in input pixels, rounded to the model window; 0 = whole image at once "
        "(fastest, most memory) (default: %(default)s: model memory stays bounded; a 2048x2048 "
        "x2 run peaks under 1 GB on CPU)",
    )
    p.add_argument(
        "--tile-overlap",
        type=int,
        default=DEFAULT_OVERLAP,
        metavar="N",
        help="overlap between tiles in input pixels, feathered so no seam shows (default: %(default)s)",
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
        choices=("torch", "onnxruntime"),
        default="torch",
        help="onnxruntime (CPU, needs swinir[onnx]) runs an exported graph: --model can be an .onnx "
        "file from `swinir export-onnx`, or weights, exported once into the cache (default: %(default)s)",
    )
    p.add_argument(
        "--alpha",
        choices=("model", "resize"),
        default="model",
        help="upscale the alpha channel with the model (sharp) or with Lanczos (faster) "
        "(default: %(default)s)",
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


def plan_jobs(
    inputs: list[str], output: str | None, recursive: bool, fmt: str, suffix: str
) -> tuple[list[Job], list[tuple[Path, str]]]:
    """Pair every input image with its output path; problems found now are returned as failures."""
    from ..imageio import FORMAT_BY_SUFFIX, IMAGE_SUFFIXES
    from ..paths import file_problem

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
    for text in inputs:
        src = Path(text)
        if src.is_dir():
            files = _folder_images(src, recursive, IMAGE_SUFFIXES, failures)
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
    return kept, failures


def _folder_images(
    src: Path, recursive: bool, suffixes: frozenset[str], failures: list[tuple[Path, str]]
) -> list[Path]:
    """Image files in ``src`` (and below with ``recursive``), sorted; hidden names skipped.

    A folder that cannot be listed and an image-named entry that is not a readable regular file
    (a FIFO, a link to a device, a dangling link) are failures, so nothing is left out silently.
    """
    from ..paths import file_problem

    def unreadable(err: OSError) -> None:
        failures.append((Path(err.filename or src), f"cannot read the folder ({_strerror(err)})"))

    found: list[Path] = []
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
            break
    return sorted(found)


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


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

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
    from ..jpeg_quality import jpeg_tables
    from ..paths import printable
    from ..upscaler import Upscaler
    from ..zoo import ZooError, describe_models

    if args.list_models:
        print(describe_models())
        return 0
    if not args.inputs:
        print("swinir upscale: no INPUT given (see swinir upscale --help)", file=sys.stderr)
        return 2
    if args.outscale is not None and args.outscale <= 0:
        print(f"swinir upscale: --outscale must be positive, got {args.outscale}", file=sys.stderr)
        return 2
    if not 1 <= args.quality <= 100:
        print(f"swinir upscale: --quality must be 1-100, got {args.quality}", file=sys.stderr)
        return 2
    several = len(args.inputs) > 1 or Path(args.inputs[0]).is_dir()
    if several and args.output and not Path(args.output).is_dir() and _looks_like_image(args.output):
        print(
            f"swinir upscale: -o {args.output} is a file name, but there are several inputs; give a folder",
            file=sys.stderr,
        )
        return 2
    bars_off = True if args.quiet else None  # None: tqdm shows bars only on a terminal
    try:
        upscaler = Upscaler(
            args.model,
            device=args.device,
            tile=args.tile,
            tile_overlap=args.tile_overlap,
            precision=args.precision,
            img_range=args.img_range,
            batch=args.batch,
            alpha=args.alpha,
            backend=args.backend,
            noise=args.noise if args.noise == "auto" else int(args.noise),
        )
    except (ZooError, CheckpointError, ValueError) as exc:
        print(f"swinir upscale: {exc}", file=sys.stderr)
        return 2
    factor = args.outscale if args.outscale is not None else upscaler.scale
    suffix = args.suffix if args.suffix is not None else (f"_x{factor:g}" if factor != 1 else "_out")
    jobs, failures = plan_jobs(args.inputs, args.output, args.recursive, args.format, suffix)
    for src, reason in failures:
        print(f"swinir upscale: {printable(src)}: {reason}", file=sys.stderr)
    for folder in sorted({job.dst.parent for job in jobs}):
        removed = remove_stale_temps(folder)
        if removed and not args.quiet:
            print(
                f"swinir upscale: removed {len(removed)} temporary file(s) an interrupted run left in "
                f"{printable(folder)}",
                file=sys.stderr,
            )
    if not jobs and not failures:
        print("swinir upscale: no images found in the given folders", file=sys.stderr)
        return 1
    max_pixels = DEFAULT_MAX_PIXELS if args.max_pixels is None else args.max_pixels
    if not args.quiet:
        print(
            f"model {upscaler.weights.name} (x{upscaler.scale}) on {upscaler.device}, "
            f"tile {args.tile or 'off'}, {len(jobs)} image(s)",
            file=sys.stderr,
        )

    written = skipped = 0
    files_bar = tqdm(jobs, desc="images", unit="img", disable=True if len(jobs) < 2 else bars_off)
    for index, job in enumerate(files_bar):
        if args.skip_existing and os.path.lexists(job.dst):
            problem = incomplete_reason(job.dst)
            if problem is None:
                skipped += 1
                continue
            tqdm.write(
                f"swinir upscale: {printable(job.dst)} exists but is {problem}; making it again",
                file=sys.stderr,
            )
        start = time.perf_counter()
        try:
            data = read_image(job.src, max_pixels=max_pixels)
            member, choice = upscaler.choose_noise(jpeg_tables(job.src))
            if args.noise == "auto" and not args.quiet:
                note = f"{printable(job.src)}: noise level {choice.level} ({choice.reason})"
                tqdm.write(note, file=sys.stderr)
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
            tqdm.write(f"swinir upscale: {exc}", file=sys.stderr)
            continue
        except WriteError as exc:
            failures.append((job.src, f"cannot write {printable(job.dst)}: {exc.reason}"))
            tqdm.write(f"swinir upscale: {exc}", file=sys.stderr)
            if exc.disk_full:
                # Every later write would fail the same way: stop rather than compute them all.
                not_done = jobs[index + 1 :]
                failures.extend((j.src, "not processed: the disk is full") for j in not_done)
                tqdm.write(
                    f"swinir upscale: stopping: no space left on device; {len(not_done)} image(s) "
                    "not processed (free some space, then rerun with --skip-existing)",
                    file=sys.stderr,
                )
                break
            continue
        except (MemoryError, RuntimeError, OSError, ValueError) as exc:
            reason = _reason(exc, job.src)
            if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
                reason = "out of memory (try a smaller --tile, or --precision bf16)"
            failures.append((job.src, reason))
            tqdm.write(f"swinir upscale: {printable(job.src)}: {reason}", file=sys.stderr)
            continue
        written += 1
        if not args.quiet:
            seconds = time.perf_counter() - start
            tqdm.write(
                f"{printable(job.src)} -> {printable(job.dst)} ({data.width}x{data.height} -> "
                f"{result.width}x{result.height}, {seconds:.1f} s)"
            )
    files_bar.close()

    if not args.quiet or failures:
        summary = f"{written} written, {skipped} skipped, {len(failures)} failed"
        print(f"swinir upscale: {summary}", file=sys.stderr)
        for src, reason in failures:
            print(f"  {printable(src)}: {reason}", file=sys.stderr)
    return 1 if failures else 0


def _reason(exc: BaseException, src: Path) -> str:
    """The reason part of an error message, without a leading 'path: '."""
    from ..paths import printable

    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    for prefix in (f"{printable(src)}: ", f"{src}: "):
        if text.startswith(prefix):
            return text[len(prefix) :]
    return text
