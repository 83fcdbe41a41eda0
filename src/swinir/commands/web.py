"""``swinir web``: serve a small local web page for upscaling images in a browser."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..tiling import DEFAULT_OVERLAP, DEFAULT_TILE
    from ..web import DEFAULT_MAX_PIXELS, DEFAULT_MAX_UPLOAD

    p = sub.add_parser(
        "web",
        help="serve a local web page for upscaling images",
        description="Start a small web UI: open the printed address, drop an image, download the "
        "result. It listens on 127.0.0.1 only unless --host says otherwise; requests are served one "
        "at a time.",
    )
    p.add_argument("-m", "--model", default="default", help="zoo name or weights file (default: %(default)s)")
    p.add_argument("--img-range", type=float, default=None, help="input scaling override (1 or 255)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="port; 0 picks a free one (default: %(default)s)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default: %(default)s)")
    p.add_argument("--tile", type=int, default=DEFAULT_TILE, help="tile size (default: %(default)s)")
    p.add_argument(
        "--tile-overlap", type=int, default=DEFAULT_OVERLAP, help="tile overlap (default: %(default)s)"
    )
    p.add_argument(
        "--max-upload",
        type=int,
        default=DEFAULT_MAX_UPLOAD,
        help="largest upload in bytes (default: %(default)s)",
    )
    p.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        help="largest input in pixels (default: %(default)s)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="do not log requests")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..checkpoint import CheckpointError
    from ..upscaler import Upscaler
    from ..web import UpscaleService, make_server
    from ..zoo import ZooError

    try:
        upscaler = Upscaler(
            args.model, device=args.device, tile=args.tile, tile_overlap=args.tile_overlap,
            img_range=args.img_range,
        )  # fmt: skip
    except (CheckpointError, ZooError, ValueError, OSError) as exc:
        print(f"swinir web: {exc}", file=sys.stderr)
        return 2
    service = UpscaleService(upscaler, str(args.model), args.max_upload, args.max_pixels)
    try:
        server = make_server(service, args.host, args.port, quiet=args.quiet)
    except OSError as exc:
        print(
            f"swinir web: cannot listen on {args.host}:{args.port} ({exc.strerror or exc})", file=sys.stderr
        )
        return 2
    host, port = server.server_address[:2]
    print(f"swinir web: serving {args.model} (x{upscaler.scale}) at http://{host}:{port}/  (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
