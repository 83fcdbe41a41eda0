"""Shared by the web tests: a tiny random-weight model, test images, and servers to talk to."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

import swinir
from swinir.model import SwinIR, SwinIRConfig
from swinir.upscaler import Upscaler
from swinir.web.catalog import UpscalerFactory, build_upscaler, choice_for
from swinir.web.server import bind, make_server
from swinir.web.settings import WebSettings

TINY = SwinIRConfig(depths=(1,), num_heads=(2,), embed_dim=8, upscale=2, window_size=4)


def tiny_model(folder: Path, name: str = "tiny") -> Path:
    """A random-weight x2 SwinIR small enough to upscale a 64x64 image in milliseconds."""
    path = folder / f"{name}.safetensors"
    if not path.exists():
        import torch

        torch.manual_seed(0)
        swinir.save_model(SwinIR(TINY), path)
    return path


def png_bytes(size: tuple[int, int] = (48, 32), mode: str = "RGB", seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    arr = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr.squeeze(-1) if channels == 1 else arr, mode).save(buf, "PNG")
    return buf.getvalue()


def settings_for(model: Path, **overrides: object) -> WebSettings:
    base = WebSettings(models=(choice_for(f"tiny={model}"),), port=0, tile=32, tile_overlap=8, quiet=True)
    return replace(base, **overrides)  # type: ignore[arg-type]


def slow_factory(seconds_per_tile: float) -> UpscalerFactory:
    """Builds real Upscalers whose model calls each take a little longer, so progress can be watched."""

    def build(choice, noise, tta, settings):
        upscaler: Upscaler = build_upscaler(choice, noise, tta, settings)
        forward = upscaler.runner.forward

        def slow_forward(x):
            time.sleep(seconds_per_tile)
            return forward(x)

        upscaler.runner.forward = slow_forward  # type: ignore[method-assign]
        return upscaler

    return build


@dataclass
class Running:
    url: str
    folder: Path
    server: object


@contextlib.contextmanager
def running_server(settings: WebSettings, factory: UpscalerFactory = build_upscaler) -> Iterator[Running]:
    """The real app under uvicorn in a thread of this process, on a free loopback port."""
    sock = bind(settings.host, 0)
    server, folder = make_server(settings, sock, factory)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield Running(f"http://127.0.0.1:{sock.getsockname()[1]}", folder, server)
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def start_process(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start ``swinir web ARGS --port 0`` as a child process (see :func:`printed_url`)."""
    return subprocess.Popen(
        [sys.executable, "-m", "swinir.cli", "web", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )


def printed_url(proc: subprocess.Popen) -> str:
    """The address a child server printed, once it answers; its later output is drained."""
    assert proc.stdout is not None
    lines: list[str] = []
    url = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        match = re.search(r"(http://\S+)", line)
        if match:
            url = match.group(1)
            break
    if url is None:
        proc.kill()
        raise RuntimeError("server did not start: " + "".join(lines))
    # Drain the log so the child never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
    _wait_ready(url)
    return url.split("?")[0].rstrip("/")


@contextlib.contextmanager
def server_process(
    args: list[str], env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen, str]]:
    """``swinir web ARGS --port 0`` as a child process; yields it and the URL it printed."""
    proc = start_process(args, env)
    try:
        yield proc, printed_url(proc)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_ready(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url.split("?")[0].rstrip("/") + "/api/status", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            if isinstance(exc, urllib.error.HTTPError):
                return  # it answers (e.g. 401 without the token)
            time.sleep(0.1)


def multipart(fields: dict[str, str], file: bytes | None, filename: str = "x.png") -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for key, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
        )
    if file is not None:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        )
        parts.append(head.encode() + file + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def request(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            return res.status, {k.lower(): v for k, v in res.headers.items()}, res.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


def submit(base: str, image: bytes, filename: str = "x.png", **fields: str) -> tuple[int, dict]:
    body, ctype = multipart(fields, image, filename)
    status, _, data = request("POST", base + "/api/jobs", body, {"Content-Type": ctype})
    return status, json.loads(data)


def wait_job(base: str, job_id: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _, data = request("GET", f"{base}/api/jobs/{job_id}")
        job = json.loads(data)
        if status != 200 or job["state"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.05)
    raise TimeoutError(f"job {job_id} did not finish in {timeout} s")


def raw_exchange(port: int, data: bytes, *, shut_write: bool = False, timeout: float = 10) -> bytes:
    """Send raw bytes on a new connection and read until the server closes (or ``timeout``)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        if shut_write:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a reset ends it too)."""
    chunks = []
    with contextlib.suppress(TimeoutError, ConnectionResetError):
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def rss_mib(pid: int) -> float:
    """Resident memory of a process now, in MiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")
