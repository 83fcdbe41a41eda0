"""Abuse suite for `swinir web` (issue 11): hostile and broken HTTP clients, on loopback only.

One real server process (`swinir web` with a tiny model and short timeouts) takes every probe; each
probe states its own time bound, and the server's memory is checked at the end. Every client must be
answered correctly or refused with the right status, and the server must go on serving.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the web extra is not installed (pip install 'swinir[web]')")

from tests.web_helpers import (
    multipart,
    peak_rss_mib,
    png_bytes,
    read_until_closed,
    request,
    rss_mib,
    server_process,
    submit,
    tiny_model,
    wait_job,
)

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 2.0
MAX_UPLOAD_MB = 1
# Growth allowed over the warmed-up server's resident memory for the whole suite (the server holds
# torch and the model already; this covers the uploads, results, connections and Python's arenas).
MEMORY_BOUND_MIB = 250


class Server:
    def __init__(self, proc, url: str) -> None:
        self.proc = proc
        self.url = url
        self.port = int(url.rsplit(":", 1)[1])
        self.baseline_mib = 0.0

    def connect(self, timeout: float = 10) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    model = tiny_model(tmp_path_factory.mktemp("abuse-model"))
    tmp = tmp_path_factory.mktemp("abuse-tmp")
    args = [
        "--models", f"tiny={model}", "--quiet", "--tile", "32", "--tile-overlap", "8",
        "--header-timeout", str(HEADER_TIMEOUT), "--body-timeout", str(BODY_TIMEOUT),
        "--max-upload-mb", str(MAX_UPLOAD_MB), "--max-queue", "64", "--max-connections", "200",
        "--device", "cpu",
    ]  # fmt: skip
    with server_process(args, env={"TMPDIR": str(tmp), "OMP_NUM_THREADS": "1"}) as (proc, url):
        srv = Server(proc, url)
        # Warm up (first model load, first upscale), then take the baseline.
        job = submit(url, png_bytes((32, 32)))[1]
        assert wait_job(url, job["id"])["state"] == "done"
        srv.baseline_mib = rss_mib(proc.pid)
        yield srv
        assert proc.poll() is None, "the server died during the abuse suite"


PART_HEAD = b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n\r\n'


def _head(method: str = "POST", length: str | None = None, extra: str = "") -> bytes:
    lines = [
        f"{method} /api/jobs HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: multipart/form-data; boundary=b",
    ]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


def _status(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1 ") else 0


def _error(reply: bytes) -> str:
    return json.loads(reply.split(b"\r\n\r\n", 1)[1])["error"]


def test_content_length_negative_garbage_and_missing(server: Server) -> None:
    for length in ("-1", "-40000000", "12abc", " ", "0x10"):
        with server.connect() as sock:
            sock.sendall(_head(length=length) + b"x" * 4096)
            reply = read_until_closed(sock)
        assert _status(reply) == 400 and "malformed" in _error(reply), (length, reply[:100])
    with server.connect() as sock:
        sock.sendall(_head(length=None, extra="Connection: close\r\n"))
        reply = read_until_closed(sock)
    assert _status(reply) == 411


def test_declared_length_over_the_limit_is_refused_unread(server: Server) -> None:
    t0 = time.monotonic()
    with server.connect() as sock:
        sock.sendall(_head(length=str(50 * 1024 * 1024)))
        reply = read_until_closed(sock)  # nothing of the body was sent at all
    assert _status(reply) == 413 and time.monotonic() - t0 < 2


def test_length_larger_than_the_body_then_silence_gets_408(server: Server) -> None:
    t0 = time.monotonic()
    with server.connect(timeout=BODY_TIMEOUT + 5) as sock:
        sock.sendall(_head(length="5000") + b"--b\r\n")
        reply = read_until_closed(sock)
    elapsed = time.monotonic() - t0
    assert _status(reply) == 408, reply[:100]
    assert BODY_TIMEOUT - 0.2 <= elapsed < BODY_TIMEOUT + 2


def test_length_smaller_than_the_body(server: Server) -> None:
    """The declared bytes are the request (a cut multipart: 400); the rest is a malformed next one."""
    body, ctype = multipart({}, png_bytes((16, 16)))
    head = (
        f"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {len(body) // 2}\r\n\r\n"
    ).encode()
    with server.connect() as sock:
        sock.sendall(head + body)
        reply = read_until_closed(sock)
    statuses = [int(p.split(b" ", 2)[0]) for p in reply.split(b"HTTP/1.1 ")[1:]]
    assert statuses and statuses[0] == 400 and set(statuses) <= {400}


def test_slow_body_drip_gets_408(server: Server) -> None:
    t0 = time.monotonic()
    with server.connect(timeout=BODY_TIMEOUT + 5) as sock:
        sock.sendall(_head(length="100000") + PART_HEAD)
        reply = b""
        sock.settimeout(0.25)
        while time.monotonic() - t0 < BODY_TIMEOUT + 3:
            try:
                sock.sendall(b"\0")
                reply = sock.recv(65536)
                if reply:
                    break
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
    assert _status(reply) == 408 and time.monotonic() - t0 < BODY_TIMEOUT + 2


def test_slow_headers_and_idle_connections_are_closed(server: Server) -> None:
    """100 idle connections and one slowloris: all closed after the header timeout; others served."""
    idle = [server.connect(timeout=HEADER_TIMEOUT + 5) for _ in range(100)]
    slow = server.connect(timeout=HEADER_TIMEOUT + 5)
    t0 = time.monotonic()
    try:
        status, _, _ = request("GET", server.url + "/api/models", timeout=5)  # still served meanwhile
        assert status == 200
        closed_slow = False
        for byte in b"GET /api/models HTTP/1.1\r\nHost: 127.0.0.1\r\n":
            try:
                slow.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed_slow = True
                break
            time.sleep(0.1)
            if time.monotonic() - t0 > HEADER_TIMEOUT + 2:
                break
        assert closed_slow or slow.recv(1) == b""
        for sock in idle:
            assert sock.recv(1) == b""  # EOF: the server closed it
        assert time.monotonic() - t0 < HEADER_TIMEOUT + 3
    finally:
        for sock in [*idle, slow]:
            sock.close()


def test_half_closed_clients_all_get_answers(server: Server) -> None:
    """30 concurrent uploads whose clients shut down their sending side after the request."""
    body, ctype = multipart({}, png_bytes((16, 16)))
    head = (
        f"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()

    def one(_: int) -> bytes:
        with server.connect() as sock:
            sock.sendall(head + body)
            sock.shutdown(socket.SHUT_WR)
            return read_until_closed(sock)

    with ThreadPoolExecutor(30) as pool:
        replies = list(pool.map(one, range(30)))
    assert [_status(r) for r in replies] == [202] * 30
    ids = [json.loads(r.split(b"\r\n\r\n", 1)[1])["id"] for r in replies]
    assert len(set(ids)) == 30
    assert all(wait_job(server.url, i)["state"] == "done" for i in ids)


def test_output_size_bombs_are_refused_quickly(server: Server) -> None:
    """A 2000x1500 upload at x8 would be 192 megapixels: refused before any work."""
    buf = BytesIO()  # flat colour: a few KB, under the 1 MB upload limit
    Image.new("RGB", (2000, 1500), (120, 30, 200)).save(buf, "PNG")
    t0 = time.monotonic()
    status, job = submit(server.url, buf.getvalue(), "flat.png", outscale="8")
    assert status == 413 and "output limit" in job["error"] and time.monotonic() - t0 < 3
    status, job = submit(server.url, buf.getvalue(), "flat.png", outscale="16")
    assert status == 400 and "outscale" in job["error"]
    status, job = submit(server.url, buf.getvalue(), "flat.png", outscale="1e308")
    assert status == 400 and "outscale" in job["error"]


def test_fifty_concurrent_clients(server: Server) -> None:
    def one(i: int) -> tuple[int, dict]:
        return submit(server.url, png_bytes((16 + i % 5, 16), seed=i), f"c{i}.png")

    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(one, range(50)))
    assert [s for s, _ in results] == [202] * 50
    finals = [wait_job(server.url, job["id"], timeout=60) for _, job in results]
    assert all(f["state"] == "done" for f in finals)
    assert [f["output_size"] for f in finals] == [[2 * (16 + i % 5), 32] for i in range(50)]


def test_memory_stayed_bounded(server: Server) -> None:
    """Runs last in this module (pytest keeps file order): the peak over the whole suite."""
    peak = peak_rss_mib(server.proc.pid)
    assert peak - server.baseline_mib < MEMORY_BOUND_MIB, (server.baseline_mib, peak)


def test_server_still_serves(server: Server) -> None:
    assert request("GET", server.url + "/api/models")[0] == 200
    job = submit(server.url, png_bytes((8, 8)))[1]
    assert wait_job(server.url, job["id"])["state"] == "done"


def test_over_the_connection_limit_is_a_json_503(tmp_path: Path) -> None:
    """With --max-connections 3 and three connections held open, a fourth request gets a
    one-line JSON 503 (uvicorn's own is plain text); once they close, requests are served again."""
    model = tiny_model(tmp_path)
    args = ["--models", f"tiny={model}", "--quiet", "--max-connections", "3", "--device", "cpu"]
    with server_process(args, env={"TMPDIR": str(tmp_path), "OMP_NUM_THREADS": "1"}) as (proc, url):
        srv = Server(proc, url)
        get = b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        held = [srv.connect() for _ in range(3)]
        try:
            time.sleep(0.3)  # let the server register them
            with srv.connect() as sock:
                sock.sendall(get)
                reply = read_until_closed(sock)
            assert _status(reply) == 503, reply[:200]
            assert b"application/json" in reply.split(b"\r\n\r\n", 1)[0]
            assert "--max-connections" in _error(reply)
        finally:
            for sock in held:
                sock.close()
        time.sleep(0.3)
        with srv.connect() as sock:
            sock.sendall(get)
            assert _status(read_until_closed(sock)) == 200
