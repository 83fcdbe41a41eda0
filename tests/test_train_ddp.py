"""Acceptance 2: two CPU processes under torchrun (DDP, gloo) train like one process with the same
global batch, and both hold identical weights."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from swinir.train import Trainer, read_training_checkpoint, weights_digest
from swinir.train_config import config_from_dict, to_toml
from tests.test_data import make_images
from tests.test_train import tiny_config


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built")
def test_torchrun_two_processes_match_one(tmp_path: Path) -> None:
    make_images(tmp_path / "train", {"a": 3, "b": 3, "c": 2}, size=(24, 24))
    steps = 4
    raw = tiny_config(tmp_path, tmp_path / "ddp", steps=steps, model={"drop_path_rate": 0.0})
    raw["data"]["workers"] = 1
    cfg_path = tmp_path / "ddp.toml"
    cfg_path.write_text(to_toml(config_from_dict(raw)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += ["-m", "swinir.train", "--config", str(cfg_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 process(es) on cpu" in proc.stderr

    ckpt = read_training_checkpoint(tmp_path / "ddp" / "checkpoints" / f"step_{steps:08d}.pt")
    assert len(ckpt["weights_sha256"]) == 2
    assert ckpt["weights_sha256"][0] == ckpt["weights_sha256"][1]  # both ranks hold the same weights
    assert len(ckpt["rng"]) == 2

    raw["logging"]["out_dir"] = str(tmp_path / "single")
    single = Trainer(config_from_dict(raw))
    assert single.world == 1 and single.run() == 0
    assert (
        weights_digest(single.model)
        == read_training_checkpoint(tmp_path / "single" / "checkpoints" / f"step_{steps:08d}.pt")[
            "weights_sha256"
        ][0]
    )
    ddp_state = ckpt["model"]
    for key, value in single.model.state_dict().items():
        torch.testing.assert_close(ddp_state[key], value, rtol=1e-4, atol=1e-5, msg=key)
