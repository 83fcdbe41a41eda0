"""The HTTP API of `swinir web`: every endpoint, every error status, limits and the job lifecycle."""

from __future__ import annotations

import io
import json
import socket
import time
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the web extra is not installed (pip install 'swinir[web]')")

from swinir.upscaler import Upscaler
from swinir.web.settings import WebSettings
from tests.web_helpers import (
    Running,
    multipart,
    png_bytes,
    raw_exchange,
    read_until_closed,
    request,
    running_server,
    settings_for,
    slow_factory,
    submit,
    tiny_model,
    wait_job,
)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model(tmp_path_factory.mktemp("web-model"))


@pytest.fixture(scope="module")
def settings(model: Path) -> WebSettings:
    return settings_for(model, max_upload=300_000, max_pixels=20_000, max_output_pixels=200_000, max_queue=8)


@pytest.fixture(scope="module")
def srv(settings: WebSettings) -> Iterator[Running]:
    with running_server(settings) as running:
        yield running


def _json(data: bytes) -> dict:
    return json.loads(data)


def _idle(srv: Running) -> None:
    """Wait until the worker has nothing to do, so the folder holds no half-written result."""
    deadline = time.monotonic() + 30
    while True:
        stats = _json(request("GET", srv.url + "/api/status")[2])
        if stats["queued"] == 0 and stats["running"] == 0:
            return
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_models_lists_only_the_configured_models(srv: Running) -> None:
    status, headers, data = request("GET", srv.url + "/api/models")
    info = _json(data)
    assert status == 200 and headers["content-type"] == "application/json"
    assert info["models"] == [
        {"name": "tiny", "scale": 2, "noise_levels": [], "description": "local weights file tiny.safetensors"}
    ]
    assert info["formats"] == ["png", "webp", "jpg"] and info["limits"]["max_pixels"] == 20_000


@pytest.mark.parametrize(("fmt", "pil_format"), [("png", "PNG"), ("webp", "WEBP"), ("jpg", "JPEG")])
def test_job_lifecycle_and_result_matches_the_library(
    srv: Running, model: Path, fmt: str, pil_format: str
) -> None:
    image = png_bytes((40, 24), seed=3)
    status, job = submit(srv.url, image, "photo.png", format=fmt, quality="95")
    assert status == 202 and job["state"] in ("queued", "running") and job["output_size"] == [80, 48]
    final = wait_job(srv.url, job["id"])
    assert final["state"] == "done" and final["progress"] == 1.0 and final["error"] is None
    assert final["tiles_total"] >= 1 and final["tiles_done"] == final["tiles_total"]
    assert final["download_name"] == f"photo_tiny_x2.{fmt}"
    status, headers, data = request("GET", f"{srv.url}/api/jobs/{job['id']}/result")
    assert status == 200 and int(headers["content-length"]) == len(data) == final["result_bytes"]
    assert f"photo_tiny_x2.{fmt}" in headers["content-disposition"]
    out = Image.open(io.BytesIO(data))
    assert out.format == pil_format and out.size == (80, 48)
    if fmt == "png":  # lossless: identical to the library's own result with the server's tiling
        expected = Upscaler(model, device="cpu", tile=32, tile_overlap=8).upscale(
            Image.open(io.BytesIO(image))
        )
        assert np.array_equal(np.asarray(out), np.asarray(expected))


def test_outscale_alpha_and_gray(srv: Running) -> None:
    status, job = submit(srv.url, png_bytes((30, 20), "RGBA"), "a.png", outscale="1.5", alpha="resize")
    assert status == 202 and job["output_size"] == [45, 30]
    assert wait_job(srv.url, job["id"])["state"] == "done"
    _, _, data = request("GET", f"{srv.url}/api/jobs/{job['id']}/result")
    out = Image.open(io.BytesIO(data))
    assert out.size == (45, 30) and out.mode == "RGBA"
    status, job = submit(srv.url, png_bytes((16, 16), "L"), "g.png")
    assert wait_job(srv.url, job["id"])["state"] == "done"
    _, _, data = request("GET", f"{srv.url}/api/jobs/{job['id']}/result")
    assert Image.open(io.BytesIO(data)).mode == "L"


def test_self_ensemble_job_matches_the_library(srv: Running, model: Path) -> None:
    image = png_bytes((40, 24), seed=4)
    status, job = submit(srv.url, image, "e.png", tta="true")
    assert status == 202 and job["tta"] is True
    assert wait_job(srv.url, job["id"])["state"] == "done"
    _, _, data = request("GET", f"{srv.url}/api/jobs/{job['id']}/result")
    expected = Upscaler(model, device="cpu", tile=32, tile_overlap=8, tta=True).upscale(
        Image.open(io.BytesIO(image))
    )
    plain = Upscaler(model, device="cpu", tile=32, tile_overlap=8).upscale(Image.open(io.BytesIO(image)))
    got = np.asarray(Image.open(io.BytesIO(data)))
    assert np.array_equal(got, np.asarray(expected)) and not np.array_equal(got, np.asarray(plain))


def test_curl_style_multipart_with_defaults(srv: Running) -> None:
    """`curl -F file=@x.png URL/api/jobs`: no other field needed."""
    body, ctype = multipart({}, png_bytes((8, 8)), "x.png")
    status, headers, data = request("POST", srv.url + "/api/jobs", body, {"Content-Type": ctype})
    assert status == 202 and headers["location"] == f"/api/jobs/{_json(data)['id']}"


def test_jobs_batch_poll(srv: Running) -> None:
    ids = [submit(srv.url, png_bytes((8, 8), seed=i))[1]["id"] for i in range(3)]
    status, _, data = request("GET", f"{srv.url}/api/jobs?ids={','.join(ids)},nosuchjob")
    assert status == 200 and [j["id"] for j in _json(data)["jobs"]] == ids


@pytest.mark.parametrize(
    ("fields", "file", "status", "words"),
    [
        ({}, b"", 400, "empty"),
        ({}, b"\x89PNG\r\n\x1a\n" + b"\0" * 40, 400, "corrupt"),
        ({}, png_bytes((40, 24))[:200], 400, "truncated or corrupt"),
        ({}, b"hello, I am text" * 10, 415, "not an image"),
        ({}, png_bytes((200, 200)), 413, "megapixels"),
        ({"outscale": "8"}, png_bytes((100, 100)), 413, "output limit"),
        ({"model": "../../../etc/passwd"}, png_bytes((8, 8)), 400, "not offered"),
        ({"model": "classical-x2"}, png_bytes((8, 8)), 400, "not offered"),
        ({"noise": "1"}, png_bytes((8, 8)), 400, "no noise levels"),
        ({"outscale": "0"}, png_bytes((8, 8)), 400, "outscale"),
        ({"outscale": "-2"}, png_bytes((8, 8)), 400, "outscale"),
        ({"outscale": "nan"}, png_bytes((8, 8)), 400, "outscale"),
        ({"outscale": "abc"}, png_bytes((8, 8)), 400, "outscale"),
        ({"outscale": "100"}, png_bytes((8, 8)), 400, "outscale"),
        ({"format": "gif"}, png_bytes((8, 8)), 400, "format"),
        ({"quality": "0"}, png_bytes((8, 8)), 400, "quality"),
        ({"alpha": "magic"}, png_bytes((8, 8)), 400, "alpha"),
        ({"tta": "maybe"}, png_bytes((8, 8)), 400, "tta"),
        ({}, None, 400, "file"),
    ],
)
def test_bad_uploads_get_one_line_json_errors(
    srv: Running, fields: dict[str, str], file: bytes | None, status: int, words: str
) -> None:
    _idle(srv)
    before = set(srv.folder.iterdir())
    body, ctype = multipart(fields, file, "bad.png")
    got, headers, data = request("POST", srv.url + "/api/jobs", body, {"Content-Type": ctype})
    error = _json(data)["error"]
    assert got == status, error
    assert headers["content-type"] == "application/json" and words in error and "\n" not in error
    assert set(srv.folder.iterdir()) <= before  # nothing left behind


def test_model_path_that_exists_on_disk_is_refused(srv: Running, model: Path) -> None:
    """A client can never make the server open a path, even one that holds real weights."""
    status, job = submit(srv.url, png_bytes((8, 8)), model=str(model))
    assert status == 400 and "not offered" in job["error"]


def test_decompression_bomb_refused_before_decoding(srv: Running) -> None:
    # A PNG header claiming 30000x30000 (compressed, it is tiny); decoding it would need 2.7 GB.
    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    data[16:24] = (30000).to_bytes(4, "big") * 2  # IHDR width, height (the CRC is left stale)
    import zlib

    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    t0 = time.perf_counter()
    status, job = submit(srv.url, bytes(data), "bomb.png")
    assert status == 413 and ("megapixels" in job["error"] or "too many pixels" in job["error"])
    assert time.perf_counter() - t0 < 5


def test_unknown_job_and_routes_are_404_json(srv: Running) -> None:
    for method, path in [
        ("GET", "/api/jobs/nope"),
        ("GET", "/api/jobs/nope/result"),
        ("DELETE", "/api/jobs/nope"),
        ("GET", "/api/nothing"),
        ("GET", "/api/results.zip?ids=nope"),
        ("GET", "/static/../../etc/passwd"),
    ]:
        status, _, data = request(method, srv.url + path)
        assert status == 404, path
        assert "error" in _json(data) or "detail" in _json(data)


def test_result_before_done_is_409(settings: WebSettings) -> None:
    with running_server(settings, slow_factory(0.3)) as srv:
        _, job = submit(srv.url, png_bytes((64, 64)))
        status, _, data = request("GET", f"{srv.url}/api/jobs/{job['id']}/result")
        assert status == 409 and "no result" in _json(data)["error"]


def test_cancel_queued_and_running_jobs(settings: WebSettings) -> None:
    with running_server(settings, slow_factory(0.2)) as srv:
        _, first = submit(srv.url, png_bytes((64, 64), seed=1))  # 9 tiles of 32 with overlap 8
        _, second = submit(srv.url, png_bytes((64, 64), seed=2))
        deadline = time.monotonic() + 10
        while request("GET", f"{srv.url}/api/jobs/{first['id']}")[2].count(b'"running"') == 0:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        status, _, data = request("DELETE", f"{srv.url}/api/jobs/{second['id']}")
        assert status == 200 and _json(data)["state"] == "cancelled"
        status, _, data = request("DELETE", f"{srv.url}/api/jobs/{first['id']}")
        assert status == 200 and _json(data)["cancel_requested"] is True
        final = wait_job(srv.url, first["id"])
        assert final["state"] == "cancelled" and final["tiles_done"] < final["tiles_total"]
        # Both uploads are gone from the folder; the server goes on serving.
        assert not list(srv.folder.glob("*.upload"))
        _, third = submit(srv.url, png_bytes((8, 8)))
        assert wait_job(srv.url, third["id"])["state"] == "done"


def test_delete_finished_job_removes_its_result(srv: Running) -> None:
    _, job = submit(srv.url, png_bytes((8, 8)))
    wait_job(srv.url, job["id"])
    assert (srv.folder / f"{job['id']}.png").exists()
    assert request("DELETE", f"{srv.url}/api/jobs/{job['id']}")[0] == 200
    assert not (srv.folder / f"{job['id']}.png").exists()
    assert request("GET", f"{srv.url}/api/jobs/{job['id']}")[0] == 404


def test_queue_full_is_429_and_nothing_is_lost(settings: WebSettings) -> None:
    with running_server(replace(settings, max_queue=2), slow_factory(0.2)) as srv:
        accepted = [submit(srv.url, png_bytes((64, 64), seed=i)) for i in range(2)]
        status, refused = submit(srv.url, png_bytes((8, 8)))
        assert [s for s, _ in accepted] == [202, 202]
        assert status == 429 and "queue is full" in refused["error"]
        for _, job in accepted:
            request("DELETE", f"{srv.url}/api/jobs/{job['id']}")
        states = [wait_job(srv.url, job["id"])["state"] for _, job in accepted]
        assert all(s in ("done", "cancelled") for s in states)
        assert submit(srv.url, png_bytes((8, 8)))[0] == 202


def test_storage_cap_evicts_old_results_then_503(model: Path) -> None:
    small = settings_for(model, max_storage=60_000, max_pixels=100_000)
    with running_server(small) as srv:
        first = submit(srv.url, png_bytes((64, 64), seed=1))[1]
        assert wait_job(srv.url, first["id"])["state"] == "done"
        second = submit(srv.url, png_bytes((64, 64), seed=2))[1]
        assert wait_job(srv.url, second["id"])["state"] == "done"
        # Results of 128x128 noise are ~49 KB: keeping the second evicted the first.
        assert request("GET", f"{srv.url}/api/jobs/{first['id']}")[0] == 404
        status, job = submit(srv.url, png_bytes((150, 150)), "huge.png")  # ~68 KB upload > the cap
        assert status == 503 and "no room" in job["error"]


def test_results_expire(model: Path) -> None:
    with running_server(settings_for(model, keep_seconds=0.3)) as srv:
        job = submit(srv.url, png_bytes((8, 8)))[1]
        wait_job(srv.url, job["id"])
        time.sleep(0.6)
        assert request("GET", f"{srv.url}/api/jobs/{job['id']}")[0] == 404
        assert not list(srv.folder.iterdir())


def test_zip_of_several_results(srv: Running) -> None:
    ids = [submit(srv.url, png_bytes((8 + i, 8), seed=i), "same.png")[1]["id"] for i in range(3)]
    for job_id in ids:
        wait_job(srv.url, job_id)
    status, headers, data = request("GET", f"{srv.url}/api/results.zip?ids={','.join(ids)}")
    assert status == 200 and headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        sizes = sorted(Image.open(zf.open(n)).size for n in names)
    assert names == ["same_tiny_x2.png", "same_tiny_x2-2.png", "same_tiny_x2-3.png"]
    assert sizes == [(16, 16), (18, 16), (20, 16)]
    assert not list(srv.folder.glob("*.zip"))  # the temporary zip is deleted after sending


def test_client_file_name_is_never_a_path(srv: Running) -> None:
    status, job = submit(srv.url, png_bytes((8, 8)), "../../evil\x1b[31m\nname.png")
    assert status == 202 and job["filename"] == "evil[31mname.png"
    assert {p.name.split(".")[0] for p in srv.folder.iterdir()} <= {job["id"], *_ids(srv.folder)}


def _ids(folder: Path) -> set[str]:
    return {p.name.split(".")[0] for p in folder.iterdir()}


def test_page_static_files_and_offline_docs(srv: Running) -> None:
    status, headers, page = request("GET", srv.url + "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    text = page.decode()
    assert "/static/app.js" in text and "http://" not in text and "https://" not in text  # no CDN
    for path in ("/static/app.js", "/static/style.css", "/static/docs.js"):
        status, _, body = request("GET", srv.url + path)
        assert status == 200 and b"https://" not in body, path
    status, _, docs = request("GET", srv.url + "/docs")
    assert status == 200 and b"/openapi.json" in docs and b"https://" not in docs
    status, _, spec = request("GET", srv.url + "/openapi.json")
    paths = _json(spec)["paths"]
    assert {"/api/models", "/api/jobs", "/api/jobs/{job_id}", "/api/jobs/{job_id}/result"} <= set(paths)
    assert {"post", "get"} <= set(paths["/api/jobs"]) and "delete" in paths["/api/jobs/{job_id}"]


def test_dns_rebinding_and_cross_site_posts_refused(srv: Running) -> None:
    status, _, data = request("GET", srv.url + "/api/models", headers={"Host": "evil.example:80"})
    assert status == 421 and "localhost" in _json(data)["error"]
    body, ctype = multipart({}, png_bytes((8, 8)))
    status, _, data = request(
        "POST", srv.url + "/api/jobs", body, {"Content-Type": ctype, "Origin": "http://evil.example"}
    )
    assert status == 403 and "cross-site" in _json(data)["error"]


def test_token_required_when_set(model: Path) -> None:
    with running_server(settings_for(model, token="s3cret-token")) as srv:
        assert request("GET", srv.url + "/api/models")[0] == 401
        assert request("GET", srv.url + "/api/models?token=wrong-token")[0] == 401
        status, headers, _ = request("GET", srv.url + "/?token=s3cret-token")
        assert status == 200 and "swinir_token=s3cret-token" in headers["set-cookie"]
        assert (
            request("GET", srv.url + "/api/models", headers={"Cookie": "swinir_token=s3cret-token"})[0] == 200
        )
        auth = {"Authorization": "Bearer s3cret-token"}
        assert request("GET", srv.url + "/api/models", headers=auth)[0] == 200


def test_oversized_declared_length_refused_before_the_body_is_read(
    srv: Running, settings: WebSettings
) -> None:
    """A 50 MB upload: 413 arrives after only the headers and 64 KB were sent."""
    port = int(srv.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        head = (
            "POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            f"Content-Length: {50 * 1024 * 1024}\r\n\r\n"
        )
        sock.sendall(head.encode() + b"\0" * 65536)
        reply = read_until_closed(sock)
    assert reply.startswith(b"HTTP/1.1 413") and b"over this server" in reply


def test_negative_and_malformed_content_length_are_400(srv: Running) -> None:
    port = int(srv.url.rsplit(":", 1)[1])
    for length in ("-1", "abc", "1e9"):
        reply = raw_exchange(
            port,
            f"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {length}\r\n\r\n".encode()
            + b"x" * 100,
        )
        assert reply.startswith(b"HTTP/1.1 400"), (length, reply[:80])
        assert b'{"error": "malformed HTTP request' in reply


def test_missing_content_length_is_411(srv: Running) -> None:
    port = int(srv.url.rsplit(":", 1)[1])
    reply = raw_exchange(port, b"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 411")


def test_chunked_body_over_the_limit_is_cut_off(srv: Running, settings: WebSettings) -> None:
    port = int(srv.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n\r\n"
        )
        part = b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n\r\n'
        sock.sendall(b"%x\r\n%s\r\n" % (len(part), part))
        chunk = b"\0" * 65536
        sent = 0
        reply = b""
        sock.settimeout(0.5)
        while sent < 4 * settings.max_upload and not reply:
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
                reply = sock.recv(65536)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
    assert reply.startswith(b"HTTP/1.1 413"), reply[:60]
    assert sent <= settings.max_upload + 64 * 1024 + 10 * len(chunk)


def test_noise_levels_reach_the_upscaler(model: Path) -> None:
    """A family with levels (like `art`): the choice is listed, checked, and passed to the model."""
    from swinir.web.catalog import build_upscaler
    from swinir.web.settings import ModelChoice

    asked: list[object] = []

    def factory(choice, noise, tta, settings):  # a stand-in family: the tiny model for every level
        asked.append(noise)
        return build_upscaler(replace(choice, noise_levels=()), None, tta, settings)

    family = ModelChoice("fam", str(model), 2, "a family with noise levels", (0, 1, 2, 3))
    with running_server(settings_for(model, models=(family,)), factory) as srv:
        info = _json(request("GET", srv.url + "/api/models")[2])
        assert info["models"][0]["noise_levels"] == [0, 1, 2, 3]
        for noise in ("2", "0"):
            status, job = submit(srv.url, png_bytes((8, 8)), noise=noise)
            assert status == 202 and job["noise"] == int(noise)
            assert wait_job(srv.url, job["id"])["state"] == "done"
        status, job = submit(srv.url, png_bytes((8, 8)), noise="auto")
        assert status == 202 and job["noise"] == "auto"
        assert wait_job(srv.url, job["id"])["noise_used"] == 0  # a PNG has no JPEG noise
        for bad in ("7", "-1", "loud"):
            status, job = submit(srv.url, png_bytes((8, 8)), noise=bad)
            assert status == 400 and "noise" in job["error"]
        status, job = submit(srv.url, png_bytes((8, 8)))
        assert status == 202 and wait_job(srv.url, job["id"])["state"] == "done"
    assert asked == [2, 0, "auto", None]
