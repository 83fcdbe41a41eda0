"""``swinir web``: serve the local upscaling studio (a page and an HTTP API) on this machine."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..tiling import DEFAULT_OVERLAP, DEFAULT_TILE
    from ..web import settings as s

    p = sub.add_parser(
        "web",
        help="serve a local web page (and HTTP API) for upscaling images",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Start the upscaling studio: open the printed address, drop images, compare and\n"
        "download. Uploads become jobs in a queue run by one worker. The API is documented at /docs.\n\n"
        "It listens on 127.0.0.1 (this machine only) unless --host says otherwise; on any other\n"
        "address it needs --token, since anyone who reaches it can use this machine's CPU/GPU.",
        epilog="examples:\n"
        "  swinir web                                  # http://127.0.0.1:8000/\n"
        "  swinir web --models default art             # offer these models\n"
        "  swinir web --models mine=runs/x/best.safetensors --port 0\n"
        '  swinir web --host 0.0.0.0 --token "$(openssl rand -hex 16)"\n'
        "  curl -F file=@photo.png -F format=webp http://127.0.0.1:8000/api/jobs",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="port; 0 picks a free one (default: %(default)s)")
    p.add_argument(
        "--models",
        nargs="+",
        default=[],
        metavar="MODEL",
        help="models to offer: zoo names (see `swinir upscale --list-models`), weights files, or "
        "NAME=FILE; the first is preselected (default: every model usable offline: the bundled ones "
        "and those already downloaded)",
    )
    auth = p.add_mutually_exclusive_group()
    auth.add_argument(
        "--token", help="secret every request must carry (?token=, cookie or 'Authorization: Bearer')"
    )
    auth.add_argument(
        "--no-token",
        action="store_true",
        help="serve a non-loopback --host without a token (anyone who can reach it may use it)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default: %(default)s)")
    p.add_argument(
        "--precision",
        default="fp32",
        choices=("fp32", "bf16", "int8"),
        help="bf16 on GPUs, int8 on CPUs (default: %(default)s)",
    )
    p.add_argument("--tile", type=int, default=DEFAULT_TILE, help="tile size (default: %(default)s)")
    p.add_argument(
        "--tile-overlap", type=int, default=DEFAULT_OVERLAP, help="tile overlap (default: %(default)s)"
    )
    lim = p.add_argument_group("limits")
    lim.add_argument(
        "--max-upload-mb", type=float, default=s.DEFAULT_MAX_UPLOAD / s.MiB,
        help="largest upload in MiB; larger ones get 413 before they are read (default: %(default)g)",
    )  # fmt: skip
    lim.add_argument(
        "--max-pixels", type=int, default=s.DEFAULT_MAX_PIXELS,
        help="largest input in pixels, checked before decoding (default: %(default)s)",
    )  # fmt: skip
    lim.add_argument(
        "--max-output-pixels", type=int, default=s.DEFAULT_MAX_OUTPUT_PIXELS,
        help="largest output in pixels; bigger scale requests get 413 (default: %(default)s)",
    )  # fmt: skip
    lim.add_argument(
        "--max-outscale", type=float, default=s.DEFAULT_MAX_OUTSCALE,
        help="largest output scale a client may ask for (default: %(default)g)",
    )  # fmt: skip
    lim.add_argument(
        "--max-queue", type=int, default=s.DEFAULT_QUEUE,
        help="jobs waiting or running; more get 429 (default: %(default)s)",
    )  # fmt: skip
    lim.add_argument(
        "--max-storage-mb", type=float, default=s.DEFAULT_STORAGE / s.MiB,
        help="uploads and results kept on disk, in MiB; the oldest results go first, then uploads "
        "get 503 (default: %(default)g)",
    )  # fmt: skip
    lim.add_argument(
        "--keep", type=float, default=s.DEFAULT_KEEP, metavar="SECONDS",
        help="how long a finished job and its result are kept (default: %(default)g)",
    )  # fmt: skip
    lim.add_argument(
        "--body-timeout", type=float, default=s.DEFAULT_BODY_TIMEOUT, metavar="SECONDS",
        help="time to send a whole upload; slower ones get 408 (default: %(default)g)",
    )  # fmt: skip
    lim.add_argument(
        "--header-timeout", type=float, default=s.DEFAULT_HEADER_TIMEOUT, metavar="SECONDS",
        help="time for a connection to send a request head; idle ones are closed (default: %(default)g)",
    )  # fmt: skip
    lim.add_argument(
        "--max-connections", type=int, default=s.DEFAULT_MAX_CONNECTIONS,
        help="open connections; more get 503 (default: %(default)s)",
    )  # fmt: skip
    p.add_argument("-q", "--quiet", action="store_true", help="do not log requests")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        from ..web.server import serve
    except ImportError as exc:  # the web extra is not installed
        print(f"swinir web: needs the web extra ({exc}); pip install 'swinir[web]'", file=sys.stderr)
        return 2
    from ..web.catalog import choices_from
    from ..web.settings import MiB, WebSettings, is_loopback
    from ..zoo import ZooError

    if not is_loopback(args.host) and args.token is None:
        if not args.no_token:
            print(
                f"swinir web: --host {args.host} lets other machines in; give --token SECRET "
                '(e.g. --token "$(openssl rand -hex 16)"), or --no-token to allow anyone',
                file=sys.stderr,
            )
            return 2
        bar = "!" * 78
        print(
            f"{bar}\n! WARNING: serving on {args.host} WITHOUT A TOKEN: anyone who can reach this address\n"
            "! can upload files and use this machine's CPU/GPU. Use --token SECRET unless the network is\n"
            f"! yours.\n{bar}",
            file=sys.stderr,
        )
    if args.token is not None and (len(args.token) < 8 or not args.token.isprintable()):
        print("swinir web: --token must be at least 8 printable characters", file=sys.stderr)
        return 2
    try:
        models = choices_from(args.models)
    except ZooError as exc:
        print(f"swinir web: {exc}", file=sys.stderr)
        return 2
    if not models:
        print(
            "swinir web: no model is available offline; pass --models with a zoo name (downloaded on "
            "first use) or a weights file",
            file=sys.stderr,
        )
        return 2
    try:
        settings = WebSettings(
            models=tuple(models), host=args.host, port=args.port, token=args.token, device=args.device,
            tile=args.tile, tile_overlap=args.tile_overlap, precision=args.precision,
            max_upload=int(args.max_upload_mb * MiB), max_pixels=args.max_pixels,
            max_output_pixels=args.max_output_pixels, max_outscale=args.max_outscale,
            max_queue=args.max_queue, max_storage=int(args.max_storage_mb * MiB), keep_seconds=args.keep,
            body_timeout=args.body_timeout, header_timeout=args.header_timeout,
            max_connections=args.max_connections, quiet=args.quiet,
        )  # fmt: skip
        from ..tiling import validate

        validate(args.tile, args.tile_overlap)
        from ..upscaler import pick_device

        pick_device(args.device)
    except ValueError as exc:
        print(f"swinir web: {exc}", file=sys.stderr)
        return 2
    return serve(settings, announce=lambda line: print(line, flush=True))
