"""Crafted and damaged checkpoints, resuming past broken checkpoints, and configs with wrong types.

Probes of issue 11 re-run as tests: a small file declaring a huge network is refused before any
memory is taken (checked in a subprocess whose address space is capped), ``--resume`` falls back to
the newest checkpoint that loads and says what it skipped, and config values of the wrong type or
range get one line naming the field.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import swinir
from swinir.checkpoint import CheckpointError, check_network, load_model
from swinir.cli import main
from swinir.model import SwinIR, SwinIRConfig, preset
from swinir.train import read_training_checkpoint
from tests.conftest import tiny_train_args
from tests.test_data import make_images

REPO = Path(__file__).resolve().parents[1]
TINY = {
    **preset("lightweight_x2").to_dict(),
    "depths": [1],
    "num_heads": [2],
    "embed_dim": 8,
    "window_size": 4,
}
# Address space allowed to a `swinir info` run on a crafted file: the interpreter and torch take about
# 0.7 GB of it; building the network the file declares would need 2.6 GB to 12 TB.
INFO_ADDRESS_SPACE = 2 << 30


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    swinir.save_model(SwinIR(SwinIRConfig.from_dict(TINY)), path)
    return path


def _capped_info(paths: list[Path]) -> subprocess.CompletedProcess[str]:
    """``swinir info`` on each of ``paths`` in one process with a capped address space."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (INFO_ADDRESS_SPACE, INFO_ADDRESS_SPACE))

    script = "import sys\nfrom swinir.cli import main\nfor p in sys.argv[1:]:\n    print(main(['info', p]))\n"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-c", script, *map(str, paths)],
        preexec_fn=cap,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_declared_huge_network_is_refused_before_building(tiny: Path, tmp_path: Path) -> None:
    bombs = []
    for rows in (3000, 1_000_000):
        state = load_file(str(tiny))
        state["conv_first.weight"] = torch.zeros(rows, 3, 0, 0)  # 0 bytes of data, huge declared width
        bombs.append(tmp_path / f"bomb_{rows}.safetensors")
        save_file(state, str(bombs[-1]))
        assert bombs[-1].stat().st_size < 100_000
    done = _capped_info(bombs)
    assert done.stdout.split() == ["2", "2"], done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2 and "Traceback" not in done.stderr, done.stderr
    for line, bomb, rows in zip(lines, bombs, (3000, 1_000_000), strict=True):
        assert line.startswith(f"swinir info: {bomb}: does not match the SwinIR architecture")
        assert f"conv_first.weight: file ({rows}, 3, 0, 0)" in line


def test_stored_config_cannot_ask_for_a_huge_network(tiny: Path, tmp_path: Path) -> None:
    state = load_file(str(tiny))
    for cfg, reason in [
        ({**TINY, "depths": [10**9], "num_heads": [2]}, "describes 1000000000 transformer blocks"),
        ({**TINY, "embed_dim": 10**7, "num_heads": [2]}, "does not match the SwinIR architecture"),
        ({**TINY, "embed_dim": "big"}, "bad swinir_config metadata"),
        ({**TINY, "num_heads": [0]}, "bad swinir_config metadata"),
    ]:
        path = tmp_path / "meta.safetensors"
        save_file(state, str(path), metadata={"format": "swinir", "swinir_config": json.dumps(cfg)})
        with pytest.raises(CheckpointError, match=reason):
            load_model(path)


def test_network_size_limit(tiny: Path) -> None:
    state = load_file(str(tiny))
    config = SwinIRConfig.from_dict(TINY)
    check_network(config, state, "tiny")  # fits
    with pytest.raises(
        CheckpointError, match=r"tiny: the network it describes needs 0\.0 GiB, over the limit"
    ):
        check_network(config, state, "tiny", limit=1000)


def test_load_model_still_loads_good_files(tiny: Path) -> None:
    model = load_model(tiny)
    assert model.config.embed_dim == 8 and next(model.parameters()).device.type == "cpu"


# ---------------------------------------------------------------------------------------------
# --resume past damaged checkpoints
# ---------------------------------------------------------------------------------------------


def _train_args(root: Path, steps: int) -> list[str]:
    return tiny_train_args(root / "train", root / "run", steps)


def test_resume_falls_back_to_the_newest_checkpoint_that_loads(tmp_path: Path, capsys) -> None:
    make_images(tmp_path / "train", {"a": 3}, size=(24, 24))
    assert main(_train_args(tmp_path, 6)) == 0
    ckpts = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == [
        "step_00000002.pt",
        "step_00000004.pt",
        "step_00000006.pt",
    ]
    newest = ckpts / "step_00000006.pt"
    newest.write_bytes(newest.read_bytes()[:3000])  # cut short
    (ckpts / "step_00000004.pt").write_bytes(b"")  # emptied
    capsys.readouterr()
    assert main([*_train_args(tmp_path, 8), "--resume"]) == 0
    err = capsys.readouterr().err
    assert f"swinir train: skipped {newest}: not a readable training checkpoint (" in err
    assert (
        f"skipped {ckpts / 'step_00000004.pt'}: not a readable training checkpoint (the file is empty)" in err
    )
    assert "resuming from step_00000002.pt, the newest checkpoint that loads (2 newer one(s) skipped)" in err
    assert "resumed from" in err and "at step 2" in err
    assert read_training_checkpoint(ckpts / "step_00000008.pt")["step"] == 8
    assert read_training_checkpoint(ckpts / "step_00000006.pt")["step"] == 6  # rewritten, complete


def test_resume_with_no_loadable_checkpoint_is_one_error(tmp_path: Path, capsys) -> None:
    ckpts = tmp_path / "run" / "checkpoints"
    ckpts.mkdir(parents=True)
    (ckpts / "step_00000002.pt").write_bytes(b"")
    (ckpts / "step_00000004.pt").write_bytes(b"PK\x03\x04garbage")
    make_images(tmp_path / "train", {"a": 3}, size=(24, 24))
    assert main([*_train_args(tmp_path, 6), "--resume"]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"swinir train: none of the 2 checkpoint(s) in {ckpts} loads (newest: ")


def test_empty_training_checkpoint_names_the_reason(tmp_path: Path) -> None:
    empty = tmp_path / "step_00000001.pt"
    empty.write_bytes(b"")
    with pytest.raises(Exception, match=r"not a readable training checkpoint \(the file is empty\)"):
        read_training_checkpoint(empty)
    torch.save({"format": "swinir-train-1", "step": 1}, tmp_path / "partial.pt")
    with pytest.raises(Exception, match=r"incomplete training checkpoint \(no swinir_config, model"):
        read_training_checkpoint(tmp_path / "partial.pt")


# ---------------------------------------------------------------------------------------------
# Config values of the wrong type or range
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ('model.embed_dim="big"', "model.embed_dim: expected an integer, got 'big'"),
        ("model.depths=4", "model.depths: expected a list, got 4"),
        ('model.depths=[6, "x"]', "model.depths[1]: expected an integer, got 'x'"),
        ("model.num_heads=[0, 0, 0, 0]", "model.num_heads must be positive"),
        ("model.mlp_ratio=-1", "model.mlp_ratio must be positive"),
        ("training.threads=-3", "training.threads must be >= 0 (0 = torch's default), got -3"),
        ("optim.betas=[2.0, 0.9]", "optim.betas must both be in [0, 1), got [2.0, 0.9]"),
        ("optim.eps=nan", "optim.eps: expected a finite number, got nan"),
        ("data.blur_prob=1.5", "data.blur_prob must be in [0, 1]"),
    ],
)
def test_config_values_get_one_line_naming_the_field(override: str, message: str, capsys) -> None:
    assert main(["train", "--set", override, "--print-config"]) == 2
    err = capsys.readouterr().err
    # One line naming the field; a value from --set also names the --set and the TOML syntax.
    assert err.startswith(f"swinir train: {message}") and err.count("\n") == 1, err
