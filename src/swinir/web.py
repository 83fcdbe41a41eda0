"""A small local web UI: drop an image in a browser page, get the upscaled image back.

Standard library only (``http.server``), so it needs no extra dependencies. The page posts the raw
file bytes to ``/upscale``; the server decodes them with :func:`swinir.imageio.read_image` (EXIF
orientation, alpha, 16-bit, size limits), runs one shared :class:`swinir.Upscaler` (one request at a
time, since a model already uses every core), and answers with a PNG. Errors come back as a
one-line ``text/plain`` 4xx/5xx response.
"""

from __future__ import annotations

import json
import tempfile
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from .imageio import ImageReadError, read_image, write_image
from .upscaler import Upscaler

DEFAULT_MAX_UPLOAD = 32 * 1024 * 1024  # bytes
DEFAULT_MAX_PIXELS = 16_000_000  # input pixels; upscaling a bigger image in a browser tab is no fun

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>swinir</title>
<style>
 body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}
 #drop{border:2px dashed #888;padding:2em;text-align:center;border-radius:8px}
 #drop.over{background:#eef}
 .row{display:flex;gap:1em;margin-top:1em}
 .row figure{flex:1;margin:0}
 .row img{max-width:100%;image-rendering:pixelated;border:1px solid #ccc}
 #status{margin-top:1em;color:#444}
 #status.error{color:#b00}
</style></head>
<body>
<h1>swinir</h1>
<p>Model: <code>__MODEL__</code> (x__SCALE__). Drop an image below or pick a file.</p>
<div id="drop"><input type="file" id="file" accept="image/*">
 <label>Output scale <input type="number" id="outscale" min="0.1" max="16" step="0.1"
  placeholder="__SCALE__"></label></div>
<div id="status"></div>
<div class="row">
 <figure><figcaption>Input</figcaption><img id="before" alt=""></figure>
 <figure><figcaption>Result <a id="save" download="upscaled.png" hidden>download</a></figcaption>
  <img id="after" alt=""></figure>
</div>
<script>
const $ = (id) => document.getElementById(id);
async function send(file) {
  $("before").src = URL.createObjectURL(file);
  $("after").removeAttribute("src"); $("save").hidden = true;
  $("status").className = ""; $("status").textContent = "Upscaling " + file.name + " ...";
  const t0 = performance.now();
  const q = $("outscale").value ? "?outscale=" + encodeURIComponent($("outscale").value) : "";
  const res = await fetch("/upscale" + q, {method: "POST", body: file,
    headers: {"X-Filename": encodeURIComponent(file.name)}});
  if (!res.ok) {
    $("status").className = "error"; $("status").textContent = await res.text(); return;
  }
  const url = URL.createObjectURL(await res.blob());
  $("after").src = url; $("save").href = url; $("save").hidden = false;
  $("save").download = file.name.replace(/\\.[^.]*$/, "") + "_swinir.png";
  $("status").textContent = "Done in " + ((performance.now() - t0) / 1000).toFixed(1) + " s";
}
$("file").onchange = (e) => e.target.files[0] && send(e.target.files[0]);
const drop = $("drop");
drop.ondragover = (e) => { e.preventDefault(); drop.classList.add("over"); };
drop.ondragleave = () => drop.classList.remove("over");
drop.ondrop = (e) => { e.preventDefault(); drop.classList.remove("over");
  if (e.dataTransfer.files[0]) send(e.dataTransfer.files[0]); };
</script>
</body></html>
"""


class WebError(Exception):
    """A request that cannot be served; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


class UpscaleService:
    """The work behind the page: bytes of an image in, PNG bytes out, one request at a time."""

    def __init__(
        self,
        upscaler: Upscaler,
        model_name: str,
        max_upload: int = DEFAULT_MAX_UPLOAD,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        self.upscaler = upscaler
        self.model_name = model_name
        self.max_upload = max_upload
        self.max_pixels = max_pixels
        self._lock = threading.Lock()

    def page(self) -> bytes:
        html = PAGE.replace("__MODEL__", _html_escape(self.model_name))
        return html.replace("__SCALE__", str(self.upscaler.scale)).encode()

    def info(self) -> dict[str, object]:
        return {
            "model": self.model_name,
            "scale": self.upscaler.scale,
            "device": str(self.upscaler.device),
            "max_upload_bytes": self.max_upload,
            "max_pixels": self.max_pixels,
        }

    def upscale(self, body: bytes, filename: str, outscale: float | None) -> bytes:
        """Upscale an encoded image; raises :class:`WebError` for bad input."""
        if not body:
            raise WebError(HTTPStatus.BAD_REQUEST, f"{filename}: empty upload")
        if outscale is not None and not 0 < outscale <= 16:
            raise WebError(HTTPStatus.BAD_REQUEST, f"outscale must be in (0, 16], got {outscale}")
        suffix = Path(filename).suffix[:8] if Path(filename).suffix.isascii() else ""
        with tempfile.TemporaryDirectory(prefix="swinir-web-") as tmp:
            src = Path(tmp) / f"upload{suffix}"
            src.write_bytes(body)
            try:
                data = read_image(src, max_pixels=self.max_pixels)
            except ImageReadError as exc:
                # The message names the temporary file; name the user's file instead.
                reason = str(exc).split(": ", 1)[-1]
                raise WebError(HTTPStatus.BAD_REQUEST, f"{filename}: {reason}") from None
            with self._lock:
                result = self.upscaler.upscale_data(data, outscale)
            out = write_image(Path(tmp) / "result.png", result, format="png")
            return out.read_bytes()


class _Handler(BaseHTTPRequestHandler):
    service: UpscaleService  # set on the subclass made by make_server
    quiet: bool = False

    def do_GET(self) -> None:
        path = urlparse(self.path).path
        if path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, "text/html; charset=utf-8", self.service.page())
        elif path == "/api/info":
            self._send(HTTPStatus.OK, "application/json", json.dumps(self.service.info()).encode())
        else:
            self._error(HTTPStatus.NOT_FOUND, f"no page at {path}")

    def do_POST(self) -> None:
        url = urlparse(self.path)
        if url.path != "/upscale":
            self._error(HTTPStatus.NOT_FOUND, f"no endpoint at {url.path}")
            return
        filename = _filename(self.headers.get("X-Filename", "upload"))
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._error(HTTPStatus.LENGTH_REQUIRED, "send the image with a Content-Length header")
            return
        if length > self.service.max_upload:
            self._error(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"{filename}: {length} bytes is over the {self.service.max_upload}-byte upload limit",
            )
            return
        body = self.rfile.read(length)
        try:
            outscale = _outscale(parse_qs(url.query))
            png = self.service.upscale(body, filename, outscale)
        except WebError as exc:
            self._error(exc.status, str(exc))
            return
        except Exception as exc:  # report, keep serving
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"{filename}: upscaling failed ({exc})")
            return
        self._send(HTTPStatus.OK, "image/png", png)

    def _send(self, status: HTTPStatus, ctype: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: HTTPStatus, message: str) -> None:
        self._send(status, "text/plain; charset=utf-8", (message.splitlines()[0] + "\n").encode())

    def log_message(self, format: str, *args: object) -> None:
        if not self.quiet:
            super().log_message(format, *args)


def _filename(raw: str) -> str:
    from urllib.parse import unquote

    name = Path(unquote(raw)).name
    return name[:200] or "upload"


def _outscale(query: dict[str, list[str]]) -> float | None:
    values = query.get("outscale")
    if not values or not values[0]:
        return None
    try:
        return float(values[0])
    except ValueError:
        raise WebError(HTTPStatus.BAD_REQUEST, f"outscale must be a number, got {values[0]!r}") from None


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def make_server(service: UpscaleService, host: str = "127.0.0.1", port: int = 8000, quiet: bool = False):
    """An HTTP server bound to ``host:port`` (port 0 picks a free one); call ``serve_forever()``."""
    handler = type("Handler", (_Handler,), {"service": service, "quiet": quiet})
    return ThreadingHTTPServer((host, port), handler)
