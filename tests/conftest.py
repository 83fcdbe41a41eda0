"""Shared fixtures. Tests that need ../shared (datasets, parity cases) skip with a reason without it."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import torch

import swinir
from swinir.model import SwinIR, SwinIRConfig, preset

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SWINIR_SHARED", REPO.parent / "shared"))


def shared_path(*parts: str) -> Path:
    """Path under ../shared, or skip the calling test with a reason when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (shared datasets are only on developer machines and CI)")
    return path


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """One torch thread for a module (``pytestmark = pytest.mark.usefixtures("one_thread")``).

    Tiny models are dominated by thread start-up, and one thread is fair to a shared machine.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_config(changes: Mapping[str, object] | None = None) -> SwinIRConfig:
    """The lightweight x2 network cut to one stage of two blocks, 12 channels, with ``changes``."""
    base = {**preset("lightweight_x2").to_dict(), "depths": [2], "num_heads": [2], "embed_dim": 12}
    return SwinIRConfig.from_dict({**base, **(changes or {})})


def save_tiny_model(path: Path, changes: Mapping[str, object] | None = None, seed: int = 0) -> Path:
    """A randomly initialised (seeded) :func:`tiny_config` network saved as safetensors at ``path``."""
    torch.manual_seed(seed)
    swinir.save_model(SwinIR(tiny_config(changes)), path)
    return path


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Path of a :func:`save_tiny_model` file named ``tiny.safetensors`` (its model label is "tiny")."""
    return str(save_tiny_model(tmp_path_factory.mktemp("model") / "tiny.safetensors"))


def tiny_train_args(train_dir: Path, out_dir: Path, steps: int) -> list[str]:
    """``swinir train`` arguments for a one-block, 8-channel network on ``train_dir``: 8-pixel
    patches, batches of 2, one thread, a checkpoint every 2 steps (3 kept), no TensorBoard."""
    return [
        "train",
        "--set", 'model.preset="lightweight_x2"', "--set", "model.embed_dim=8", "--set", "model.depths=[1]",
        "--set", "model.num_heads=[2]", "--set", "model.window_size=4",
        "--set", f'data.train_dirs=["{train_dir}"]', "--set", "data.patch_size=8",
        "--set", "data.batch_size=2", "--set", "data.lanes=1", "--set", "data.workers=0",
        "--set", "data.buffer_images=2", "--set", f"schedule.total_steps={steps}",
        "--set", "logging.save_every=2", "--set", "logging.keep_last=3", "--set", "logging.tensorboard=false",
        "--set", "training.threads=1", "--out-dir", str(out_dir),
    ]  # fmt: skip
