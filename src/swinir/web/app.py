"""The FastAPI application: the HTTP API, the page, and API docs that work offline.

Errors are JSON ``{"error": "one line"}`` with the status saying what kind: 400 a bad image or field,
413 too large (bytes, pixels, or the output a scale would make), 415 not an image, 429 queue full,
503 no room to keep the upload, 404 unknown job, 409 a result asked for before it exists.

The page polls ``GET /api/jobs?ids=...`` for progress (one small request for all of its jobs every
few hundred ms) rather than holding a server-sent-event stream per job: browsers allow six
connections per host, and a stream per job would starve the uploads; a poll also survives the
server's idle-connection timeouts without reconnection logic.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import unicodedata
import warnings
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Annotated, BinaryIO

import anyio
from fastapi import FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from PIL import Image, UnidentifiedImageError
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from .catalog import LoadedModels, UpscalerFactory, build_upscaler
from .guard import Guard
from .jobs import Job, JobOptions, JobQueue, JobState, QueueFull, StorageFull
from .settings import ALPHA_MODES, FORMATS, WebSettings, is_loopback

STATIC = Path(__file__).resolve().parent / "static"
MEDIA_TYPES = {"png": "image/png", "webp": "image/webp", "jpg": "image/jpeg"}
_COPY_CHUNK = 1 << 20


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def create_app(settings: WebSettings, folder: Path, factory: UpscalerFactory = build_upscaler) -> Guard:
    """The ASGI application (FastAPI behind :class:`Guard`); ``folder`` holds uploads and results.

    The job queue starts and stops with the app's lifespan; stopping it deletes ``folder``.
    """
    queue = JobQueue(settings, folder, LoadedModels(settings, factory))
    # Decoding an upload to check it happens in threads; two at a time bounds their memory.
    decode_limiter = anyio.CapacityLimiter(2)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        queue.start()
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(queue.close)

    app = FastAPI(
        title="swinir web",
        version=__version__,
        description="Upscale images with SwinIR models. Upload with `curl -F file=@photo.png "
        "http://127.0.0.1:8000/api/jobs`, poll the job, download its result.",
        docs_url=None,  # FastAPI's own /docs loads Swagger UI from a CDN; ours is served locally
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.queue = queue

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
        return _error(400, f"{where or 'request'}: {first.get('msg', 'invalid')}")

    # -- page and docs -------------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/docs", include_in_schema=False)
    async def docs() -> FileResponse:
        return FileResponse(STATIC / "docs.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    # -- API -----------------------------------------------------------------------------------

    @app.get("/api/models", summary="Models, formats and limits of this server")
    async def models() -> dict[str, object]:
        return {
            "models": [
                {
                    "name": m.name,
                    "scale": m.scale,
                    "noise_levels": list(m.noise_levels),
                    "description": m.description,
                }
                for m in settings.models
            ],
            "formats": list(FORMATS),
            "alpha_modes": list(ALPHA_MODES),
            "limits": {
                "max_upload_bytes": settings.max_upload,
                "max_pixels": settings.max_pixels,
                "max_output_pixels": settings.max_output_pixels,
                "max_outscale": settings.max_outscale,
                "max_queue": settings.max_queue,
                "keep_seconds": settings.keep_seconds,
            },
        }

    @app.get("/api/status", summary="Queue and storage counters")
    async def status() -> dict[str, int]:
        return queue.stats()

    @app.post(
        "/api/jobs",
        status_code=202,
        summary="Upload an image to upscale",
        description="Multipart form: `file` plus options. Answers 202 with the job; poll "
        "`GET /api/jobs/{id}` until `state` is done, failed or cancelled.",
    )
    async def create_job(
        file: Annotated[UploadFile, File(description="the image (PNG, JPEG, WebP, BMP, TIFF, ...)")],
        model: Annotated[str | None, Form(description="a name from GET /api/models")] = None,
        noise: Annotated[
            str | None, Form(description="noise level or 'auto', for models that have levels (art)")
        ] = None,
        outscale: Annotated[float | None, Form(description="final scale (default: the model's)")] = None,
        format: Annotated[str, Form(description="png, webp or jpg")] = "png",
        quality: Annotated[int, Form(description="webp/jpg quality, 1-100")] = 92,
        alpha: Annotated[str, Form(description="model (sharp) or resize (Lanczos)")] = "model",
        tta: Annotated[
            bool, Form(description="self-ensemble: the 8 flips and rotations averaged (8x the time)")
        ] = False,
    ) -> JSONResponse:
        name = safe_filename(file.filename)
        options = _options(settings, model, noise, outscale, format, quality, alpha, tta)
        size = file.size if file.size is not None else _spooled_size(file.file)
        if size == 0:
            raise ApiError(400, f"{name}: the upload is empty")
        if size > settings.max_upload:
            raise ApiError(
                413, f"{name}: {size} bytes is over this server's {settings.max_upload}-byte limit"
            )
        try:
            queue.reserve(size)
        except QueueFull as exc:
            raise ApiError(429, str(exc)) from None
        except StorageFull as exc:
            raise ApiError(503, str(exc)) from None
        job_id, path = queue.new_upload_path()
        try:
            await anyio.to_thread.run_sync(_copy, file.file, path)
            width, height = await anyio.to_thread.run_sync(
                _check_image, path, name, settings, options, limiter=decode_limiter
            )
            job = Job(job_id, name, options, width, height, path, size)
            queue.submit(job)
        except QueueFull as exc:
            path.unlink(missing_ok=True)
            raise ApiError(429, str(exc)) from None
        except StorageFull as exc:
            path.unlink(missing_ok=True)
            raise ApiError(503, str(exc)) from None
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return JSONResponse(job.to_dict(), status_code=202, headers={"Location": f"/api/jobs/{job_id}"})

    @app.get("/api/jobs", summary="Several jobs at once (the page's progress poll)")
    async def list_jobs(
        ids: Annotated[str, Query(description="job ids separated by commas", max_length=20_000)] = "",
    ) -> dict[str, object]:
        wanted = [i for i in ids.split(",") if i][:1000]
        return {"jobs": queue.snapshots(wanted)}

    @app.get("/api/jobs/{job_id}", summary="One job: state, progress, error")
    async def get_job(job_id: str) -> dict[str, object]:
        snap = queue.snapshot(job_id)
        if snap is None:
            raise _no_job(job_id)
        return snap

    @app.delete("/api/jobs/{job_id}", summary="Cancel a job, or delete a finished one and its result")
    async def delete_job(job_id: str) -> dict[str, object]:
        snap = queue.cancel(job_id)
        if snap is None:
            raise _no_job(job_id)
        return snap

    @app.get(
        "/api/jobs/{job_id}/result",
        summary="The upscaled image",
        response_class=StreamingResponse,
        responses={200: {"content": {m: {} for m in MEDIA_TYPES.values()}}},
    )
    async def get_result(job_id: str) -> StreamingResponse:
        job = queue.get(job_id)
        if job is None:
            raise _no_job(job_id)
        if job.state is not JobState.done or job.result is None:
            reason = f": {job.error}" if job.error else ""
            raise ApiError(409, f"job {job_id} has no result ({job.state.value}{reason})")
        try:
            handle = open(job.result, "rb")  # noqa: SIM115 (closed by the response)
        except FileNotFoundError:
            raise ApiError(404, f"the result of job {job_id} has been deleted") from None
        size = os.fstat(handle.fileno()).st_size
        return StreamingResponse(
            _chunks(handle),
            media_type=MEDIA_TYPES[job.options.format],
            headers={
                "Content-Length": str(size),
                "Content-Disposition": _disposition(job.download_name()),
                "Cache-Control": "no-store",
            },
        )

    @app.get(
        "/api/results.zip",
        summary="Several results in one zip",
        response_class=StreamingResponse,
        responses={200: {"content": {"application/zip": {}}}},
    )
    async def zip_results(
        ids: Annotated[str, Query(description="job ids separated by commas", max_length=20_000)],
    ) -> StreamingResponse:
        jobs = [j for i in ids.split(",")[:1000] if (j := queue.get(i)) is not None]
        done = [j for j in jobs if j.state is JobState.done and j.result is not None]
        if not done:
            raise ApiError(404, "none of these jobs has a result")
        fd, tmp = tempfile.mkstemp(prefix="results-", suffix=".zip", dir=folder)
        os.close(fd)
        try:
            await anyio.to_thread.run_sync(_write_zip, Path(tmp), done)
            handle = open(tmp, "rb")  # noqa: SIM115 (closed by the response)
        finally:
            Path(tmp).unlink(missing_ok=True)  # the open handle keeps the data until it is sent
        return StreamingResponse(
            _chunks(handle),
            media_type="application/zip",
            headers={
                "Content-Length": str(os.fstat(handle.fileno()).st_size),
                "Content-Disposition": _disposition("swinir-results.zip"),
                "Cache-Control": "no-store",
            },
        )

    return Guard(
        app,
        max_body=settings.max_upload + 64 * 1024,  # the file plus the form's other fields
        body_timeout=settings.body_timeout,
        token=settings.token,
        loopback_only=is_loopback(settings.host),
        extra_hosts=settings.extra_hosts,
    )


def _no_job(job_id: str) -> ApiError:
    return ApiError(404, f"no job {job_id[:40]!r} (unknown, or expired and deleted)")


def _error(status: int, message: str) -> JSONResponse:
    line = (message.strip().splitlines() or ["error"])[0]
    return JSONResponse({"error": line}, status_code=status, headers={"Cache-Control": "no-store"})


def safe_filename(raw: str | None) -> str:
    """The last path component of a client's file name, printable, at most 120 characters."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    return name[:120] or "image"


def _options(
    settings: WebSettings,
    model: str | None,
    noise: str | None,
    outscale: float | None,
    fmt: str,
    quality: int,
    alpha: str,
    tta: bool = False,
) -> JobOptions:
    choice = settings.models[0] if model in (None, "") else settings.model(model)
    if choice is None:
        names = ", ".join(m.name for m in settings.models)
        raise ApiError(400, f"model: {str(model)[:60]!r} is not offered by this server (choose from {names})")
    level: int | str | None = None
    if noise not in (None, ""):
        assert noise is not None
        if not choice.noise_levels:
            raise ApiError(400, f"noise: {choice.name} has no noise levels")
        level = "auto" if noise == "auto" else int(noise) if noise.isdigit() else noise
        if level != "auto" and level not in choice.noise_levels:
            levels = ", ".join(map(str, choice.noise_levels))
            raise ApiError(400, f"noise: {choice.name} has levels {levels} and auto, not {noise[:20]!r}")
    if outscale is not None and not (0 < outscale <= settings.max_outscale):
        raise ApiError(400, f"outscale: must be in (0, {settings.max_outscale:g}], got {outscale:g}")
    fmt = {"jpeg": "jpg"}.get(fmt.lower(), fmt.lower())
    if fmt not in FORMATS:
        raise ApiError(400, f"format: must be one of {', '.join(FORMATS)}, got {fmt[:20]!r}")
    if not 1 <= quality <= 100:
        raise ApiError(400, f"quality: must be in 1..100, got {quality}")
    if alpha not in ALPHA_MODES:
        raise ApiError(400, f"alpha: must be one of {', '.join(ALPHA_MODES)}, got {alpha[:20]!r}")
    return JobOptions(choice, level, float(outscale or choice.scale), fmt, quality, alpha, tta)


def _spooled_size(handle: BinaryIO) -> int:
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    handle.seek(0)
    return size


def _copy(src: BinaryIO, dest: Path) -> None:
    src.seek(0)
    with open(dest, "wb") as out:
        while chunk := src.read(_COPY_CHUNK):
            out.write(chunk)


def _check_image(path: Path, name: str, settings: WebSettings, options: JobOptions) -> tuple[int, int]:
    """Size from the header (bombs and outscale bombs refused before decoding), then a full decode."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height = im.size
                if im.getexif().get(0x0112) in (5, 6, 7, 8):  # EXIF rotation by 90 degrees: swapped
                    width, height = height, width
                pixels = width * height
                if pixels > settings.max_pixels:
                    raise ApiError(
                        413,
                        f"{name}: {width}x{height} is {pixels / 1e6:.1f} megapixels, over this server's "
                        f"limit of {settings.max_pixels / 1e6:.1f}",
                    )
                # The model's own output is made first, then resized: bound the larger of the two.
                factor = max(options.outscale, float(options.model.scale))
                out_pixels = round(width * factor) * round(height * factor)
                if out_pixels > settings.max_output_pixels:
                    raise ApiError(
                        413,
                        f"{name}: x{factor:g} would make {out_pixels / 1e6:.1f} megapixels, over this "
                        f"server's output limit of {settings.max_output_pixels / 1e6:.1f}",
                    )
                im.load()
    except ApiError:
        raise
    except UnidentifiedImageError:
        if _has_image_signature(path):  # says it is an image, but Pillow cannot make sense of it
            raise ApiError(400, f"{name}: corrupt image (its header cannot be read)") from None
        raise ApiError(415, f"{name}: not an image (unrecognised file format)") from None
    except Image.DecompressionBombError:
        raise ApiError(413, f"{name}: too many pixels (refused before decoding)") from None
    except MemoryError:
        raise ApiError(413, f"{name}: too large to decode") from None
    except Exception as exc:  # Pillow raises many kinds for damaged files
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ApiError(400, f"{name}: truncated or corrupt image ({text})") from None
    return width, height


_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF8", b"BM", b"II*\0", b"MM\0*", b"RIFF")


def _has_image_signature(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(16)
    return head.startswith(_SIGNATURES) and (not head.startswith(b"RIFF") or head[8:12] == b"WEBP")


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(_COPY_CHUNK):
            yield chunk


def _disposition(filename: str) -> str:
    from urllib.parse import quote

    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "'").replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


def _write_zip(target: Path, jobs: list[Job]) -> None:
    used: set[str] = set()
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as zf:
        for job in jobs:
            name = job.download_name()
            stem, dot, ext = name.rpartition(".")
            n = 2
            while name in used:
                name, n = f"{stem}-{n}{dot}{ext}", n + 1
            used.add(name)
            with contextlib.suppress(FileNotFoundError):
                assert job.result is not None
                zf.write(job.result, name)
