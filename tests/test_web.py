"""The web UI: page, info, upscaling over HTTP, and clear errors for bad uploads."""

from __future__ import annotations

import io
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import swinir
from swinir.model import SwinIR, SwinIRConfig
from swinir.upscaler import Upscaler
from swinir.web import UpscaleService, make_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    cfg = SwinIRConfig(depths=(1,), num_heads=(2,), embed_dim=8, upscale=2, window_size=4)
    weights = tmp_path_factory.mktemp("web") / "tiny.safetensors"
    swinir.save_model(SwinIR(cfg), weights)
    service = UpscaleService(Upscaler(weights, device="cpu"), "tiny", max_upload=200_000, max_pixels=10_000)
    srv = make_server(service, port=0, quiet=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def _post(url: str, body: bytes, name: str = "x.png") -> tuple[int, str, bytes]:
    req = urllib.request.Request(url, data=body, method="POST", headers={"X-Filename": name})
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            return res.status, res.headers["Content-Type"], res.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read()


def _png(mode: str, size: tuple[int, int]) -> bytes:
    rng = np.random.default_rng(0)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    arr = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr.squeeze(-1) if channels == 1 else arr, mode).save(buf, "PNG")
    return buf.getvalue()


def test_page_and_info(server: str) -> None:
    with urllib.request.urlopen(server + "/", timeout=10) as res:
        page = res.read().decode()
    assert "<h1>swinir</h1>" in page and "tiny" in page and 'fetch("/upscale"' in page
    with urllib.request.urlopen(server + "/api/info", timeout=10) as res:
        info = json.load(res)
    assert info["scale"] == 2 and info["model"] == "tiny"


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
def test_upscale_returns_png_of_twice_the_size(server: str, mode: str) -> None:
    status, ctype, body = _post(server + "/upscale", _png(mode, (21, 13)))
    assert status == 200 and ctype == "image/png"
    out = Image.open(io.BytesIO(body))
    assert out.size == (42, 26) and out.mode == mode


def test_outscale(server: str) -> None:
    status, _, body = _post(server + "/upscale?outscale=1.5", _png("RGB", (20, 10)))
    assert status == 200 and Image.open(io.BytesIO(body)).size == (30, 15)
    status, _, body = _post(server + "/upscale?outscale=abc", _png("RGB", (20, 10)))
    assert status == 400 and b"outscale" in body


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b"", 400, "empty"),
        (b"this is text, not an image", 400, "photo.png"),
        (_png("RGB", (200, 100)), 400, "photo.png"),  # 20,000 pixels: over the 10,000 limit
        (b"0" * 300_000, 413, "upload limit"),
    ],
)
def test_bad_uploads_get_one_line_errors(server: str, body: bytes, status: int, reason: str) -> None:
    got, ctype, text = _post(server + "/upscale", body, name="photo.png")
    assert got == status and ctype.startswith("text/plain")
    message = text.decode()
    assert reason in message and message.count("\n") == 1


def test_truncated_upload_is_rejected(server: str) -> None:
    data = _png("RGB", (40, 40))
    status, _, text = _post(server + "/upscale", data[: len(data) // 2], name="cut.png")
    assert status == 400 and text.decode().startswith("cut.png: ")


def test_unknown_paths(server: str, tmp_path: Path) -> None:
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(server + "/nothing", timeout=10)
    assert info.value.code == 404
    assert _post(server + "/other", b"x")[0] == 404
