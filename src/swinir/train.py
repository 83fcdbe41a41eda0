"""Train SwinIR super-resolution models on image folders: one CPU, one GPU, or many processes.

Run ``python -m swinir.train --config configs/X.toml [--set section.key=value ...] [--resume]``
(or ``swinir train ...``). Under ``torchrun`` every process trains with DistributedDataParallel
(gloo on CPU, nccl on GPU), reads its own share of the data lanes, and rank 0 alone writes files.

Outputs under ``logging.out_dir``::

    config.toml              the resolved config of the run
    checkpoints/step_*.pt    training checkpoints, the last ``keep_last`` kept
    best.pt                  the checkpoint with the best validation PSNR
    log.jsonl                one JSON object per log/validation event
    tb/                      TensorBoard scalars and sample images (if tensorboard is installed)

Training checkpoints hold only tensors, dicts, lists, numbers and strings (they load with
``torch.load(weights_only=True)``): ``swinir_config`` (the model config), ``model`` and ``ema``
weights (so ``swinir.load_model`` picks the EMA weights), and the optimiser, scheduler, grad scaler,
RNG and data states that make ``--resume`` continue bit for bit.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import hashlib
import json
import math
import os
import random
import re
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from .atomic import WriteError, atomic_path, remove_stale_temps
from .data import DataError, ImageRecord, PatchLoader, build_spec, load_validation, scan_shards
from .degradations import Degradation
from .ema import EMA
from .model import SwinIR, SwinIRConfig
from .train_config import ConfigError, LoggingConfig, TrainConfig, load_config, to_toml

CHECKPOINT_FORMAT = "swinir-train-1"
_CKPT_RE = re.compile(r"step_(\d+)\.pt$")


# ----------------------------------------------------------------------------------------------
# Pieces
# ----------------------------------------------------------------------------------------------


def lr_factor(cfg: TrainConfig, step: int) -> float:
    """Multiplier of ``optim.lr`` for the optimiser step after ``step`` completed steps."""
    s = cfg.schedule
    if step < s.warmup_steps:
        return (step + 1) / s.warmup_steps
    if s.kind == "constant":
        return 1.0
    if s.kind == "multistep":
        return s.gamma ** bisect.bisect_right(s.milestones, step)
    span = max(1, s.total_steps - s.warmup_steps)
    progress = min(1.0, (step - s.warmup_steps) / span)
    floor = s.min_lr / cfg.optim.lr
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def pixel_loss(kind: str, sr: Tensor, hr: Tensor, eps: float = 1e-3) -> Tensor:
    """Mean L1, L2 (squared error, what PSNR measures) or Charbonnier (``sqrt(d^2 + eps^2)``) loss
    over every value, in float32."""
    d = sr.float() - hr.float()
    if kind == "l1":
        return d.abs().mean()
    if kind == "l2":
        return (d * d).mean()
    return torch.sqrt(d * d + eps * eps).mean()


def build_optimizer(cfg: TrainConfig, params: Sequence[nn.Parameter]) -> torch.optim.Optimizer:
    o = cfg.optim
    cls = torch.optim.Adam if o.name == "adam" else torch.optim.AdamW
    betas = (float(o.betas[0]), float(o.betas[1]))
    return cls(params, lr=o.lr, betas=betas, eps=o.eps, weight_decay=o.weight_decay)


def _metrics() -> tuple[Callable[..., float], Callable[..., float]]:
    from .metrics import psnr, ssim

    return psnr, ssim


def to_uint8(t: Tensor) -> np.ndarray:
    """(C, H, W) float in [0, 1] -> (H, W, C) or (H, W) uint8, rounded as an image file would be."""
    arr = t.detach().float().clamp(0, 1).mul(255).round().byte().cpu().numpy()
    return arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0)


@torch.no_grad()
def evaluate(
    model: nn.Module, images: list[tuple[str, np.ndarray, np.ndarray]], scale: int, device: torch.device
) -> tuple[float, float, list[tuple[str, Tensor]]]:
    """Mean Y-PSNR/SSIM (border ``scale`` cropped) and the SR outputs as (C, H, W) float tensors."""
    from .data import to_tensor

    psnr, ssim = _metrics()
    was_training = model.training
    model.eval()
    p_sum = s_sum = 0.0
    outputs: list[tuple[str, Tensor]] = []
    for name, lr, hr in images:
        sr = model(to_tensor(lr).unsqueeze(0).to(device))[0].float().clamp(0, 1).cpu()
        out = to_uint8(sr)
        p_sum += psnr(out, hr, crop_border=scale)
        s_sum += ssim(out, hr, crop_border=scale)
        outputs.append((name, sr))
    model.train(was_training)
    return p_sum / len(images), s_sum / len(images), outputs


# ----------------------------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------------------------


def rng_state() -> dict[str, Any]:
    """This process's RNG states as weights_only-loadable objects."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *map(_plain, np_state[2:])],
        "python": [py_state[0], list(py_state[1]), py_state[2]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), *n[2:]))
    p = state["python"]
    random.setstate((p[0], tuple(p[1]), p[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def weights_digest(model: nn.Module) -> str:
    """SHA-256 of every parameter and buffer, to check that processes hold the same weights."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def checkpoint_paths(out_dir: Path) -> list[Path]:
    """Training checkpoints under ``out_dir/checkpoints``, oldest step first."""
    folder = out_dir / "checkpoints"
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _CKPT_RE.search(p.name))]
    return [p for _, p in sorted(found)]


# What every training checkpoint holds; one without them cannot resume a run.
_CKPT_KEYS = ("step", "swinir_config", "model", "optimizer", "scheduler", "scaler", "rng")


def read_training_checkpoint(path: Path) -> dict[str, Any]:
    """Load a training checkpoint safely (``weights_only``); errors name the file and the reason."""
    from .checkpoint import checkpoint_file_problem
    from .paths import printable

    name = printable(path)
    problem = checkpoint_file_problem(path)
    if problem == "no such file":
        raise ConfigError(f"{name}: no such checkpoint")
    if problem == "file is empty":
        raise ConfigError(f"{name}: not a readable training checkpoint (the file is empty)")
    if problem is not None:
        raise ConfigError(f"{name}: {problem}")
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ConfigError(f"{name}: not a readable training checkpoint ({reason})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError(f"{name}: not a swinir training checkpoint (no format '{CHECKPOINT_FORMAT}')")
    missing = [k for k in _CKPT_KEYS if k not in ckpt]
    if missing:
        raise ConfigError(f"{name}: incomplete training checkpoint (no {', '.join(missing)})")
    return ckpt


def save_torch(obj: Any, path: Path) -> None:
    """``torch.save`` atomically and durably, with a plain OSError when the disk is full.

    torch's own file writer reports a full disk as an opaque ``RuntimeError`` (``enforce fail at
    inline_container.cc``), so the checkpoint is serialised in memory and written by Python.
    """
    import io

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(buffer.getbuffer())


# ----------------------------------------------------------------------------------------------
# Distributed set-up
# ----------------------------------------------------------------------------------------------


def _init_distributed(device_kind: str) -> tuple[int, int, int]:
    """(rank, world size, local rank); initialises the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, 0
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_kind == "cuda" else "gloo")
    return rank, world, local


def _pick_device(cfg: TrainConfig) -> str:
    want = cfg.training.device
    if want == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if want == "cuda" and not torch.cuda.is_available():
        raise ConfigError("training.device = 'cuda' but no CUDA device is available")
    return want


# ----------------------------------------------------------------------------------------------
# The trainer
# ----------------------------------------------------------------------------------------------


class Trainer:
    """One training run; ``run()`` trains to ``schedule.total_steps`` or until SIGINT/SIGTERM.

    ``on_step(trainer)`` is called after every step (tests use it to send signals at a known step).
    """

    def __init__(
        self,
        cfg: TrainConfig,
        resume: str | None = None,
        on_step: Callable[[Trainer], None] | None = None,
        progress: bool | None = None,
    ) -> None:
        self.cfg = cfg
        self.on_step = on_step
        kind = _pick_device(cfg)
        self.rank, self.world, local = _init_distributed(kind)
        self.device = torch.device(f"cuda:{local}" if kind == "cuda" else "cpu")
        if kind == "cuda":
            torch.cuda.set_device(self.device)
        if cfg.training.threads:
            torch.set_num_threads(cfg.training.threads)
        if cfg.training.precision == "fp16" and kind != "cuda":
            raise ConfigError("training.precision 'fp16' needs a GPU; use 'bf16' or 'fp32' on CPU")
        self.is_main = self.rank == 0
        self.out_dir = Path(cfg.logging.out_dir)
        self.progress = sys.stderr.isatty() if progress is None else progress

        # Same initial weights on every rank (DDP would broadcast them anyway).
        torch.manual_seed(cfg.seed)
        self.model = SwinIR(cfg.model).to(self.device)
        self.model.set_grad_checkpointing(cfg.training.grad_checkpointing)
        self.ema = EMA(self.model, cfg.training.ema_decay) if cfg.training.ema_decay > 0 else None
        self.optimizer = build_optimizer(cfg, list(self.model.parameters()))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: lr_factor(cfg, s))
        self.scaler = torch.amp.GradScaler("cuda", enabled=cfg.training.precision == "fp16")
        self.step = 0
        self.best_psnr = -math.inf
        self.best_step = -1
        # Dropout/drop-path draws differ per rank, as with independent samples.
        torch.manual_seed(cfg.seed * 1000 + self.rank + 1)

        resumed = self._resolve_resume(resume)
        if resumed is not None:
            self._load(*resumed)
        elif cfg.training.init_from:
            self._init_from(cfg.training.init_from)

        net: nn.Module = self.model
        if cfg.training.compile:
            net = torch.compile(net)  # type: ignore[assignment]
        if self.world > 1:
            net = nn.parallel.DistributedDataParallel(
                net, device_ids=[self.device.index] if kind == "cuda" else None
            )
        self.net = net

        d = cfg.data
        scale = cfg.model.upscale
        sources: list[list[list[ImageRecord]]] | None = None
        if d.train_weights or d.generator_weight > 0:
            # Each folder is a source of its own, sampled by weight (data.train_weights).
            lr_dirs = d.lr_dirs or [""] * len(d.train_dirs)
            pairs = zip(d.train_dirs, lr_dirs, strict=True)
            sources = [scan_shards([t], [lr] if lr else [], d.exclude, scale) for t, lr in pairs]
            shards = [shard for src in sources for shard in src]
        else:
            shards = scan_shards(d.train_dirs, d.lr_dirs, d.exclude, scale)
        self.num_images = sum(len(s) for s in shards)
        degradation = Degradation(
            scale,
            d.degradation,
            d.blur_prob,
            (d.blur_sigma[0], d.blur_sigma[1]),
            d.noise_prob,
            (d.noise_sigma[0], d.noise_sigma[1]),
            d.jpeg_prob,
            (d.jpeg_quality[0], d.jpeg_quality[1]),
            d.filters,
            d.filter_weights,
            d.noise_level,
        )
        spec = build_spec(
            shards, d.lanes, cfg.seed, d.buffer_images, d.patches_per_image, d.patch_size, scale,
            cfg.model.in_chans, degradation, d.flip, d.rot90,
            sources=sources, weights=d.train_weights, generator_weight=d.generator_weight,
            generator_size=d.generator_size,
        )  # fmt: skip
        self.loader = PatchLoader(
            spec, d.batch_size, self.rank, self.world, d.workers, self.step, pin_memory=kind == "cuda"
        )
        self.val_images: list[tuple[str, np.ndarray, np.ndarray]] = []
        v = cfg.validation
        if v.hr_dir and self.is_main:
            self.val_images = load_validation(
                v.hr_dir, scale, cfg.model.in_chans, v.lr_dir, v.include, v.max_images, v.jpeg_quality
            )
        self._stop_signal = 0
        self._writer: Any = None
        self._log_file: Any = None

    # --- resume ---

    def _resolve_resume(self, resume: str | None) -> tuple[Path, dict[str, Any]] | None:
        """The checkpoint to resume from: ``resume`` itself, or with "auto" the newest that loads.

        A checkpoint a crash or a full disk left empty or cut short is skipped with a note naming
        it and the reason, and the one before it is used.
        """
        if resume is None:
            return None
        if resume != "auto":
            return Path(resume), read_training_checkpoint(Path(resume))
        found = checkpoint_paths(self.out_dir)
        skipped: list[str] = []
        for path in reversed(found):
            try:
                ckpt = read_training_checkpoint(path)
            except ConfigError as exc:
                skipped.append(str(exc))
                if self.is_main:
                    print(f"swinir train: skipped {exc}", file=sys.stderr)
                continue
            if skipped and self.is_main:
                print(
                    f"swinir train: resuming from {path.name}, the newest checkpoint that loads "
                    f"({len(skipped)} newer one(s) skipped)",
                    file=sys.stderr,
                )
            return path, ckpt
        if found:
            raise ConfigError(
                f"none of the {len(found)} checkpoint(s) in {self.out_dir / 'checkpoints'} loads "
                f"(newest: {skipped[0]})"
            )
        return None

    def _load(self, path: Path, ckpt: dict[str, Any]) -> None:
        stored = SwinIRConfig.from_dict(dict(ckpt["swinir_config"]))
        if stored != self.cfg.model:
            mine, theirs = self.cfg.model.to_dict(), stored.to_dict()
            diffs = [f"model.{k} {theirs[k]} (config: {mine[k]})" for k in theirs if theirs[k] != mine[k]]
            run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
            run_config = run_dir / "config.toml"
            raise ConfigError(
                f"{path}: was trained with a different model: {'; '.join(diffs)}. To continue that run "
                f"with the settings it started with (--set included), use its own config: "
                f"swinir train --config {run_config} --resume"
            )
        self.model.load_state_dict(ckpt["model"])
        if self.ema is not None:
            self.ema.load_state_dict(ckpt.get("ema", ckpt["model"]))
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        self.step = int(ckpt["step"])
        self._apply_optim_config()
        self.best_psnr = float(ckpt.get("best_psnr", -math.inf))
        self.best_step = int(ckpt.get("best_step", -1))
        data = ckpt.get("data", {})
        now = self._data_state()
        # Keys a checkpoint predates are not reported as changes.
        changed = [k for k in now if k != "step" and k in data and data[k] != now[k]]
        if changed and self.is_main:
            print(
                f"swinir train: note: data settings changed since the checkpoint ({', '.join(changed)}); "
                "the patch sequence will differ from an uninterrupted run",
                file=sys.stderr,
            )
        states = ckpt["rng"]
        set_rng_state(states[self.rank] if self.rank < len(states) else states[0])
        if self.is_main:
            print(f"swinir train: resumed from {path} at step {self.step}", file=sys.stderr)

    def _init_from(self, name: str) -> None:
        """Start from existing weights (a file or a model name): the same architecture as [model],
        or a shallower one that [model] grows (more blocks per stage, more stages; see growth)."""
        from .checkpoint import CheckpointError, load_model
        from .growth import grow_into, growth_problem
        from .zoo import ZooError, resolve_model

        try:
            src = load_model(resolve_model(name, progress=self.is_main))
        except (CheckpointError, ZooError) as exc:
            raise ConfigError(f"training.init_from: {exc}") from None
        problem = growth_problem(src.config, self.model.config)
        if problem:
            raise ConfigError(
                f"training.init_from: {name} is a different architecture ({problem}): "
                f"{src.config}; [model] is {self.cfg.model}"
            )
        new = grow_into(self.model, src.config, src.state_dict())
        if self.ema is not None:
            self.ema.load_state_dict(self.model.state_dict())
        if self.is_main:
            grown = f", grown by {len(new)} part(s) that start as identities" if new else ""
            print(f"swinir train: starting from the weights of {name}{grown}", file=sys.stderr, flush=True)

    def _apply_optim_config(self) -> None:
        """Make the config win over the hyperparameters stored in a resumed optimiser/scheduler, so
        ``--resume --set optim.lr=...`` takes effect (a no-op when nothing changed)."""
        o = self.cfg.optim
        self.scheduler.base_lrs = [o.lr for _ in self.optimizer.param_groups]
        for group in self.optimizer.param_groups:
            group["initial_lr"] = o.lr
            group["lr"] = o.lr * lr_factor(self.cfg, self.step)
            group["betas"] = (float(o.betas[0]), float(o.betas[1]))
            group["eps"] = o.eps
            group["weight_decay"] = o.weight_decay
        self.scheduler._last_lr = [g["lr"] for g in self.optimizer.param_groups]  # what get_last_lr shows

    def _data_state(self) -> dict[str, Any]:
        d = self.cfg.data
        return {
            "step": self.step,
            "seed": self.cfg.seed,
            "lanes": d.lanes,
            "batch_size": d.batch_size,
            "patch_size": d.patch_size,
            "buffer_images": d.buffer_images,
            "patches_per_image": d.patches_per_image,
            "train_dirs": list(d.train_dirs),
            "exclude": list(d.exclude),
            "train_weights": list(d.train_weights),
            "generator_weight": d.generator_weight,
            "filters": list(d.filters),
            "noise_level": d.noise_level,
        }

    # --- saving ---

    def _checkpoint(self, gather: bool = True) -> dict[str, Any]:
        """Everything needed to resume. With ``gather`` (collective) it holds every rank's RNG state."""
        mine = (rng_state(), weights_digest(self.model))
        per_rank = [mine]
        if gather and self.world > 1:
            gathered: list[Any] = [None] * self.world
            dist.all_gather_object(gathered, mine)
            per_rank = gathered
        rng = [r for r, _ in per_rank]
        digests = [d for _, d in per_rank]
        if len(set(digests)) > 1 and self.is_main:
            print("swinir train: warning: the processes hold different weights", file=sys.stderr)
        state: dict[str, Any] = {
            "format": CHECKPOINT_FORMAT,
            "step": self.step,
            "swinir_config": self.cfg.model.to_dict(),
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng,
            "weights_sha256": digests,  # one per process: DDP keeps them equal
            "data": self._data_state(),
            "train_config": self.cfg.to_dict(),
            "best_psnr": self.best_psnr if math.isfinite(self.best_psnr) else -1.0,
            "best_step": self.best_step,
        }
        if self.ema is not None:
            state["ema"] = {k: v.detach().cpu() for k, v in self.ema.state_dict().items()}
        return state

    def save(self) -> Path | None:
        """Write ``checkpoints/step_N.pt`` atomically (rank 0) and prune old ones. Collective."""
        state = self._checkpoint()
        if not self.is_main:
            return None
        path = self.out_dir / "checkpoints" / f"step_{self.step:08d}.pt"
        save_torch(state, path)
        for old in checkpoint_paths(self.out_dir)[: -self.cfg.logging.keep_last]:
            old.unlink(missing_ok=True)
        return path

    # --- logging ---

    def _open_logs(self) -> None:
        if not self.is_main:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        removed = remove_stale_temps(self.out_dir) + remove_stale_temps(self.out_dir / "checkpoints")
        if removed:
            print(
                f"swinir train: removed {len(removed)} temporary file(s) an interrupted run left in "
                f"{self.out_dir}",
                file=sys.stderr,
            )
        with atomic_path(self.out_dir / "config.toml") as tmp:
            tmp.write_text(to_toml(self.cfg))
        self._log_file = open(self.out_dir / "log.jsonl", "a")  # noqa: SIM115 - closed in run()
        if self.cfg.logging.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                print(
                    "swinir train: note: tensorboard is not installed, logging to log.jsonl only "
                    "(pip install 'swinir[train]' for TensorBoard)",
                    file=sys.stderr,
                )
            else:
                self._writer = SummaryWriter(str(self.out_dir / "tb"))

    def _log(self, record: dict[str, Any]) -> None:
        if self._log_file is not None:
            try:
                self._log_file.write(json.dumps(record) + "\n")
                self._log_file.flush()
            except OSError as exc:
                raise WriteError(
                    self.out_dir / "log.jsonl", exc.errno or 5, exc.strerror or str(exc)
                ) from None
        if self._writer is not None:
            for key, value in record.items():
                if key not in ("step", "time") and isinstance(value, (int, float)):
                    self._writer.add_scalar(key, value, record["step"])

    # --- signals ---

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if self._stop_signal:  # a second signal: stop now, without saving
            raise KeyboardInterrupt
        self._stop_signal = signum

    def _should_stop(self) -> bool:
        flag = self._stop_signal
        if self.world > 1:
            t = torch.tensor([flag], device=self.device if self.device.type == "cuda" else "cpu")
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
            flag = int(t.item())
        if flag:
            self._stop_signal = flag
        return bool(flag)

    # --- the loop ---

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        p = self.cfg.training.precision
        if p == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if p == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def train_step(self, lr: Tensor, hr: Tensor) -> float:
        """One optimiser step on a local batch; returns the local loss."""
        o = self.cfg.optim
        lr = lr.to(self.device, non_blocking=True)
        hr = hr.to(self.device, non_blocking=True)
        with self._autocast():
            sr = self.net(lr)
        loss = pixel_loss(o.loss, sr, hr, o.charbonnier_eps)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if o.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), o.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.step += 1
        if self.ema is not None:
            self.ema.update(self.model, self.step)
        return float(loss.detach())

    def validate(self) -> dict[str, Any] | None:
        if not self.is_main or not self.val_images:
            return None
        net = self.ema.module if self.ema is not None else self.model
        p, s, outputs = evaluate(net, self.val_images, self.cfg.model.upscale, self.device)
        is_best = p > self.best_psnr
        if is_best:
            self.best_psnr, self.best_step = p, self.step
        if self._writer is not None:
            for name, img in outputs[: self.cfg.validation.samples]:
                self._writer.add_image(f"val/{name}", img, self.step)
        return {"step": self.step, "val_psnr": p, "val_ssim": s, "best_psnr": self.best_psnr}

    def run(self) -> int:
        """Train; returns 0 when done, 128 + signal number when stopped by SIGINT/SIGTERM."""
        cfg, lg = self.cfg, self.cfg.logging
        total = cfg.schedule.total_steps
        lock = RunLock(self.out_dir) if self.is_main else None
        if lock is not None:
            lock.acquire()
        try:
            return self._run(cfg, lg, total)
        finally:
            if lock is not None:
                lock.release()

    def _run(self, cfg: TrainConfig, lg: LoggingConfig, total: int) -> int:
        self._open_logs()
        old_handlers = {
            sig: signal.signal(sig, self._on_signal)
            for sig in (signal.SIGINT, signal.SIGTERM)
            if _in_main_thread()
        }
        if self.is_main:
            n = sum(p.numel() for p in self.model.parameters())
            # weights + EMA + Adam's two moments, float32
            ckpt_mb = n * 4 * (2 + (1 if self.ema is not None else 0) + 1) / 1e6
            print(
                f"swinir train: {n / 1e6:.3f}M parameters, {self.num_images} images, "
                f"{self.world} process(es) on {self.device.type}, steps {self.step}->{total}; "
                f"checkpoints about {ckpt_mb:.0f} MB each, the last {lg.keep_last} kept in "
                f"{self.out_dir / 'checkpoints'}",
                file=sys.stderr,
                flush=True,
            )
        bar = None
        if self.progress and self.is_main:
            from tqdm import tqdm

            bar = tqdm(total=total, initial=self.step, unit="step", dynamic_ncols=True)
        batches: Iterator[tuple[Tensor, Tensor]] = iter(self.loader)
        last_saved: Path | None = None
        losses: list[float] = []
        t_last, step_last = time.perf_counter(), self.step
        t_start, step_start = t_last, self.step
        try:
            while self.step < total:
                if self._should_stop():
                    break
                lr, hr = next(batches)
                losses.append(self.train_step(lr, hr))
                if self.on_step is not None:
                    self.on_step(self)
                if bar is not None:
                    bar.update(1)
                if self.step % lg.log_every == 0 or self.step == total:
                    now = time.perf_counter()
                    rate = (self.step - step_last) * cfg.data.batch_size / max(now - t_last, 1e-9)
                    rec = {
                        "step": self.step,
                        "loss": sum(losses) / len(losses),
                        "lr": self.optimizer.param_groups[0]["lr"],
                        "patches_per_s": rate,
                        "time": time.time(),
                    }
                    losses, t_last, step_last = [], now, self.step
                    self._log(rec)
                    if bar is not None:
                        bar.set_postfix(loss=f"{rec['loss']:.4f}", lr=f"{rec['lr']:.2e}", pps=f"{rate:.1f}")
                    elif self.is_main:
                        elapsed = now - t_start
                        done = self.step - step_start
                        eta = elapsed / done * (total - self.step) if done else 0.0
                        print(
                            f"step {self.step}/{total} loss {rec['loss']:.5f} lr {rec['lr']:.3e} "
                            f"{rate:.1f} patches/s, elapsed {_clock(elapsed)}, ETA {_clock(eta)}",
                            file=sys.stderr,
                            flush=True,
                        )
                if self.step % cfg.validation.every == 0 or self.step == total:
                    val = self.validate()
                    if val is not None:
                        self._log(val)
                        msg = (
                            f"step {self.step}: val PSNR {val['val_psnr']:.3f} dB, SSIM {val['val_ssim']:.4f}"
                        )
                        if self.best_step == self.step:
                            self._save_best()
                            msg += f" (best so far, saved {self.out_dir / 'best.pt'})"
                        else:
                            msg += f" (best {self.best_psnr:.3f} dB at step {self.best_step})"
                        print(msg, file=sys.stderr, flush=True)
                if self.step % lg.save_every == 0 or self.step == total:
                    last_saved = self.save()
            if self._stop_signal:
                path = self.save()
                if path is not None:
                    print(f"swinir train: stopped at step {self.step}, saved {path}", file=sys.stderr)
                return 128 + self._stop_signal
            if self.is_main:
                print(self._summary(time.perf_counter() - t_start, last_saved), file=sys.stderr, flush=True)
            return 0
        finally:
            if bar is not None:
                bar.close()
            for sig, handler in old_handlers.items():
                signal.signal(sig, handler)
            if self._log_file is not None:
                with contextlib.suppress(OSError):  # a full disk was reported already
                    self._log_file.close()
            if self._writer is not None:
                self._writer.close()

    def _summary(self, seconds: float, last: Path | None) -> str:
        """What a finished run produced and how to use it."""
        last = last or (checkpoint_paths(self.out_dir) or [None])[-1]
        lines = [f"swinir train: finished step {self.step} in {_clock(seconds)}"]
        if last is not None:
            lines.append(f"  checkpoint: {last}")
        best = self.out_dir / "best.pt"
        if self.best_step >= 0 and best.is_file():
            lines.append(f"  best:       {best} (val PSNR {self.best_psnr:.3f} dB at step {self.best_step})")
            source = best
        else:
            source = last
        if source is not None:
            lines.append(f"  to deploy:  swinir export-weights {source} model.safetensors")
        return "\n".join(lines)

    def _save_best(self) -> None:
        # Rank 0 alone validates, so no collective RNG gather here; best.pt is for export, not resume.
        save_torch(self._checkpoint(gather=False), self.out_dir / "best.pt")


def _clock(seconds: float) -> str:
    """``1:02:03`` (hours:minutes:seconds), or ``2:03`` under an hour."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class RunLock:
    """An exclusive lock on a run's ``out_dir`` (``out_dir/.lock``), held while a trainer runs, so
    that a second trainer on the same folder stops at once instead of interleaving checkpoints.

    The kernel releases it when the process ends, however it ends; the file records who holds it.
    """

    def __init__(self, out_dir: Path) -> None:
        self.path = Path(out_dir) / ".lock"
        self._file: Any = None

    def acquire(self) -> None:
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            raise ConfigError(
                f"{self.path.parent}: another training run is using this folder ({holder}); "
                "wait for it to finish, stop it, or pass another --out-dir"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        f.flush()
        self._file = f

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the lock
            self._file = None


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


# ----------------------------------------------------------------------------------------------
# Entry points
# ----------------------------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", help="TOML config file (see configs/)")
    p.add_argument(
        "--set",
        "-s",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a config value (TOML syntax; repeatable), e.g. --set optim.lr=1e-4",
    )
    p.add_argument(
        "--resume",
        nargs="?",
        const="auto",
        default=None,
        metavar="CHECKPOINT",
        help="continue a run: from CHECKPOINT, or (no value) from the latest one in logging.out_dir",
    )
    p.add_argument("--out-dir", help="shortcut for --set logging.out_dir=DIR")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")


def run_from_args(args: argparse.Namespace, prog: str = "swinir train") -> int:
    overrides = list(args.overrides)
    if args.out_dir:
        overrides.append(f'logging.out_dir="{args.out_dir}"')
    try:
        cfg = load_config(args.config, overrides)
        if args.print_config:
            print(to_toml(cfg))
            return 0
        trainer = Trainer(cfg, resume=args.resume)
        code = trainer.run()
    except (ConfigError, DataError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except WriteError as exc:
        hint = " (free some space, then continue with --resume)" if exc.disk_full else ""
        print(f"{prog}: {exc}{hint}", file=sys.stderr)
        return 1
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"{prog}: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return code


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m swinir.train", description="Train a SwinIR super-resolution model."
    )
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv), prog="swinir.train")


if __name__ == "__main__":
    sys.exit(main())
