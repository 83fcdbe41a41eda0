"""Acceptance 3: ``torchrun --nproc_per_node=2 -m swinir upscale DIR -o OUT`` shares the inputs
between two CPU processes: each file is done by exactly one, the files are the same as one process
writes, and the first process prints the summary."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from swinir.ranks import Ranks, share

from .conftest import save_tiny_model


def test_shares_are_disjoint_complete_and_balanced() -> None:
    items = list(range(11))
    cost = {i: float(10 - i) for i in items}
    parts = [share(items, Ranks(r, 3, r), cost=cost.__getitem__) for r in range(3)]
    assert sorted(i for p in parts for i in p) == items  # each item exactly once
    totals = [sum(cost[i] for i in p) for p in parts]
    assert max(totals) - min(totals) <= max(cost.values())
    assert all(p == sorted(p) for p in parts)  # each share keeps the input order
    assert share(items, Ranks()) == items


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built")
def test_torchrun_two_processes_write_what_one_writes(tmp_path: Path) -> None:
    model = save_tiny_model(tmp_path / "tiny.safetensors")
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        size = (12 + 4 * i, 16 + 2 * i)
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(src / f"img{i}.png")
    (src / "broken.png").write_bytes(b"not a png")

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    common = [str(src), "--model", str(model), "--tile", "16", "--tile-overlap", "4"]
    one = subprocess.run(
        [sys.executable, "-m", "swinir", "upscale", *common, "-o", str(tmp_path / "one")],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert one.returncode == 1, one.stderr  # the broken file
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd += ["-m", "swinir", "upscale", *common, "-o", str(tmp_path / "two")]
    two = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert two.returncode != 0, two.stderr[-3000:]  # the broken file fails the run, as with one process

    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert names == [f"img{i}_x2.png" for i in range(5)]
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == names
    for name in names:
        a = np.asarray(Image.open(tmp_path / "one" / name))
        b = np.asarray(Image.open(tmp_path / "two" / name))
        assert np.array_equal(a, b), name
    # Each file by exactly one process; one summary, from the first, counting both.
    done = re.findall(r"^\[(\d)\] (\S+) -> ", two.stdout, re.MULTILINE)
    assert sorted(Path(p).name for _, p in done) == [f"img{i}.png" for i in range(5)]
    assert {r for r, _ in done} == {"0", "1"}
    summaries = [line for line in two.stderr.splitlines() if "written," in line]
    assert (
        len(summaries) == 1 and "5 written, 0 skipped, 1 failed (reasons above) (2 processes)" in summaries[0]
    )
    assert two.stderr.count("broken.png") == 1
