"""The trainer: config files, schedules, exact resume after SIGTERM, checkpoints, export."""

from __future__ import annotations

import math
import os
import signal
from pathlib import Path

import pytest
import torch
from PIL import Image

import swinir
from swinir.cli import main as cli_main
from swinir.train import Trainer, lr_factor, pixel_loss, read_training_checkpoint
from swinir.train_config import ConfigError, config_from_dict, load_config, to_toml
from tests.test_data import make_images

TINY_MODEL = {
    "preset": "lightweight_x2",
    "embed_dim": 12,
    "depths": [2],
    "num_heads": [2],
    "window_size": 4,
    "drop_path_rate": 0.1,  # exercises the RNG state on resume
}


def tiny_config(root: Path, out: Path, steps: int = 6, **sections: dict) -> dict:
    raw = {
        "seed": 3,
        "model": dict(TINY_MODEL),
        "data": {
            "train_dirs": [str(root / "train")],
            "patch_size": 8,
            "batch_size": 4,
            "lanes": 2,
            "buffer_images": 4,
            "patches_per_image": 2,
            "workers": 0,
        },
        "optim": {"lr": 1e-3},
        "schedule": {"kind": "cosine", "total_steps": steps, "warmup_steps": 2},
        "training": {"ema_decay": 0.9, "threads": 1},
        "logging": {
            "out_dir": str(out),
            "log_every": 1,
            "save_every": 2,
            "keep_last": 2,
            "tensorboard": False,
        },
    }
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return raw


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    make_images(tmp_path / "train", {"a": 3, "b": 3, "c": 2}, size=(24, 24))
    make_images(tmp_path / "val", {"": 2}, size=(24, 20), seed=5)
    return tmp_path


def state_of(trainer: Trainer) -> dict[str, torch.Tensor]:
    out = {f"model.{k}": v.clone() for k, v in trainer.model.state_dict().items()}
    assert trainer.ema is not None
    out.update({f"ema.{k}": v.clone() for k, v in trainer.ema.state_dict().items()})
    return out


# ---------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------


def test_shipped_configs_load() -> None:
    root = Path(__file__).resolve().parents[1] / "configs"
    names = {p.stem for p in root.glob("*.toml")}
    assert {"seed_anime_x2", "lightweight_x2", "bundled_x2_cpu"} <= names
    seed = load_config(root / "seed_anime_x2.toml")
    assert seed.model == swinir.preset("seed_x2")
    assert (seed.optim.lr, seed.optim.loss, seed.data.batch_size, seed.data.patch_size) == (5e-5, "l1", 8, 64)
    light = load_config(root / "lightweight_x2.toml")
    assert light.model == swinir.preset("lightweight_x2")
    assert light.schedule.milestones == [250_000, 400_000, 450_000, 475_000]
    assert (light.optim.lr, light.data.batch_size, light.schedule.total_steps) == (2e-4, 64, 500_000)
    for path in root.glob("*.toml"):
        cfg = load_config(path)
        assert config_from_dict(__import__("tomllib").loads(to_toml(cfg))) == cfg  # round trip


def test_config_errors_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[model]\npreset = "lightweight_x2"\n[optim]\nlr = 1e-3\n')
    cfg = load_config(path, ["optim.lr=3e-4", "data.train_dirs=['x', 'y']", "model.embed_dim=48", "seed=9"])
    assert (cfg.optim.lr, cfg.data.train_dirs, cfg.model.embed_dim, cfg.seed) == (3e-4, ["x", "y"], 48, 9)
    assert load_config(path, ["logging.out_dir=runs/a b"]).logging.out_dir == "runs/a b"  # bare string
    cases = {
        "[optim]\nlrr = 1\n": "unknown key.*optim.*lrr",
        "[nope]\n": "unknown top-level",
        "[model]\nembed = 3\n": "unknown SwinIR config keys: embed",
        "[optim]\nlr = 'fast'\n": "optim.lr: expected a number",
        "[data]\nflip = 1\n": "data.flip: expected true/false",
        "[training]\nprecision = 'fp8'\n": "training.precision must be one of",
        "[schedule]\nmilestones = [5, 2]\n": "increasing",
        "x = [": "invalid TOML",
    }
    for text, message in cases.items():
        path.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_config(path)
    with pytest.raises(ConfigError, match="no such config"):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_config(None, ["optim.lr"])


def test_lr_schedules() -> None:
    multi = config_from_dict(
        {"optim": {"lr": 1.0}, "schedule": {"kind": "multistep", "milestones": [10, 20], "warmup_steps": 4}}
    )
    assert [lr_factor(multi, s) for s in (0, 3, 4, 9, 10, 19, 20)] == [0.25, 1.0, 1.0, 1.0, 0.5, 0.5, 0.25]
    cos = config_from_dict(
        {"optim": {"lr": 1.0}, "schedule": {"kind": "cosine", "total_steps": 100, "min_lr": 0.1}}
    )
    assert lr_factor(cos, 0) == pytest.approx(1.0)
    assert lr_factor(cos, 50) == pytest.approx(0.55)
    assert lr_factor(cos, 100) == pytest.approx(0.1)


def test_losses() -> None:
    a, b = torch.zeros(2, 3), torch.full((2, 3), 0.5)
    assert pixel_loss("l1", a, b).item() == pytest.approx(0.5)
    assert pixel_loss("l2", a, b).item() == pytest.approx(0.25)
    assert pixel_loss("charbonnier", a, b, eps=1e-3).item() == pytest.approx(math.sqrt(0.25 + 1e-6))


def test_fp16_needs_a_gpu(data_root: Path, tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    raw = tiny_config(data_root, tmp_path / "run", training={"precision": "fp16"})
    with pytest.raises(ConfigError, match=r"fp16.*needs a GPU"):
        Trainer(config_from_dict(raw))


# ---------------------------------------------------------------------------------------------
# Resume, checkpoints, export
# ---------------------------------------------------------------------------------------------


def assert_sigterm_resume_is_exact(root: Path, tmp_path: Path, n: int, data: dict) -> None:
    """2N steps in one run == N steps, SIGTERM, resume, N more (model and EMA, bit for bit)."""
    straight = Trainer(config_from_dict(tiny_config(root, tmp_path / "a", steps=2 * n, data=data)))
    assert straight.run() == 0
    expected = state_of(straight)

    def kill_at_n(t: Trainer) -> None:
        if t.step == n:
            os.kill(os.getpid(), signal.SIGTERM)

    cfg = config_from_dict(tiny_config(root, tmp_path / "b", steps=2 * n, data=data))
    cfg.logging.save_every = 100  # the only checkpoint at step < 2N is the one written on SIGTERM
    first = Trainer(cfg, on_step=kill_at_n)
    assert first.run() == 128 + signal.SIGTERM
    saved = read_training_checkpoint(tmp_path / "b" / "checkpoints" / f"step_{n:08d}.pt")
    assert saved["step"] == n
    second = Trainer(cfg, resume="auto")
    assert second.step == n
    assert second.run() == 0
    got = state_of(second)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(got[key], value), key
    assert not torch.equal(got["model.conv_first.weight"], got["ema.conv_first.weight"])


def test_sigterm_then_resume_is_exact(data_root: Path, tmp_path: Path) -> None:
    """Acceptance 1: an interrupted and resumed run equals an uninterrupted one."""
    assert_sigterm_resume_is_exact(data_root, tmp_path, 4, {"workers": 2})  # worker processes too


def test_checkpoints_load_safely_and_export(
    data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "run"
    raw = tiny_config(data_root, out, steps=6, validation={"hr_dir": str(data_root / "val"), "every": 3})
    trainer = Trainer(config_from_dict(raw))
    assert trainer.run() == 0
    ckpts = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert ckpts == ["step_00000004.pt", "step_00000006.pt"]  # keep_last = 2
    assert (out / "best.pt").is_file() and (out / "config.toml").is_file()
    logs = (out / "log.jsonl").read_text().splitlines()
    assert len(logs) == 6 + 2 and '"val_psnr"' in logs[-1]

    ckpt_path = out / "checkpoints" / "step_00000006.pt"
    ckpt = torch.load(ckpt_path, weights_only=True)
    assert isinstance(ckpt["swinir_config"], dict) and {"model", "ema", "optimizer", "rng"} <= set(ckpt)
    loaded = swinir.load_model(ckpt_path)  # picks the EMA weights
    assert trainer.ema is not None
    for k, v in trainer.ema.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    assert loaded.config.drop_path_rate == 0.0

    exported = tmp_path / "model.safetensors"
    assert cli_main(["export-weights", str(ckpt_path), str(exported)]) == 0
    x = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        assert torch.equal(swinir.load_model(exported)(x), loaded(x))
    # The recipe travels with the weights: `swinir info --recipe` gives back the run's config.
    capsys.readouterr()
    assert cli_main(["info", str(exported)]) == 0
    shown = capsys.readouterr().out
    assert "trained          step 6 (ema weights)" in shown and "from scratch" in shown
    assert cli_main(["info", str(exported), "--recipe"]) == 0
    recipe = capsys.readouterr().out
    assert recipe == (out / "config.toml").read_text()
    (tmp_path / "recipe.toml").write_text(recipe)
    assert load_config(tmp_path / "recipe.toml") == config_from_dict(raw)
    raw_out = tmp_path / "raw.safetensors"
    assert cli_main(["export-weights", str(ckpt_path), str(raw_out), "--weights", "model"]) == 0
    assert torch.equal(
        swinir.load_model(raw_out).state_dict()["conv_first.weight"],
        trainer.model.state_dict()["conv_first.weight"],
    )


def test_export_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    out = tmp_path / "out.safetensors"
    assert cli_main(["export-weights", str(bad), str(out)]) == 2
    assert "bad.pt" in capsys.readouterr().err and not out.exists()
    assert cli_main(["export-weights", str(tmp_path / "missing.pt"), str(out)]) == 2


def test_train_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[data]\ntrain_dirs = ["{tmp_path / "nowhere"}"]\n[logging]\nout_dir = "{tmp_path / "o"}"\n'
    )
    assert cli_main(["train", "--config", str(cfg), "--set", "model.embed_dim=12"]) == 2
    assert "nowhere: no such folder" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Numerics options
# ---------------------------------------------------------------------------------------------


def losses_of(data_root: Path, out: Path, steps: int = 3, **training) -> list[float]:
    raw = tiny_config(data_root, out, steps=steps, training=training)
    trainer = Trainer(config_from_dict(raw))
    seen: list[float] = []
    original = trainer.train_step
    trainer.train_step = lambda lr, hr: seen.append(original(lr, hr)) or seen[-1]  # type: ignore[method-assign]
    assert trainer.run() == 0
    return seen


def test_grad_checkpointing_and_bf16_follow_fp32(data_root: Path, tmp_path: Path) -> None:
    ref = losses_of(data_root, tmp_path / "fp32")
    ckpt = losses_of(data_root, tmp_path / "ckpt", grad_checkpointing=True)
    assert ckpt == pytest.approx(ref, rel=1e-5)
    bf16 = losses_of(data_root, tmp_path / "bf16", precision="bf16")
    assert bf16 == pytest.approx(ref, rel=0.05)


def test_charbonnier_adamw_multistep_clip(data_root: Path, tmp_path: Path) -> None:
    raw = tiny_config(
        data_root,
        tmp_path / "run",
        steps=3,
        optim={"name": "adamw", "loss": "charbonnier", "grad_clip": 0.1, "weight_decay": 0.01},
        schedule={"kind": "multistep", "milestones": [1]},
        training={"ema_decay": 0.0},
    )
    trainer = Trainer(config_from_dict(raw))
    assert trainer.run() == 0 and trainer.ema is None
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.5e-3)
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "step_00000003.pt", weights_only=True)
    assert "ema" not in ckpt


# ---------------------------------------------------------------------------------------------
# Logs
# ---------------------------------------------------------------------------------------------


def test_runs_without_tensorboard_with_a_note(
    data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setitem(__import__("sys").modules, "torch.utils.tensorboard", None)  # import fails
    raw = tiny_config(data_root, tmp_path / "run", steps=2, logging={"tensorboard": True})
    assert Trainer(config_from_dict(raw)).run() == 0
    assert "tensorboard is not installed" in capsys.readouterr().err
    assert not (tmp_path / "run" / "tb").exists() and (tmp_path / "run" / "log.jsonl").is_file()


def test_tensorboard_scalars_and_images(data_root: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    raw = tiny_config(
        data_root,
        tmp_path / "run",
        steps=2,
        logging={"tensorboard": True},
        validation={"hr_dir": str(data_root / "val"), "every": 2, "samples": 1},
    )
    assert Trainer(config_from_dict(raw)).run() == 0
    events = EventAccumulator(str(tmp_path / "run" / "tb"))
    events.Reload()
    tags = events.Tags()
    assert {"loss", "lr", "patches_per_s", "val_psnr", "val_ssim"} <= set(tags["scalars"])
    assert tags["images"] == ["val/img000.png"]


def test_resume_with_new_lr_and_schedule(data_root: Path, tmp_path: Path) -> None:
    raw = tiny_config(data_root, tmp_path / "run", steps=4)
    assert Trainer(config_from_dict(raw)).run() == 0
    raw["optim"]["lr"] = 1e-2
    raw["schedule"] = {"kind": "constant", "total_steps": 6}
    resumed = Trainer(config_from_dict(raw), resume="auto")
    assert resumed.step == 4 and resumed.optimizer.param_groups[0]["lr"] == 1e-2
    assert resumed.run() == 0 and resumed.optimizer.param_groups[0]["lr"] == 1e-2


# ---------------------------------------------------------------------------------------------
# Everyday messages (issue 10)
# ---------------------------------------------------------------------------------------------


def test_set_errors_blame_the_override_with_toml_syntax() -> None:
    with pytest.raises(ConfigError) as info:
        load_config("configs/lightweight_x2.toml", ["data.train_dirs=/tmp/x"])
    msg = str(info.value)
    assert msg.startswith("data.train_dirs: expected a list, got '/tmp/x' (in --set data.train_dirs=/tmp/x;")
    assert """--set 'data.train_dirs=["/tmp/x"]'""" in msg and "lightweight_x2.toml" not in msg
    with pytest.raises(
        ConfigError, match=r"unknown key\(s\) in \[data\]: trian_dirs \(did you mean train_dirs\?\)"
    ):
        load_config(None, ['data.trian_dirs=["/tmp/x"]'])
    with pytest.raises(ConfigError, match=r"unknown key\(s\) in \[optim\]: learning_rate"):
        config_from_dict({"optim": {"learning_rate": 1.0}})


def test_a_second_trainer_on_the_same_folder_stops(data_root: Path, tmp_path: Path) -> None:
    from swinir.train import RunLock

    out = tmp_path / "run"
    holder = RunLock(out)
    holder.acquire()
    try:
        second = Trainer(config_from_dict(tiny_config(data_root, out, steps=2)))
        with pytest.raises(ConfigError, match=r"another training run is using this folder \(pid \d+"):
            second.run()
        assert not (out / "checkpoints").exists()
    finally:
        holder.release()
    assert Trainer(config_from_dict(tiny_config(data_root, out, steps=2))).run() == 0  # free again


def test_log_has_units_best_marker_eta_and_a_closing_summary(
    data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "run"
    raw = tiny_config(data_root, out, steps=4, validation={"hr_dir": str(data_root / "val"), "every": 2})
    assert Trainer(config_from_dict(raw), progress=False).run() == 0
    err = capsys.readouterr().err
    assert f"checkpoints about 0 MB each, the last 2 kept in {out / 'checkpoints'}" in err
    steps = [line for line in err.splitlines() if line.startswith("step 1/4 ")]
    assert steps and "elapsed " in steps[0] and "ETA " in steps[0]
    vals = [line for line in err.splitlines() if line.startswith("step ") and "val PSNR" in line]
    assert len(vals) == 2 and all(" dB, SSIM " in v for v in vals)
    assert "(best so far, saved" in vals[0]
    assert "finished step 4 in" in err
    assert f"checkpoint: {out / 'checkpoints' / 'step_00000004.pt'}" in err
    assert f"best:       {out / 'best.pt'} (val PSNR" in err
    assert f"to deploy:  swinir export-weights {out / 'best.pt'} model.safetensors" in err


def test_resume_after_set_points_to_the_runs_own_config(
    data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "run"
    cfg = tmp_path / "c.toml"
    cfg.write_text(to_toml(config_from_dict(tiny_config(data_root, out, steps=2))))
    assert cli_main(["train", "--config", str(cfg), "--set", "model.embed_dim=8"]) == 0
    capsys.readouterr()
    assert cli_main(["train", "--config", str(cfg), "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and len(err) < 600, err
    assert "model.embed_dim 8 (config: 12)" in err
    assert f"swinir train --config {out / 'config.toml'} --resume" in err
    # ... and that command works.
    assert (
        cli_main(
            ["train", "--config", str(out / "config.toml"), "--resume", "--set", "schedule.total_steps=4"]
        )
        == 0
    )


def test_export_points_from_a_missing_best_to_the_checkpoints(
    data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "run"
    assert Trainer(config_from_dict(tiny_config(data_root, out, steps=2))).run() == 0
    capsys.readouterr()
    assert cli_main(["export-weights", str(out / "best.pt"), str(tmp_path / "m.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "best.pt is written only by runs that validate" in err
    assert str(out / "checkpoints" / "step_00000002.pt") in err


def test_unusable_training_images_are_named_once_on_one_line(tmp_path: Path, capsys) -> None:
    """A corrupt file and one smaller than a patch are skipped, each reported once, with control
    characters in their names escaped (a name cannot break the log into lines)."""
    make_images(tmp_path / "train", {"": 6}, size=(24, 24))
    (tmp_path / "train" / "bad\nname.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    Image.new("RGB", (6, 6)).save(tmp_path / "train" / "tiny.png")
    raw = tiny_config(tmp_path, tmp_path / "out", steps=4, data={"buffer_images": 8})
    assert Trainer(config_from_dict(raw)).run() == 0
    err = capsys.readouterr().err
    skips = [line for line in err.splitlines() if "skipping" in line]
    assert len([s for s in skips if "bad\\nname.png" in s and "unreadable image" in s]) == 1, skips
    assert len([s for s in skips if "tiny.png" in s and "smaller than" in s]) == 1, skips
    assert "bad\nname" not in err
