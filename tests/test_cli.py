"""The ``swinir`` command as a whole: ``python -m swinir``, the command table, pipes, ``info``, help."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from swinir.cli import COMMANDS, build_parser, main


def _swinir(*argv: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "swinir", *argv], capture_output=True, text=True, **kwargs)


def test_python_dash_m_swinir_runs_the_command() -> None:
    done = _swinir("--version")
    assert done.returncode == 0 and done.stdout.startswith("swinir ")
    done = _swinir("upscale", "--list-models")
    assert done.returncode == 0 and "lightweight-x2" in done.stdout


def test_command_table_matches_each_command_parser() -> None:
    """The help lines listed without importing a command match the commands' own parsers."""
    full = build_parser()
    sub = next(a for a in full._actions if isinstance(a, argparse._SubParsersAction))
    own = {choice.dest: choice.help for choice in sub._choices_actions}
    assert [name for name, _, _ in COMMANDS] == list(own)
    for name, _, line in COMMANDS:
        assert own[name] == line, name


def test_info_takes_model_names_and_a_closed_pipe_is_quiet(capsys: pytest.CaptureFixture) -> None:
    assert main(["info", "default"]) == 0
    out = capsys.readouterr().out
    assert "SwinIR x2" in out and "embed_dim" in out
    assert main(["info", "defualt"]) == 2
    assert "did you mean 'default'?" in capsys.readouterr().err
    # `swinir info default | head -1`: the reader goes away; no BrokenPipeError traceback.
    child = subprocess.Popen(
        [sys.executable, "-m", "swinir", "info", "default"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # before the child writes (it is still importing torch)
    err = child.stderr.read().decode()
    assert child.wait() == 141 and err == "", err


def test_benchmark_help_is_plain_and_every_option_explained(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["benchmark", "--help"])
    text = capsys.readouterr().out
    assert "``" not in text
    parser = build_parser(["benchmark"])
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    bench = sub.choices["benchmark"]
    for action in bench._actions:
        if action.option_strings and action.dest != "help":
            assert action.help, action.option_strings


def test_benchmark_preset_takes_both_spellings(capsys: pytest.CaptureFixture) -> None:
    from swinir.model import preset

    assert preset("lightweight-x2") == preset("lightweight_x2")
    with pytest.raises(ValueError, match="did you mean 'lightweight_x2'"):
        preset("lightweigth_x2")
