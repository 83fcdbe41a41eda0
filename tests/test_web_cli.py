"""`swinir web` as a command: help, address, token rules, and cleaning up its temporary folder."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the web extra is not installed (pip install 'swinir[web]')")

from swinir.cli import build_parser, main
from swinir.web.server import remove_stale_folders
from tests.web_helpers import png_bytes, request, server_process, submit, tiny_model


def _web_parser() -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["web"]


def test_help_explains_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    parser = _web_parser()
    for action in parser._actions:
        assert action.help and len(action.help) > 8, action.option_strings
    with pytest.raises(SystemExit):
        main(["web", "--help"])
    text = capsys.readouterr().out
    for words in ("--token", "--no-token", "--models", "--max-upload-mb", "--max-output-pixels", "127.0.0.1"):
        assert words in text


def test_non_loopback_host_needs_a_token(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["web", "--host", "0.0.0.0", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "--token" in err and "--no-token" in err and len(err.strip().splitlines()) == 1


def test_unknown_model_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["web", "--models", str(tmp_path / "nope.safetensors")]) == 2
    err = capsys.readouterr().err.strip()
    assert "nope.safetensors" in err and "no such file" in err and len(err.splitlines()) == 1


def test_no_token_on_all_interfaces_warns_loudly(tmp_path: Path) -> None:
    model = tiny_model(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "swinir.cli", "web", "--host", "0.0.0.0", "--port", "0", "--no-token",
         "--models", f"tiny={model}", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )  # fmt: skip
    try:
        assert proc.stdout is not None and "http://" in proc.stdout.readline()
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert "WARNING" in err and "WITHOUT A TOKEN" in err


def test_prints_url_serves_and_cleans_up_on_sigterm_and_sigint(tmp_path: Path) -> None:
    model = tiny_model(tmp_path)
    temp = tmp_path / "tmp"
    temp.mkdir()
    stale = temp / "swinir-web-999999999-old"  # left by a server that was killed outright
    stale.mkdir()
    (stale / "x.upload").write_bytes(b"x")
    ours = temp / "swinir-web-not-a-pid"  # not ours to delete
    ours.mkdir()
    for sig in (signal.SIGTERM, signal.SIGINT):
        args = ["--models", f"tiny={model}", "--quiet", "--token", "secret-1234"]
        with server_process(args, env={"TMPDIR": str(temp)}) as (proc, url):
            assert url.startswith("http://127.0.0.1:")
            assert request("GET", url + "/api/models")[0] == 401
            assert submit(url, png_bytes((8, 8)))[0] == 401
            folders = [p for p in temp.glob("swinir-web-*") if p != ours]
            assert len(folders) == 1 and folders[0].name.startswith(f"swinir-web-{proc.pid}-")
            status, _, _ = request("GET", url + "/api/models?token=secret-1234")
            assert status == 200
            proc.send_signal(sig)
            # Ctrl-C exits 0; SIGTERM ends the process by that signal (after the same clean-up).
            assert proc.wait(20) == (0 if sig == signal.SIGINT else -signal.SIGTERM)
        assert not stale.exists() and ours.exists()
        assert [p for p in temp.glob("swinir-web-*") if p != ours] == []


def test_remove_stale_folders_keeps_live_servers(tmp_path: Path) -> None:
    live = tmp_path / f"swinir-web-{os.getpid()}-abc"
    dead = tmp_path / "swinir-web-999999999-abc"
    live.mkdir()
    dead.mkdir()
    assert remove_stale_folders(tmp_path) == [dead]
    assert live.exists() and not dead.exists()


def test_default_models_are_those_usable_offline() -> None:
    from swinir.web.catalog import offline_choices
    from swinir.zoo import is_cached, list_models

    names = [c.name for c in offline_choices()]
    assert "default" in names  # bundled
    expected = [m.name for m in list_models() if is_cached(m) and "-noise" not in m.name]
    assert names == expected  # family members (art-noise1..3) are reached through `noise`


def test_bundled_model_not_built_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from swinir import zoo

    monkeypatch.setattr(zoo, "bundled_path", lambda model=zoo.BUNDLED: tmp_path / model.filename)
    assert main(["web", "--models", "default"]) == 2
    err = capsys.readouterr().err.strip()
    assert "not built yet" in err and len(err.splitlines()) == 1
