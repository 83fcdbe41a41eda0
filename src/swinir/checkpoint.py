"""Loading and saving SwinIR weights.

Any official SwinIR checkpoint loads with no flags: wrappers (``params_ema``, ``params``, ...) and
prefixes (``module.``, ...) are removed by :func:`canonicalize_state_dict`, size-derived buffers are
dropped, and every hyperparameter is read off tensor shapes by :func:`infer_config`. Files are read
with ``torch.load(weights_only=True)`` or ``safetensors``; no pickled code is ever executed.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .atomic import atomic_path
from .model import SwinIR, SwinIRConfig
from .paths import file_problem, printable

# Wrapper keys seen in the wild, most preferred first (EMA weights are the ones to evaluate).
WRAPPER_KEYS: tuple[str, ...] = ("params_ema", "ema", "params", "state_dict", "model", "net", "network")
# Prefixes added by DataParallel/DDP, torch.compile, or wrapper modules.
PREFIXES: tuple[str, ...] = ("module.", "_orig_mod.", "model.", "net.")
# Buffers the official code stores; they depend only on sizes and are recomputed here.
DERIVED_BUFFERS: tuple[str, ...] = ("attn_mask", "relative_position_index")

METADATA_FORMAT = "swinir"


class CheckpointError(ValueError):
    """A file that cannot be used as SwinIR weights; the message names the file and the reason."""


def canonicalize_state_dict(obj: Mapping[str, Any]) -> dict[str, Tensor]:
    """Return a plain SwinIR state dict from whatever a checkpoint file holds.

    Unwraps nested wrapper dicts (``params_ema`` preferred), strips ``module.``-style prefixes,
    and drops size-derived buffers (``attn_mask``, ``relative_position_index``).
    """
    current: Mapping[str, Any] = obj
    for _ in range(4):  # wrappers can nest, e.g. {"state_dict": {"params": ...}}
        if any(isinstance(v, Tensor) for v in current.values()) and "conv_first.weight" in _strip(current):
            break
        for key in WRAPPER_KEYS:
            inner = current.get(key)
            if isinstance(inner, Mapping) and inner:
                current = inner
                break
        else:
            break
    state = _strip(current)
    return {
        k: v
        for k, v in state.items()
        if isinstance(v, Tensor) and k.rsplit(".", 1)[-1] not in DERIVED_BUFFERS
    }


def _strip(state: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in state.items():
        changed = True
        while changed:
            changed = False
            for prefix in PREFIXES:
                if key.startswith(prefix):
                    key = key[len(prefix) :]
                    changed = True
        out[key] = value
    return out


def infer_config(state: Mapping[str, Tensor], img_range: float | None = None) -> SwinIRConfig:
    """Read every architecture hyperparameter off the tensor shapes of a canonical state dict.

    ``img_range`` is not recorded in weights; when None it defaults as the official test script
    does: 255 for JPEG artifact removal models (no upsampler, window 7), 1 otherwise.
    """
    if "conv_first.weight" not in state:
        sample = ", ".join(list(state)[:3]) or "no tensors"
        raise CheckpointError(f"not a SwinIR state dict (no conv_first.weight; found {sample})")
    embed_dim, in_chans = state["conv_first.weight"].shape[:2]

    depths: list[int] = []
    num_heads: list[int] = []
    layer_re = re.compile(r"layers\.(\d+)\.residual_group\.blocks\.(\d+)\.")
    blocks: dict[int, int] = {}
    for key in state:
        m = layer_re.match(key)
        if m:
            i, j = int(m.group(1)), int(m.group(2))
            blocks[i] = max(blocks.get(i, 0), j + 1)
    if not blocks or sorted(blocks) != list(range(len(blocks))):
        raise CheckpointError("not a SwinIR state dict (no consecutive layers.N.residual_group blocks)")
    for i in range(len(blocks)):
        depths.append(blocks[i])
        table = state[f"layers.{i}.residual_group.blocks.0.attn.relative_position_bias_table"]
        num_heads.append(int(table.shape[1]))
    table_len = state["layers.0.residual_group.blocks.0.attn.relative_position_bias_table"].shape[0]
    window_size = (math.isqrt(table_len) + 1) // 2
    if (2 * window_size - 1) ** 2 != table_len:
        raise CheckpointError(f"relative position table of {table_len} rows is not (2*ws-1)^2")
    hidden = state["layers.0.residual_group.blocks.0.mlp.fc1.weight"].shape[0]
    mlp_ratio = hidden / embed_dim
    qkv_bias = "layers.0.residual_group.blocks.0.attn.qkv.bias" in state
    patch_norm = "patch_embed.norm.weight" in state
    ape = "absolute_pos_embed" in state
    img_size = 64
    if ape:
        img_size = math.isqrt(state["absolute_pos_embed"].shape[1])
    resi = "3conv" if "conv_after_body.4.weight" in state else "1conv"

    num_feat = 64
    if "conv_up1.weight" in state:
        upsampler = "nearest+conv"
        upscale = 4 if "conv_up2.weight" in state else 2
        num_feat = state["conv_before_upsample.0.weight"].shape[0]
    elif "conv_before_upsample.0.weight" in state:
        upsampler = "pixelshuffle"
        num_feat = state["conv_before_upsample.0.weight"].shape[0]
        convs = [k for k in state if re.fullmatch(r"upsample\.\d+\.weight", k)]
        upscale = 3 if state["upsample.0.weight"].shape[0] == 9 * num_feat else 2 ** len(convs)
    elif "upsample.0.weight" in state:
        upsampler = "pixelshuffledirect"
        upscale = math.isqrt(state["upsample.0.weight"].shape[0] // in_chans)
    else:
        upsampler = ""
        upscale = 1
    if img_range is None:
        img_range = 255.0 if upsampler == "" and window_size == 7 else 1.0
    return SwinIRConfig(
        upscale=upscale,
        in_chans=int(in_chans),
        img_size=img_size,
        window_size=window_size,
        img_range=float(img_range),
        depths=tuple(depths),
        embed_dim=int(embed_dim),
        num_heads=tuple(num_heads),
        mlp_ratio=mlp_ratio,
        qkv_bias=qkv_bias,
        drop_rate=0.0,
        attn_drop_rate=0.0,
        drop_path_rate=0.0,
        ape=ape,
        patch_norm=patch_norm,
        upsampler=upsampler,
        resi_connection=resi,
        num_feat=int(num_feat),
    )


# Leading bytes of files people pass by mistake, and what to call them.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"BM", "a BMP image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"\x1f\x8b", "a gzip archive"),
)


def _not_a_checkpoint(path: Path, exc: BaseException | None = None) -> str:
    """Why ``path`` did not load, naming what the file is when that is recognisable."""
    what = _recognise(path)
    if what is not None:
        return what
    detail = f" ({_short(exc)})" if exc is not None else ""
    return f"not a readable checkpoint, truncated or corrupt{detail}"


def _recognise(path: Path) -> str | None:
    """``is a PNG image, not a checkpoint`` and the like for files that are clearly not weights."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        head = b""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "is a WebP image, not a checkpoint"
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return f"is {what}, not a checkpoint"
    if head and b"\x00" not in head:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as err:
            if err.start < len(head) - 4:  # not just a character cut at the end of the sample
                head = b""
        if head:
            return "is a text file, not a checkpoint (.pth, .pt or .safetensors weights)"
    return None


def checkpoint_file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be read at all, before parsing it (the weights files and training
    checkpoints share this): ``no such file``, not a regular file, ``file is empty``, ``cannot open
    it (...)``; None when it can be opened."""
    problem = file_problem(path, "checkpoint file")
    if problem is not None:
        return problem
    if path.stat().st_size == 0:
        return "file is empty"
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        return f"cannot open it ({exc.strerror})"
    return None


def read_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, Tensor], SwinIRConfig | None]:
    """Read a weights file: (canonical state dict, config stored in the file if any)."""
    path = Path(path)
    name = printable(path)
    problem = checkpoint_file_problem(path)
    if problem is not None:
        raise CheckpointError(f"{name}: {problem}")
    stored: SwinIRConfig | None = None
    if _is_safetensors(path):
        from safetensors import SafetensorError, safe_open
        from safetensors.torch import load_file

        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
            raw: Mapping[str, Any] = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{name}: unreadable safetensors file ({_short(exc)})") from None
        if "swinir_config" in meta:
            try:
                stored = SwinIRConfig.from_dict(json.loads(meta["swinir_config"]))
            except (ValueError, TypeError, ArithmeticError) as exc:
                raise CheckpointError(f"{name}: bad swinir_config metadata ({_short(exc)})") from None
    else:
        what = _recognise(path)  # before unpickling: text can parse as a (refused) pickle
        if what is not None:
            raise CheckpointError(f"{name}: {what}")
        try:
            raw = torch.load(str(path), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            if "Weights only load failed" in str(exc):
                raise CheckpointError(
                    f"{name}: refused to load: it holds pickled Python objects, not just tensors "
                    "(convert it to .safetensors where you trust its source)"
                ) from None
            raise CheckpointError(f"{name}: {_not_a_checkpoint(path)}") from None
        except Exception as exc:  # torch raises many types (KeyError, RuntimeError, ...) for garbage
            raise CheckpointError(f"{name}: {_not_a_checkpoint(path, exc)}") from None
        if not isinstance(raw, Mapping):
            raise CheckpointError(f"{name}: holds a {type(raw).__name__}, not a state dict")
        cfg = raw.get("swinir_config")
        if isinstance(cfg, Mapping):
            try:
                stored = SwinIRConfig.from_dict(dict(cfg))
            except (ValueError, TypeError, ArithmeticError) as exc:
                raise CheckpointError(f"{name}: bad swinir_config entry ({_short(exc)})") from None
    state = canonicalize_state_dict(raw)
    if not state:
        raise CheckpointError(f"{name}: holds no tensors")
    return state, stored


def _is_safetensors(path: Path) -> bool:
    if path.suffix == ".safetensors":
        return True
    # Sniff: safetensors starts with an 8-byte little-endian header length then '{'.
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{" and not head.startswith(b"PK")


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def load_state_into(model: SwinIR, state: Mapping[str, Tensor], source: str = "checkpoint") -> None:
    """Load ``state`` into ``model`` strictly, with an error naming the first mismatches."""
    _check_shapes(model, state, source)
    own = model.state_dict()
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=True)


def _check_shapes(model: nn.Module, state: Mapping[str, Tensor], source: str) -> None:
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} tensors (e.g. {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensors (e.g. {unexpected[0]})")
    if wrong:
        k = wrong[0]
        problems.append(
            f"{len(wrong)} shape mismatches (e.g. {k}: file {tuple(state[k].shape)}, "
            f"model {tuple(own[k].shape)})"
        )
    if problems:
        raise CheckpointError(f"{source}: does not match the SwinIR architecture: " + "; ".join(problems))


def resolve_weights(path: str | os.PathLike[str]) -> Path:
    """``path`` itself when it exists; else the file of a zoo name (``default``, ``lightweight-x2``).

    Raises CheckpointError when it is neither (with a "did you mean" for near misses).
    """
    local = Path(path).expanduser()
    if local.exists():
        return local
    from .zoo import ZooError, find_model, resolve_model, suggest

    if find_model(os.fspath(path)) is None:
        raise CheckpointError(f"{path}: no such file, and not a model name{suggest(os.fspath(path))}")
    try:
        return resolve_model(path)
    except ZooError as exc:
        raise CheckpointError(str(exc)) from None


def load_model(
    path: str | os.PathLike[str],
    img_range: float | None = None,
    device: str | torch.device = "cpu",
) -> SwinIR:
    """Load any SwinIR checkpoint into a network in eval mode.

    The returned module's forward takes (B, C, H, W) floats in [0, 1] and returns (B, C, s*H, s*W).

    Args:
        path: ``.pth``/``.pt`` (official or trainer checkpoints) or ``.safetensors``, or a model
            name: ``"default"`` (the bundled model) or a zoo name (downloaded once, see ``swinir.zoo``).
        img_range: override the input scaling; default from the file's metadata, else the
            official per-task default (255 for JPEG models, 1 otherwise).
        device: where to put the weights.
    """
    path = resolve_weights(path)
    state, stored = read_checkpoint(path)
    source = printable(path)
    try:
        inferred = infer_config(state, img_range)
    except CheckpointError as exc:
        raise CheckpointError(f"{source}: {exc}") from None
    except (KeyError, IndexError, ValueError, TypeError, ArithmeticError) as exc:
        raise CheckpointError(f"{source}: not a SwinIR state dict ({_short(exc)})") from None
    config = inferred
    if stored is not None:
        # The stored config is authoritative for what shapes cannot tell (img_range, img_size).
        config = replace(stored, drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.0)
        if img_range is not None:
            config = replace(config, img_range=float(img_range))
    check_network(config, state, source)
    model = SwinIR(config)
    load_state_into(model, state, source)
    return model.eval().to(device)


# Largest network a checkpoint may make us build: weights (which must all come from the file) plus
# the index buffers derived from the window size. SwinIR-L needs about 50 MB.
MAX_NETWORK_BYTES: int = 2 << 30


def check_network(
    config: SwinIRConfig, state: Mapping[str, Tensor], source: str, limit: int = MAX_NETWORK_BYTES
) -> None:
    """Refuse, before any memory is taken, a network that ``state`` cannot fill or that is too big.

    Sizes read off a file (tensor shapes, stored metadata) are untrusted: a few-KB file can declare
    an empty ``(1000000, 3, 0, 0)`` tensor, and building that network would ask for terabytes. The
    network is therefore first built on PyTorch's ``meta`` device, which records shapes only; it
    must match ``state`` tensor for tensor and, with its buffers, stay under ``limit`` bytes.

    Raises:
        CheckpointError: naming ``source`` and what does not fit.
    """
    blocks = sum(config.depths)
    if blocks > len(state) or len(config.depths) > len(state):
        raise CheckpointError(
            f"{source}: describes {blocks} transformer blocks but holds only {len(state)} tensors"
        )
    try:
        with torch.device("meta"):
            skeleton = SwinIR(config)
    except (ValueError, TypeError, ArithmeticError, RuntimeError) as exc:
        raise CheckpointError(f"{source}: describes a network that cannot be built ({_short(exc)})") from None
    _check_shapes(skeleton, state, source)
    tensors = [*skeleton.parameters(), *skeleton.buffers()]
    need = sum(t.numel() * t.element_size() for t in tensors)
    if need > limit:
        raise CheckpointError(
            f"{source}: the network it describes needs {need / 2**30:.1f} GiB, over the limit of "
            f"{limit / 2**30:.1f} GiB (embed_dim {config.embed_dim}, window_size {config.window_size}, "
            f"depths {list(config.depths)})"
        )


def save_model(
    model: SwinIR,
    path: str | os.PathLike[str],
    extra_metadata: Mapping[str, str] | None = None,
) -> None:
    """Write weights to ``.safetensors`` with the config in the metadata, atomically."""
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    meta = {"format": METADATA_FORMAT, "swinir_config": json.dumps(model.config.to_dict())}
    if extra_metadata:
        meta.update({str(k): str(v) for k, v in extra_metadata.items()})
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=meta)
