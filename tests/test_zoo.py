"""Model zoo: names, cache reuse, verified atomic downloads from a local HTTP server, offline errors."""

from __future__ import annotations

import functools
import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from swinir import zoo
from swinir.model import SwinIR, SwinIRConfig, preset
from swinir.zoo import MODELS, ZooError, find_model, resolve_model


class _Server:
    """A local HTTP server over a folder that records request paths; ``/cut/*`` stops mid-file."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[str] = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                if self.path.startswith("/cut/"):
                    data = (root / self.path.split("/")[-1]).read_bytes()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2])  # then the connection closes
                    self.close_connection = True
                    return
                super().do_GET()

            def log_message(self, *args: object) -> None:
                pass

        handler = functools.partial(Handler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> _Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _tiny_state() -> dict[str, torch.Tensor]:
    base = preset("lightweight_x2").to_dict()
    cfg = SwinIRConfig.from_dict({**base, "depths": [2], "num_heads": [2], "embed_dim": 12})
    return SwinIR(cfg).state_dict()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[_Server]:
    root = tmp_path / "release"
    root.mkdir()
    torch.save({"params": _tiny_state()}, root / MODELS["lightweight-x2"].filename)
    (root / MODELS["lightweight-x3"].filename).write_bytes(b"<html>not a checkpoint</html>" * 10)
    (root / MODELS["real-x4-gan"].filename).write_bytes(b"x" * 1000)  # has a published size and digest
    with _Server(root) as server:
        yield server


def _cache_files(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.rglob("*")) if cache.exists() else []


def test_download_once_then_reuse_the_cache(tmp_path: Path, served: _Server) -> None:
    cache = tmp_path / "cache"
    entry = MODELS["lightweight-x2"]
    path = resolve_model("lightweight-x2", cache=cache, base_url=served.url, progress=False)
    assert path == cache / entry.filename and path.is_file()
    assert served.requests == [f"/{entry.filename}"]
    again = resolve_model(entry.filename, cache=cache, base_url=served.url, progress=False)
    assert again == path and len(served.requests) == 1  # no second request
    assert _cache_files(cache) == [entry.filename]


@pytest.mark.parametrize(
    "name, reason",
    [
        ("lightweight-x4", "HTTP 404"),
        ("lightweight-x3", "not a SwinIR checkpoint"),
        ("real-x4-gan", "wrong size"),
    ],
)
def test_failed_downloads_leave_nothing(tmp_path: Path, served: _Server, name: str, reason: str) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(ZooError) as info:
        resolve_model(name, cache=cache, base_url=served.url, progress=False)
    msg = str(info.value)
    assert reason in msg and f"--model path/to/{MODELS[name].filename}" in msg and "\n" not in msg, msg
    assert _cache_files(cache) == []


def test_interrupted_download_leaves_nothing(tmp_path: Path, served: _Server) -> None:
    cache = tmp_path / "cache"
    entry = MODELS["lightweight-x2"]
    with pytest.raises(ZooError, match="could not download model 'lightweight-x2'") as info:
        resolve_model("lightweight-x2", cache=cache, base_url=served.url + "/cut", progress=False)
    assert "bytes" in str(info.value) or "IncompleteRead" in str(info.value)
    assert _cache_files(cache) == []
    # A later good download still works.
    assert resolve_model(entry.name, cache=cache, base_url=served.url, progress=False).is_file()


def test_offline_error_says_why_and_how_to_pass_a_file(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ZooError) as info:
        resolve_model("classical-x2", cache=tmp_path, base_url=f"http://127.0.0.1:{port}", progress=False)
    msg = str(info.value)
    assert "could not download model 'classical-x2'" in msg and "refused" in msg.lower()
    assert "--model path/to/001_classicalSR_DF2K_s64w8_SwinIR-M_x2.pth" in msg
    assert _cache_files(tmp_path) == []


def test_env_cache_and_mirror(tmp_path: Path, served: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWINIR_CACHE", str(tmp_path / "envcache"))
    monkeypatch.setenv("SWINIR_ZOO_URL", served.url)
    path = resolve_model("lightweight-x2", progress=False)
    assert path.parent == tmp_path / "envcache"


def test_paths_names_and_the_bundled_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local = tmp_path / "mine.pth"
    local.write_bytes(b"anything")
    assert resolve_model(local) == local
    with pytest.raises(ZooError, match="not a model name"):
        resolve_model(tmp_path / "missing.pth")
    with pytest.raises(ZooError, match="is a directory"):
        resolve_model(tmp_path)

    missing = tmp_path / "weights" / zoo.BUNDLED_FILE
    monkeypatch.setattr(zoo, "bundled_path", lambda model=None: missing)
    with pytest.raises(ZooError, match=r"bundled model 'default' .* is not built yet"):
        resolve_model("default")
    missing.parent.mkdir()
    missing.write_bytes(b"weights")
    assert resolve_model("default") == missing


def test_every_official_checkpoint_has_a_name() -> None:
    names = {m.filename: m for m in MODELS.values()}
    assert len(names) == len(MODELS)  # one name per file
    assert len(MODELS) == 36  # 31 official files + the bundled model + the 4 art models
    assert all(m.url().startswith(zoo.RELEASE_URL + "/") for m in MODELS.values())
    for m in MODELS.values():
        assert m.img_range == (255.0 if m.task.endswith("jpeg") else 1.0)
        assert (m.scale == 1) == (m.task in ("gray_dn", "color_dn", "gray_jpeg", "color_jpeg"))
        if m.sha256 is not None:
            assert len(m.sha256) == 64 and m.size
    assert find_model("002_lightweightSR_DIV2K_s64w8_SwinIR-S_x2") is MODELS["lightweight-x2"]
    table = zoo.describe_models(Path("/nonexistent"))
    assert all(name in table for name in MODELS)


def test_both_spellings_and_near_misses(tmp_path: Path) -> None:
    """``lightweight_x2`` (as configs and presets spell it) and ``lightweight-x2`` are one model."""
    assert find_model("lightweight_x2") is MODELS["lightweight-x2"] is find_model("Lightweight-X2")
    assert find_model("real_x4_gan") is MODELS["real-x4-gan"]
    assert find_model("DEFAULT") is not None and find_model("DEFAULT").task == "bundled"
    with pytest.raises(
        ZooError, match=r"defualt: no such file, and not a model name \(did you mean 'default'\?\)"
    ):
        resolve_model("defualt", cache=tmp_path)
    with pytest.raises(ZooError, match=r"did you mean 'lightweight-x2'"):
        resolve_model("lightwieght_x2", cache=tmp_path)
    with pytest.raises(ZooError) as far:
        resolve_model("zebra", cache=tmp_path)
    assert "did you mean" not in str(far.value)
