"""Run the app: bind the socket, print the address, serve with uvicorn, clean up on the way out.

The temporary folder is ``swinir-web-<pid>-<random>`` in the system's temporary directory. It is
deleted when the server stops (Ctrl-C, SIGTERM); folders left by a server that was killed outright
(their pid is gone) are deleted when the next one starts.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import uvicorn

from .app import create_app
from .catalog import UpscalerFactory, build_upscaler
from .protocol import protocol_class
from .settings import WebSettings

FOLDER_PREFIX = "swinir-web-"


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(512)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def url_for(sock: socket.socket, host: str, token: str | None) -> str:
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    if host in ("0.0.0.0", "::"):
        shown = socket.gethostname()
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def remove_stale_folders(root: Path) -> list[Path]:
    """Delete ``swinir-web-<pid>-*`` folders whose server process no longer exists."""
    removed = []
    for path in root.glob(f"{FOLDER_PREFIX}*"):
        pid_text = path.name[len(FOLDER_PREFIX) :].split("-", 1)[0]
        if not pid_text.isdigit() or not path.is_dir() or _alive(int(pid_text)):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def make_folder(settings: WebSettings) -> Path:
    root = Path(settings.temp_root or tempfile.gettempdir())
    remove_stale_folders(root)
    return Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-", dir=root))


def make_server(
    settings: WebSettings, sock: socket.socket, factory: UpscalerFactory = build_upscaler
) -> tuple[uvicorn.Server, Path]:
    """A uvicorn server for ``settings`` on ``sock`` and the temporary folder its app uses."""
    folder = make_folder(settings)
    app = create_app(settings, folder, factory)
    config = uvicorn.Config(
        app,
        http=protocol_class(settings.header_timeout),
        lifespan="on",
        timeout_keep_alive=5,
        limit_concurrency=settings.max_connections,
        timeout_graceful_shutdown=5,
        log_level="warning" if settings.quiet else "info",
        access_log=not settings.quiet,
        server_header=False,
    )
    return uvicorn.Server(config), folder


def serve(
    settings: WebSettings,
    announce: Callable[[str], None] = print,
    factory: UpscalerFactory = build_upscaler,
) -> int:
    """Serve until Ctrl-C (returns 0) or SIGTERM; returns an exit code."""
    try:
        sock = bind(settings.host, settings.port)
    except OSError as exc:
        print(f"swinir web: cannot listen on {settings.host}:{settings.port} ({exc.strerror or exc})",
              file=sys.stderr)  # fmt: skip
        return 2
    server, folder = make_server(settings, sock, factory)
    names = ", ".join(m.name for m in settings.models)
    announce(f"swinir web: {url_for(sock, settings.host, settings.token)}  (models: {names}; Ctrl-C to stop)")
    try:
        # On SIGINT/SIGTERM uvicorn shuts down gracefully (the lifespan deletes the folder), then
        # re-raises the signal: Ctrl-C ends here, SIGTERM ends the process as SIGTERM does.
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
        shutil.rmtree(folder, ignore_errors=True)
    return 0
