"""Training configuration: typed dataclasses read from TOML, with ``section.key=value`` overrides.

A config file has one table per section; every key is checked, so a typo is an error, not a
silently ignored setting::

    seed = 0
    [model]                  # a preset, and/or any SwinIRConfig field
    preset = "lightweight_x2"
    drop_path_rate = 0.0
    [data]
    train_dirs = ["data/train"]
    [optim]
    lr = 2e-4
    ...

Relative paths are taken relative to the current directory, as on the command line.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from .model import SwinIRConfig, preset

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

LOSSES = ("l1", "charbonnier", "l2")
OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("constant", "multistep", "cosine")
PRECISIONS = ("fp32", "bf16", "fp16")
DEGRADATIONS = ("bicubic", "bilinear", "box", "triangle", "lanczos", "none")
FILTERS = ("bicubic", "bilinear", "box", "triangle", "lanczos")
DEVICES = ("auto", "cpu", "cuda")


class ConfigError(ValueError):
    """A bad training configuration; the message names the key and the reason.

    ``key`` is the ``section.key`` at fault when one is (so that a ``--set`` can be blamed).
    """

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


@dataclass
class DataConfig:
    """Where training patches come from and how they are made.

    ``train_dirs`` are HR folders (searched recursively; every folder holding images is a shard).
    With ``lr_dirs`` (one per train dir) the data is paired: the LR image of ``a/b.png`` is
    ``a/b.png`` or ``a/bx{scale}.png`` under the LR folder; otherwise LR is made on the fly by
    ``degradation`` (MATLAB bicubic by default; ``bilinear`` as the seed project did), then
    optional blur, noise and JPEG.

    Patches are drawn from ``lanes`` independent streams (fixed for a run so that the data does not
    depend on how many processes read it); each stream holds at most ``buffer_images / lanes``
    decoded images and takes a new image every ``patches_per_image`` patches.

    Mixing: with ``train_weights`` (one per train dir) each folder is sampled by its weight instead
    of by its image count; ``generator_weight`` adds procedural art (:mod:`swinir.artgen`,
    ``generator_size`` pixels square) as one more source. ``filters`` draws the downscale filter per
    patch (weights ``filter_weights``) instead of always using ``degradation``; ``noise_level`` 1-3
    adds JPEG to the LR at the art models' noise levels (:data:`swinir.degradations.JPEG_LEVELS`).
    """

    train_dirs: list[str] = field(default_factory=list)
    lr_dirs: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)  # glob patterns on relative path or file name
    patch_size: int = 64  # LR patch side; HR side is patch_size * scale
    batch_size: int = 8  # global batch, split evenly over processes
    degradation: str = "bicubic"
    blur_prob: float = 0.0
    blur_sigma: list[float] = field(default_factory=lambda: [0.2, 2.0])  # HR pixels
    noise_prob: float = 0.0
    noise_sigma: list[float] = field(default_factory=lambda: [1.0, 10.0])  # of 255
    jpeg_prob: float = 0.0
    jpeg_quality: list[int] = field(default_factory=lambda: [50, 95])
    train_weights: list[float] = field(default_factory=list)
    generator_weight: float = 0.0
    generator_size: int = 256
    filters: list[str] = field(default_factory=list)
    filter_weights: list[float] = field(default_factory=list)
    noise_level: int = 0
    flip: bool = True
    rot90: bool = True
    lanes: int = 4
    buffer_images: int = 64
    patches_per_image: int = 16
    workers: int = 2


@dataclass
class ValidationConfig:
    """PSNR/SSIM (Y channel) on held-out images, with the EMA weights; empty ``hr_dir`` disables it.

    ``include`` selects files (glob on name or relative path); ``lr_dir`` gives paired LR images,
    otherwise LR is the MATLAB bicubic downscale of the HR image.
    """

    hr_dir: str = ""
    lr_dir: str = ""
    include: list[str] = field(default_factory=list)
    jpeg_quality: int = 0  # > 0: the LR is saved once as a 4:2:0 JPEG at this quality (noise models)
    every: int = 1000
    max_images: int = 0  # 0 = all
    samples: int = 2  # images written to TensorBoard


@dataclass
class OptimConfig:
    name: str = "adam"
    lr: float = 2e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.99])
    eps: float = 1e-8
    weight_decay: float = 0.0
    grad_clip: float = 0.0  # max global grad norm; 0 = off
    loss: str = "l1"
    charbonnier_eps: float = 1e-3


@dataclass
class ScheduleConfig:
    """Learning-rate schedule over ``total_steps`` optimiser steps, after a linear warmup."""

    kind: str = "multistep"
    total_steps: int = 500_000
    warmup_steps: int = 0
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.5
    min_lr: float = 0.0  # cosine floor


@dataclass
class TrainingConfig:
    """Numerics and speed options."""

    precision: str = "fp32"
    grad_checkpointing: bool = False
    compile: bool = False
    ema_decay: float = 0.999  # 0 disables the EMA
    device: str = "auto"
    threads: int = 0  # torch intra-op threads; 0 = torch's default
    # Weights to start from (a file, or a model name such as "default"); same architecture as
    # [model]. Used when a run starts, not on --resume (the checkpoint has the weights then).
    init_from: str = ""


@dataclass
class LoggingConfig:
    """Where outputs go and how often."""

    out_dir: str = "runs/train"
    log_every: int = 50
    save_every: int = 500
    keep_last: int = 3
    tensorboard: bool = True


@dataclass
class TrainConfig:
    seed: int = 0
    model: SwinIRConfig = field(default_factory=SwinIRConfig)
    data: DataConfig = field(default_factory=DataConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)

    def validate(self) -> None:
        """Raise :class:`ConfigError` for values that cannot work."""
        d, o, s, t, lg = self.data, self.optim, self.schedule, self.training, self.logging
        checks: list[tuple[bool, str]] = [
            (d.patch_size >= 1, "data.patch_size must be positive"),
            (d.batch_size >= 1, "data.batch_size must be positive"),
            (d.degradation in DEGRADATIONS, f"data.degradation must be one of {DEGRADATIONS}"),
            (d.lanes >= 1, "data.lanes must be positive"),
            (d.buffer_images >= 1, "data.buffer_images must be positive"),
            (d.patches_per_image >= 1, "data.patches_per_image must be positive"),
            (d.workers >= 0, "data.workers must be >= 0"),
            (not d.lr_dirs or len(d.lr_dirs) == len(d.train_dirs), "data.lr_dirs needs one per train dir"),
            (
                not d.train_weights or len(d.train_weights) == len(d.train_dirs),
                "data.train_weights needs one weight per train dir",
            ),
            (all(w >= 0 for w in d.train_weights), "data.train_weights must be >= 0"),
            (d.generator_weight >= 0, "data.generator_weight must be >= 0"),
            (d.generator_size >= 16, "data.generator_size must be at least 16"),
            (all(f in FILTERS for f in d.filters), f"data.filters: each must be one of {FILTERS}"),
            (
                not d.filter_weights or len(d.filter_weights) == len(d.filters),
                "data.filter_weights needs one weight per filter",
            ),
            (0 <= d.noise_level <= 3, "data.noise_level must be 0, 1, 2 or 3"),
            (0 <= self.validation.jpeg_quality <= 100, "validation.jpeg_quality must be 0-100"),
            (len(d.blur_sigma) == 2 and 0 < d.blur_sigma[0] <= d.blur_sigma[1], "data.blur_sigma: [lo, hi]"),
            (len(d.noise_sigma) == 2 and 0 <= d.noise_sigma[0] <= d.noise_sigma[1], "data.noise_sigma"),
            (
                len(d.jpeg_quality) == 2 and 1 <= d.jpeg_quality[0] <= d.jpeg_quality[1] <= 100,
                "data.jpeg_quality: [lo, hi] in 1..100",
            ),
            (o.name in OPTIMIZERS, f"optim.name must be one of {OPTIMIZERS}"),
            (o.loss in LOSSES, f"optim.loss must be one of {LOSSES}"),
            (o.lr > 0 and math.isfinite(o.lr), "optim.lr must be positive"),
            (len(o.betas) == 2, "optim.betas must have two values"),
            (s.kind in SCHEDULES, f"schedule.kind must be one of {SCHEDULES}"),
            (s.total_steps >= 1, "schedule.total_steps must be positive"),
            (s.warmup_steps >= 0, "schedule.warmup_steps must be >= 0"),
            (list(s.milestones) == sorted(s.milestones), "schedule.milestones must be increasing"),
            (t.precision in PRECISIONS, f"training.precision must be one of {PRECISIONS}"),
            (0 <= t.ema_decay < 1, "training.ema_decay must be in [0, 1)"),
            (t.device in DEVICES, f"training.device must be one of {DEVICES}"),
            (lg.save_every >= 1 and lg.log_every >= 1, "logging.save_every/log_every must be positive"),
            (lg.keep_last >= 1, "logging.keep_last must be >= 1"),
            (self.validation.every >= 1, "validation.every must be positive"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        _check_ranges(self)
        if self.model.upsampler == "":
            raise ConfigError("the trainer handles super-resolution models (model.upsampler must be set)")

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (TOML/JSON-able, loads with ``torch.load(weights_only=True)``)."""
        out: dict[str, Any] = {"seed": self.seed, "model": self.model.to_dict()}
        for f in fields(self):
            if f.name not in ("seed", "model"):
                out[f.name] = dataclasses.asdict(getattr(self, f.name))
        return out


def _check_ranges(cfg: TrainConfig) -> None:
    """Numeric ranges beyond :meth:`TrainConfig.validate`'s list; each failure names its field."""
    d, o, s, t, v = cfg.data, cfg.optim, cfg.schedule, cfg.training, cfg.validation
    checks: list[tuple[bool, str]] = [
        (t.threads >= 0, f"training.threads must be >= 0 (0 = torch's default), got {t.threads}"),
        (all(0 <= b < 1 for b in o.betas), f"optim.betas must both be in [0, 1), got {o.betas}"),
        (o.eps > 0, "optim.eps must be positive"),
        (o.weight_decay >= 0, "optim.weight_decay must be >= 0"),
        (o.grad_clip >= 0, "optim.grad_clip must be >= 0 (0 = off)"),
        (o.charbonnier_eps > 0, "optim.charbonnier_eps must be positive"),
        (s.gamma > 0, "schedule.gamma must be positive"),
        (s.min_lr >= 0, "schedule.min_lr must be >= 0"),
        (all(m >= 0 for m in s.milestones), "schedule.milestones must be >= 0"),
        (0 <= d.blur_prob <= 1, "data.blur_prob must be in [0, 1]"),
        (0 <= d.noise_prob <= 1, "data.noise_prob must be in [0, 1]"),
        (0 <= d.jpeg_prob <= 1, "data.jpeg_prob must be in [0, 1]"),
        (v.max_images >= 0, "validation.max_images must be >= 0 (0 = all)"),
        (v.samples >= 0, "validation.samples must be >= 0"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


_SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "validation": ValidationConfig,
    "optim": OptimConfig,
    "schedule": ScheduleConfig,
    "training": TrainingConfig,
    "logging": LoggingConfig,
}


def _coerce(value: Any, typ: Any, where: str) -> Any:
    """Check ``value`` against a simple annotation (int/float/str/bool/list[...]); ints pass as floats."""
    origin = get_origin(typ)
    key = where.split("[", 1)[0]
    if origin is tuple:  # tuple[int, ...] in SwinIRConfig, written as a TOML list
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}", key)
        inner = get_args(typ)[0]
        return [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}", key)
        (inner,) = get_args(typ)
        return [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
    if typ is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}", key)
        return value
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}", key)
        return value
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}", key)
        if not math.isfinite(value):
            raise ConfigError(f"{where}: expected a finite number, got {value!r}", key)
        return float(value)
    if typ is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}", key)
        return value
    raise ConfigError(f"{where}: unsupported type {typ}")  # pragma: no cover


def _did_you_mean(word: str, choices: set[str]) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.7)
    return f" (did you mean {close[0]}?)" if close else ""


def _build_section(cls: type, table: Any, name: str) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"[{name}] must be a table")
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(table) - known)
    if unknown:
        hints = [_did_you_mean(k, known) for k in unknown]
        listed = ", ".join(k + h for k, h in zip(unknown, hints, strict=True))
        raise ConfigError(f"unknown key(s) in [{name}]: {listed}", f"{name}.{unknown[0]}")
    values = {k: _coerce(v, hints[k], f"{name}.{k}") for k, v in table.items()}
    return cls(**values)


def _build_model(table: Any) -> SwinIRConfig:
    if not isinstance(table, dict):
        raise ConfigError("[model] must be a table")
    table = dict(table)
    name = table.pop("preset", None)
    hints = get_type_hints(SwinIRConfig)
    unknown = sorted(set(table) - set(hints))
    if unknown:
        raise ConfigError(f"[model]: unknown SwinIR config keys: {', '.join(unknown)}")
    table = {k: _coerce(v, hints[k], f"model.{k}") for k, v in table.items()}
    try:
        base = preset(name).to_dict() if name is not None else SwinIRConfig().to_dict()
    except (KeyError, ValueError, TypeError) as exc:
        raise ConfigError(f"model.preset: {exc}") from None
    base.update(table)
    _check_model_ranges(base)
    try:
        return SwinIRConfig.from_dict(base)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"[model]: {exc}") from None


def _check_model_ranges(m: dict[str, Any]) -> None:
    """Sizes and rates a network can be built with; each failure names its field."""
    checks: list[tuple[bool, str]] = [
        (m["embed_dim"] >= 1, "model.embed_dim must be positive"),
        (all(d >= 1 for d in m["depths"]), "model.depths must be positive block counts"),
        (all(h >= 1 for h in m["num_heads"]), "model.num_heads must be positive"),
        (m["window_size"] >= 1, "model.window_size must be positive"),
        (m["img_size"] >= 1, "model.img_size must be positive"),
        (m["num_feat"] >= 1, "model.num_feat must be positive"),
        (m["mlp_ratio"] > 0, "model.mlp_ratio must be positive"),
        (m["img_range"] > 0, "model.img_range must be positive"),
        (0 <= m["drop_rate"] < 1, "model.drop_rate must be in [0, 1)"),
        (0 <= m["attn_drop_rate"] < 1, "model.attn_drop_rate must be in [0, 1)"),
        (0 <= m["drop_path_rate"] < 1, "model.drop_path_rate must be in [0, 1)"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


def config_from_dict(raw: dict[str, Any]) -> TrainConfig:
    """Build and validate a :class:`TrainConfig` from a nested dict (as read from TOML)."""
    allowed = {"seed", "model", *_SECTIONS}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(f"unknown top-level key(s): {', '.join(unknown)}")
    kwargs: dict[str, Any] = {}
    if "seed" in raw:
        kwargs["seed"] = _coerce(raw["seed"], int, "seed")
    if "model" in raw:
        kwargs["model"] = _build_model(raw["model"])
    for name, cls in _SECTIONS.items():
        if name in raw:
            kwargs[name] = _build_section(cls, raw[name], name)
    cfg = TrainConfig(**kwargs)
    cfg.validate()
    return cfg


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"optim.lr=1e-4"`` -> (["optim", "lr"], 1e-4). The value is TOML; bare words are strings."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not KEY=VALUE")
    key, value = text.split("=", 1)
    path = [p.strip() for p in key.strip().split(".")]
    if not all(path):
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        parsed = tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value.strip()
    return path, parsed


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``raw`` with ``section.key=value`` overrides applied."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    for text in overrides:
        path, value = parse_override(text)
        if len(path) == 1:
            out[path[0]] = value
        elif len(path) == 2:
            section = out.setdefault(path[0], {})
            if not isinstance(section, dict):
                raise ConfigError(f"override {text!r}: {path[0]} is not a section")
            if path[0] == "model" and path[1] == "preset":
                # A new preset replaces the architecture; keep only explicit overrides that follow.
                section.clear()
            section[path[1]] = value
        else:
            raise ConfigError(f"override {text!r}: keys are at most section.key")
    return out


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> TrainConfig:
    """Read a TOML config (or start from defaults when ``path`` is None) and apply overrides."""
    raw: dict[str, Any] = {}
    if path is not None:
        from .paths import file_problem

        path = Path(path)
        problem = file_problem(path, "config file")
        if problem is not None:
            raise ConfigError(f"{path}: {'no such config file' if problem == 'no such file' else problem}")
        try:
            with open(path, "rb") as f:
                raw = tomllib.load(f)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read it ({exc.strerror or exc})") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not a UTF-8 text file (byte {exc.start} cannot be decoded)") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML ({exc})") from None
    raw = apply_overrides(raw, overrides or [])
    try:
        return config_from_dict(raw)
    except ConfigError as exc:
        blamed = _override_for(exc.key, overrides or [])
        if blamed is not None:
            # The field first, as every config error; then the --set it came from, with the syntax.
            raise ConfigError(f"{exc} (in --set {blamed}{_toml_hint(exc, blamed)})", exc.key) from None
        where = f"{path}: " if path is not None else ""
        raise ConfigError(f"{where}{exc}", exc.key) from None


def _override_for(key: str | None, overrides: list[str]) -> str | None:
    """The last ``--set`` that gave ``key`` (``section.key``), if any."""
    if key is None:
        return None
    found = None
    for text in overrides:
        name = text.split("=", 1)[0].strip()
        if ".".join(p.strip() for p in name.split(".")) == key:
            found = text
    return found


def _toml_hint(exc: ConfigError, override: str) -> str:
    """How to write the value in TOML, for the type the key expected."""
    key, value = override.split("=", 1)
    value = value.strip()
    text = str(exc)
    if "expected a list" in text:
        items = [v.strip() for v in value.strip("[]").split(",") if v.strip()]
        quoted = ", ".join(v if v[:1] in "\"'" else _toml_value(v) for v in items)
        example = f"{key.strip()}=[{quoted}]"
        return f"; values are TOML: a list goes in brackets, strings in quotes: --set '{example}'"
    if "expected a string" in text:
        return f"; values are TOML: quote strings, e.g. --set '{key.strip()}=\"{value.strip(chr(34))}\"'"
    if "expected" in text:
        return "; values are TOML: numbers bare, true/false in lower case, strings in quotes"
    return ""


def to_toml(cfg: TrainConfig) -> str:
    """Serialise a config as TOML (written next to checkpoints so a run documents itself)."""
    d = cfg.to_dict()
    lines = [f"seed = {d.pop('seed')}", ""]
    for section, table in d.items():
        lines.append(f"[{section}]")
        for key, value in table.items():
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")
