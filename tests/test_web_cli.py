"""`swinir web` as a command: help, address, token rules, and cleaning up its temporary folder."""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the web extra is not installed (pip install 'swinir[web]')")

from swinir.cli import build_parser, main
from swinir.web.server import remove_stale_folders
from tests.web_helpers import png_bytes, printed_url, request, start_process, submit, tiny_model


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


def test_no_token_on_all_interfaces_warns_loudly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from swinir.web import server

    served = []
    monkeypatch.setattr(server, "serve", lambda settings, announce: served.append(settings) or 0)
    model = tiny_model(tmp_path)
    assert main(["web", "--host", "0.0.0.0", "--no-token", "--models", f"tiny={model}"]) == 0
    err = capsys.readouterr().err
    assert "WARNING" in err and "WITHOUT A TOKEN" in err
    assert served[0].host == "0.0.0.0" and served[0].token is None


def test_prints_url_serves_and_cleans_up_on_sigterm_and_sigint(tmp_path: Path) -> None:
    model = tiny_model(tmp_path)
    temp = tmp_path / "tmp"
    temp.mkdir()
    stale = temp / "swinir-web-999999999-old"  # left by a server that was killed outright
    stale.mkdir()
    (stale / "x.upload").write_bytes(b"x")
    ours = temp / "swinir-web-not-a-pid"  # not ours to delete
    ours.mkdir()
    args = ["--models", f"tiny={model}", "--quiet", "--token", "secret-1234"]
    # Two servers at once (one per signal): each has a folder of its own.
    procs = {sig: start_process(args, env={"TMPDIR": str(temp)}) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        urls = {sig: printed_url(proc) for sig, proc in procs.items()}
        for sig, proc in procs.items():
            url = urls[sig]
            assert url.startswith("http://127.0.0.1:")
            assert request("GET", url + "/api/models")[0] == 401
            assert submit(url, png_bytes((8, 8)))[0] == 401
            assert request("GET", url + "/api/models?token=secret-1234")[0] == 200
            assert len(list(temp.glob(f"swinir-web-{proc.pid}-*"))) == 1
        assert not stale.exists() and ours.exists()
        for sig, proc in procs.items():
            proc.send_signal(sig)
        for sig, proc in procs.items():
            # Ctrl-C exits 0; SIGTERM ends the process by that signal (after the same clean-up).
            assert proc.wait(30) == (0 if sig == signal.SIGINT else -signal.SIGTERM)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
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
