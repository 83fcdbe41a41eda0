"""The SwinIR network (Liang et al., 2021, arXiv 2108.10257), built bottom-up.

Parameter names follow the official implementation exactly, so official state dicts load unchanged:
``conv_first``, ``patch_embed.norm``, ``layers.{i}.residual_group.blocks.{j}.attn.qkv``, ... .

Layout conventions used in the docstrings:
    B batch, C channels, H/W height/width in pixels, L = H*W tokens,
    ws window size, N = ws*ws tokens per window, nW windows per image, h heads, d head dim.

This file holds the network only. How it executes lives next to it: window geometry (partition
order, shifted-window masks, padding) in ``swinir.windows``, the CPU worker threads that run Swin
blocks in chunks of windows in ``swinir.cpu_parallel``, and the runners (PyTorch fp32/bf16, int8,
ONNX Runtime) in ``swinir.backends``. Size-derived tables are computed on demand and cached per
input size; they are never stored in checkpoints.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .cpu_parallel import CHUNK_POOL, Keep, current_generator, run_batch, run_block
from .windows import MASK_VALUE, pad_to_window, relative_position_index, shift_regions

Upsampler = Literal["pixelshuffle", "pixelshuffledirect", "nearest+conv", ""]
# How graph mode writes window attention (see SwinIR.set_graph_mode): "fused" keeps the single q/k/v
# projection and a 5-D view around the shift mask (what ONNX Runtime runs best); "plain4d" splits
# q, k and v into three projections and keeps every tensor 4-D, the pattern OpenVINO's CPU plugin
# fuses into its multi-head-attention kernels. Same weights, same function.
GraphAttention = Literal["fused", "plain4d"]
GRAPH_ATTENTIONS: tuple[str, ...] = ("fused", "plain4d")
ResiConnection = Literal["1conv", "3conv"]

UPSAMPLERS: tuple[str, ...] = ("pixelshuffle", "pixelshuffledirect", "nearest+conv", "")
RESI_CONNECTIONS: tuple[str, ...] = ("1conv", "3conv")

# Mean of DIV2K used by the official code for 3-channel models; grayscale models use 0.
RGB_MEAN: tuple[float, float, float] = (0.4488, 0.4371, 0.4040)


@dataclass(frozen=True)
class SwinIRConfig:
    """Every hyperparameter of a SwinIR network.

    ``upsampler`` is ``""`` for restoration models (denoise, JPEG) whose output has the input size;
    ``upscale`` must then be 1. ``img_range`` scales the mean-shifted input (1 or 255) and is not
    recoverable from weights, so checkpoint loaders must be told it or use the task default.
    """

    upscale: int = 2
    in_chans: int = 3
    img_size: int = 64
    window_size: int = 8
    img_range: float = 1.0
    depths: tuple[int, ...] = (6, 6, 6, 6)
    embed_dim: int = 60
    num_heads: tuple[int, ...] = (6, 6, 6, 6)
    mlp_ratio: float = 2.0
    qkv_bias: bool = True
    drop_rate: float = 0.0
    attn_drop_rate: float = 0.0
    drop_path_rate: float = 0.1
    ape: bool = False
    patch_norm: bool = True
    upsampler: str = "pixelshuffledirect"
    resi_connection: str = "1conv"
    num_feat: int = 64

    def __post_init__(self) -> None:
        # Lists from JSON/TOML become tuples so the config stays hashable and comparable.
        object.__setattr__(self, "depths", tuple(int(d) for d in self.depths))
        object.__setattr__(self, "num_heads", tuple(int(h) for h in self.num_heads))
        if self.upsampler not in UPSAMPLERS:
            raise ValueError(f"upsampler must be one of {UPSAMPLERS}, got {self.upsampler!r}")
        if self.resi_connection not in RESI_CONNECTIONS:
            raise ValueError(
                f"resi_connection must be one of {RESI_CONNECTIONS}, got {self.resi_connection!r}"
            )
        if len(self.depths) != len(self.num_heads) or not self.depths:
            raise ValueError("depths and num_heads must be non-empty and of equal length")
        if any(self.embed_dim % h for h in self.num_heads):
            raise ValueError(f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}")
        if self.window_size < 1:
            raise ValueError("window_size must be positive")
        if self.in_chans not in (1, 3):
            raise ValueError(f"in_chans must be 1 or 3, got {self.in_chans}")
        if self.upsampler == "" and self.upscale != 1:
            raise ValueError("restoration models (upsampler '') must have upscale 1")
        if self.upsampler != "" and self.upscale < 2:
            raise ValueError("super-resolution models need upscale >= 2")
        if self.upsampler == "pixelshuffle" and not _pixelshuffle_scale_ok(self.upscale):
            raise ValueError(f"pixelshuffle supports scales 2^n and 3, got {self.upscale}")
        if self.upsampler == "nearest+conv" and self.upscale not in (2, 4):
            raise ValueError(f"nearest+conv supports scales 2 and 4, got {self.upscale}")

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["depths"] = list(self.depths)
        d["num_heads"] = list(self.num_heads)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> SwinIRConfig:
        """Build from a plain dict; unknown keys are an error, so typos do not pass silently."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown SwinIR config keys: {', '.join(unknown)}")
        return cls(**d)  # type: ignore[arg-type]


def _pixelshuffle_scale_ok(scale: int) -> bool:
    return scale == 3 or (scale >= 2 and scale & (scale - 1) == 0)


# ----------------------------------------------------------------------------------------------
# Building blocks
# ----------------------------------------------------------------------------------------------


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch per sample during training."""

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def sample(self, batch: int, like: Tensor) -> Tensor | None:
        """A (B, 1, 1) keep mask scaled by 1/keep, or None when nothing is dropped.

        Drawn once per block so that every chunk of a sample's tokens shares it.
        """
        if self.drop_prob == 0.0 or not self.training:
            return None
        keep = 1.0 - self.drop_prob
        return like.new_empty(batch, 1, 1).bernoulli_(keep, generator=current_generator()).div_(keep)

    def forward(self, x: Tensor) -> Tensor:
        scale = self.sample(x.shape[0], x)
        return x if scale is None else x * scale.view((-1,) + (1,) * (x.ndim - 1))

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"


def _dropout(x: Tensor, p: float, generator: torch.Generator | None) -> Tensor:
    """Training-time dropout, drawn from ``generator`` when given: the chunks of a block then get
    the same masks whatever order they run in, and again when recomputed for checkpointing.

    Keeps each element with probability ``1 - p`` rounded to 1/32768 (and rescales by that), from
    one 32-bit random number per two elements: ``bernoulli_`` (and so ``F.dropout``) draws one
    number per element in a scalar loop on non-Intel CPUs and cost 15% of a training step.
    Backward keeps the bool mask only.
    """
    if p == 0.0:
        return x
    threshold = round((1.0 - p) * 32768)
    n = x.numel()
    bits = torch.empty((n + 1) // 2, dtype=torch.int32, device=x.device).random_(generator=generator)
    mask = (bits.view(torch.int16)[:n] & 0x7FFF) < threshold  # 15 uniform bits per element
    return torch.where(mask.view(x.shape), x * (32768.0 / threshold), 0.0)


class Mlp(nn.Module):
    """Token-wise MLP: (B, L, C) -> (B, L, C)."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        p = self.drop.p if self.training else 0.0
        return _dropout(self.fc2(_dropout(self.act(self.fc1(x)), p, generator)), p, generator)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows with a learned relative-position bias.

    Works on tokens already gathered window by window; the caller owns the shift and partition.
    """

    relative_position_index: Tensor

    def __init__(
        self,
        dim: int,
        window_size: int,
        num_heads: int,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.window_size = window_size
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        self.register_buffer(
            "relative_position_index", relative_position_index(window_size), persistent=False
        )
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self._bias_cache: dict[tuple[object, ...], tuple[Tensor, Tensor | None]] = {}

    def relative_position_bias(self) -> Tensor:
        """(h, N, N) bias gathered from the table."""
        n = self.window_size * self.window_size
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        return bias.view(n, n, self.num_heads).permute(2, 0, 1)

    def attention_bias(self, masks: Tensor | None, dtype: torch.dtype) -> Tensor:
        """Relative-position bias plus each group's mask: (M, h, N, N), M = 1 without masks.

        The bias is a function of a parameter, so it is rebuilt on every call while autograd
        tracks the table; otherwise (inference) it is cached until the table changes in place
        (its version counter) or is replaced, or the masks, dtype or device change.
        """
        table = self.relative_position_bias_table
        if torch.is_grad_enabled() and table.requires_grad:
            return self._build_bias(masks, dtype)
        key = (table._version, table.data_ptr(), str(table.device), dtype, id(masks))
        hit = self._bias_cache.get(key)
        if hit is None:
            if len(self._bias_cache) >= 4:  # a few sizes (tiles, edge tiles); drop the oldest
                self._bias_cache.pop(next(iter(self._bias_cache)))
            # The entry holds the masks so that their id() cannot be reused while it lives.
            # The cache outlives an inference-mode call; inference_mode(False) re-enables autograd.
            with torch.inference_mode(False), torch.no_grad():
                hit = self._bias_cache[key] = (self._build_bias(masks, dtype), masks)
        return hit[0]

    def _build_bias(self, masks: Tensor | None, dtype: torch.dtype) -> Tensor:
        bias = self.relative_position_bias().unsqueeze(0)
        if masks is not None:
            bias = bias + masks.unsqueeze(1).to(bias.dtype)
        return bias.to(dtype).contiguous()

    def forward(self, x: Tensor, bias: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Attend within windows.

        Args:
            x: (B, T, C) tokens grouped by window, T a multiple of N.
            bias: (h, N, N) additive bias (relative position, plus the mask in shifted windows).
            generator: where training-time dropout draws from (default: the global generator).

        Returns:
            (B, T, C) attended and projected tokens.
        """
        b, t, c = x.shape
        n = self.window_size * self.window_size
        h, d = self.num_heads, self.head_dim
        nb = b * t // n  # windows in this call
        # unbind, not indexing: its backward stacks the three gradients instead of zero-filling.
        q, k, v = self.qkv(x).view(nb, n, 3, h, d).unbind(2)  # each (nb, N, h, d)
        # Heads become batch entries of (N, d) and (d, N) matrices; K and V are laid out transposed,
        # which is what the batched GEMMs run fastest with for these thin shapes (d is 10..32).
        q = q.transpose(1, 2).reshape(nb * h, n, d)
        k_t = k.permute(0, 2, 3, 1).reshape(nb * h, d, n)
        v_t = v.permute(0, 2, 3, 1).reshape(nb * h, d, n)
        scores = torch.bmm(q, k_t).view(nb, h, n, n)
        if torch.is_grad_enabled():
            probs = torch.add(bias, scores, alpha=self.scale).softmax(-1)
        else:  # in place: the scores are the largest intermediate of a chunk
            probs = torch.softmax(torch.add(bias, scores, alpha=self.scale, out=scores), -1, out=scores)
        if self.training:
            probs = _dropout(probs, self.attn_drop, generator)
        out_t = torch.bmm(v_t, probs.view(nb * h, n, n).transpose(1, 2))  # (nb*h, d, N) = (P V)^T
        out = out_t.view(nb, h, d, n).permute(0, 3, 1, 2).reshape(b, t, c)
        return _dropout(self.proj(out), self.proj_drop.p if self.training else 0.0, generator)

    def forward_graph(self, x: Tensor, bias: Tensor, mask: Tensor | None = None) -> Tensor:
        """Plain, traceable form of ``forward`` (eval only), as ONNX Runtime runs it best.

        Args:
            x: (T, C) tokens grouped by window (all images), T a multiple of N.
            bias: (1, h, N, N) relative-position bias.
            mask: optional (nW, 1, N, N) shifted-window mask, repeated over the images.
        """
        t, c = x.shape
        n = self.window_size * self.window_size
        h, d = self.num_heads, self.head_dim
        qkv = self.qkv(x).view(t // n, n, 3, h, d).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (nb, h, N, d)
        scores = torch.matmul(q, k.transpose(-2, -1)) * self.scale + bias
        if mask is not None:
            nwin = mask.shape[0]
            scores = (scores.view(-1, nwin, h, n, n) + mask).view(-1, h, n, n)
        out = torch.matmul(scores.softmax(-1), v).transpose(1, 2).reshape(t, c)
        return self.proj(out)

    def forward_graph_4d(self, x: Tensor, bias: Tensor, mask: Tensor | None = None) -> Tensor:
        """``forward_graph`` with every tensor 4-D (eval only), the form OpenVINO fuses.

        q, k and v come from the three row blocks of the ``qkv`` weight as separate projections,
        each viewed to (nb, h, N, d) by one transpose; the bias and the mask are added one after
        the other (a combined (nW, h, N, N) table would cost gigabytes at large sizes).

        Args:
            x: (T, C) tokens grouped by window (all images), T a multiple of N.
            bias: (1, h, N, N) relative-position bias.
            mask: optional (nb, 1, N, N) shifted-window mask, one per window of every image.
        """
        t, c = x.shape
        n = self.window_size * self.window_size
        h, d = self.num_heads, self.head_dim
        nb = t // n
        weights = self.qkv.weight.chunk(3)
        biases = self.qkv.bias.chunk(3) if self.qkv.bias is not None else (None, None, None)
        q, k, v = (
            F.linear(x, w, b).view(nb, n, h, d).transpose(1, 2) for w, b in zip(weights, biases, strict=True)
        )
        scores = torch.matmul(q, k.transpose(-2, -1)) * self.scale + bias
        if mask is not None:
            scores = scores + mask
        out = torch.matmul(scores.softmax(-1), v).transpose(1, 2).reshape(t, c)
        return self.proj(out)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, window_size={self.window_size}, num_heads={self.num_heads}"


class SwinTransformerBlock(nn.Module):
    """Pre-norm Swin block: (shifted) window attention then MLP, each with a residual."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: int,
        shift_size: int,
        mlp_ratio: float,
        qkv_bias: bool,
        drop: float,
        attn_drop: float,
        drop_path: float,
    ) -> None:
        super().__init__()
        if not 0 <= shift_size < window_size:
            raise ValueError("shift_size must be in [0, window_size)")
        self.dim = dim
        self.window_size = window_size
        self.shift_size = shift_size
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window_size, num_heads, qkv_bias, attn_drop, drop)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)
        self.graph_mode = False  # see SwinIR.set_graph_mode
        self.graph_attention: GraphAttention = "fused"

    def forward(
        self, x: Tensor, x_size: tuple[int, int], recompute: bool = False, shift_mask: Tensor | None = None
    ) -> Tensor:
        """(B, L, C) -> (B, L, C) for an image of ``x_size`` = (H, W) with H, W multiples of ws.

        The math is :meth:`run_chunk`: everything but the attention is token-wise, so the block
        runs on chunks of whole windows (on CPU worker threads, see ``swinir.cpu_parallel``).
        The drop-path masks and the dropout seed are drawn here, once, and shared by the chunks.
        ``recompute`` keeps no activations and recomputes them in backward (gradient checkpointing).
        """
        if self.graph_mode:
            return self.forward_graph(x, x_size, shift_mask)
        b = x.shape[0]
        keep = (self.drop_path.sample(b, x), self.drop_path.sample(b, x))
        return run_block(self, x, x_size, keep, self._dropout_seed(), recompute)

    def run_chunk(self, xc: Tensor, bias: Tensor, keep: Keep, generator: torch.Generator | None) -> Tensor:
        """The block on one chunk: (B, T, C) tokens of whole windows -> (B, T, C).

        Args:
            bias: (h, N, N) attention bias of the chunk's mask group.
            keep: drop-path masks of the attention and MLP branches, (B, 1, 1) or None.
            generator: where the chunk's dropout draws from.
        """
        keep_attn, keep_mlp = keep
        xc = _residual(xc, self.attn(self.norm1(xc), bias, generator), keep_attn)
        return _residual(xc, self.mlp(self.norm2(xc), generator), keep_mlp)

    def attention_bias(self, masks: Tensor | None, dtype: torch.dtype) -> Tensor:
        """(M, h, N, N) bias of each mask group (see :meth:`WindowAttention.attention_bias`)."""
        return self.attn.attention_bias(masks, dtype)

    def forward_graph(self, x: Tensor, x_size: tuple[int, int], shift_mask: Tensor | None = None) -> Tensor:
        """The block as one traceable graph (eval only): roll, partition, attention of all windows
        with the mask built from the (possibly symbolic) size, reverse. (B, L, C) -> (B, L, C).

        ``shift_mask``: the (nW, 1, N, N) mask of shifted windows given as a graph input instead
        (:meth:`SwinIR.forward_padded`); ignored by unshifted blocks.
        """
        height, width = x_size
        b, length, c = x.shape
        ws, shift, n = self.window_size, self.shift_size, self.window_size * self.window_size
        nh, nw = height // ws, width // ws
        # Token matrices stay 2-D around the linear layers (ONNX Gemm with a fused bias).
        y = self.norm1(x).view(b, height, width, c)
        if shift:
            y = torch.roll(y, (-shift, -shift), (1, 2))
        y = y.view(b, nh, ws, nw, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b * length, c)
        mask = shift_mask if shift else None
        if shift and mask is None:
            # Region labels from the (symbolic) size, as in shifted_window_mask: (nW, 1, N, N).
            rows = shift_regions(torch.arange(height, device=x.device), height, ws, shift)
            cols = shift_regions(torch.arange(width, device=x.device), width, ws, shift)
            labels = (rows[:, None] * 3 + cols[None, :]).view(nh, ws, nw, ws).permute(0, 2, 1, 3)
            labels = labels.reshape(nh * nw, 1, n)
            mask = ((labels.transpose(1, 2) != labels).to(x.dtype) * MASK_VALUE).unsqueeze(1)
        rel_bias = self.attn.relative_position_bias().unsqueeze(0)
        if self.graph_attention == "plain4d":
            windows = mask if mask is None or b == 1 else mask.repeat(b, 1, 1, 1)
            y = self.attn.forward_graph_4d(y, rel_bias, windows)
        else:
            y = self.attn.forward_graph(y, rel_bias, mask)
        y = y.view(b, nh, nw, ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b, height, width, c)
        if shift:
            y = torch.roll(y, (shift, shift), (1, 2))
        x = (x + y.reshape(b, length, c)).view(b * length, c)
        x = x + self.mlp.fc2(self.mlp.act(self.mlp.fc1(self.norm2(x))))
        return x.view(b, length, c)

    def _dropout_seed(self) -> int | None:
        """A seed for this call's dropout masks, drawn from the global generator (so that
        ``torch.manual_seed`` makes training reproducible), or None when nothing drops."""
        if not self.training or (self.mlp.drop.p == 0.0 and self.attn.attn_drop == 0.0):
            return None
        return int(torch.randint(0, 2**62, (), generator=current_generator()).item())

    def extra_repr(self) -> str:
        return f"dim={self.dim}, window_size={self.window_size}, shift_size={self.shift_size}"


def _residual(x: Tensor, branch: Tensor, keep: Tensor | None) -> Tensor:
    """x + branch * keep, in place when autograd is off (``x`` is then a private chunk)."""
    if keep is not None:
        branch = branch * keep
    return x + branch if torch.is_grad_enabled() else x.add_(branch)


class BasicLayer(nn.Module):
    """A stack of Swin blocks alternating plain and shifted windows."""

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        window_size: int,
        mlp_ratio: float,
        qkv_bias: bool,
        drop: float,
        attn_drop: float,
        drop_path: list[float],
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinTransformerBlock(
                dim,
                num_heads,
                window_size,
                0 if i % 2 == 0 else window_size // 2,
                mlp_ratio,
                qkv_bias,
                drop,
                attn_drop,
                drop_path[i],
            )
            for i in range(depth)
        )
        self.grad_checkpointing = False

    def forward(self, x: Tensor, x_size: tuple[int, int], shift_mask: Tensor | None = None) -> Tensor:
        """(B, L, C) -> (B, L, C); ``shift_mask`` in graph mode only (see SwinIR.forward_padded)."""
        recompute = self.grad_checkpointing and self.training and torch.is_grad_enabled()
        for blk in self.blocks:
            x = blk(x, x_size, recompute, shift_mask)
        return x


def residual_conv(dim: int, kind: str) -> nn.Module:
    """The convolution closing each residual group: one 3x3, or a cheaper 3x3-1x1-3x3 bottleneck."""
    if kind == "1conv":
        return nn.Conv2d(dim, dim, 3, 1, 1)
    return nn.Sequential(
        nn.Conv2d(dim, dim // 4, 3, 1, 1),
        nn.LeakyReLU(negative_slope=0.2, inplace=True),
        nn.Conv2d(dim // 4, dim // 4, 1, 1, 0),
        nn.LeakyReLU(negative_slope=0.2, inplace=True),
        nn.Conv2d(dim // 4, dim, 3, 1, 1),
    )


class PatchEmbed(nn.Module):
    """(B, C, H, W) -> (B, L, C) with an optional LayerNorm (named ``norm`` as upstream)."""

    def __init__(self, dim: int, norm: bool) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim) if norm else None

    def forward(self, x: Tensor) -> Tensor:
        x = image_to_tokens(x)
        return self.norm(x) if self.norm is not None else x


def tokens_to_image(x: Tensor, x_size: tuple[int, int]) -> Tensor:
    """(B, L, C) -> (B, C, H, W), a channels-last view of the same memory when ``x`` is contiguous."""
    b, _, c = x.shape
    return x.view(b, x_size[0], x_size[1], c).permute(0, 3, 1, 2)


def image_to_tokens(x: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, L, C), a view when ``x`` is channels-last (as the network keeps it)."""
    b, c, h, w = x.shape
    return x.permute(0, 2, 3, 1).reshape(b, h * w, c)


class RSTB(nn.Module):
    """Residual Swin Transformer Block: Swin blocks, a conv, and a long skip. (B, L, C) -> (B, L, C)."""

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        window_size: int,
        mlp_ratio: float,
        qkv_bias: bool,
        drop: float,
        attn_drop: float,
        drop_path: list[float],
        resi_connection: str,
    ) -> None:
        super().__init__()
        self.residual_group = BasicLayer(
            dim, depth, num_heads, window_size, mlp_ratio, qkv_bias, drop, attn_drop, drop_path
        )
        self.conv = residual_conv(dim, resi_connection)

    def forward(self, x: Tensor, x_size: tuple[int, int], shift_mask: Tensor | None = None) -> Tensor:
        y = tokens_to_image(self.residual_group(x, x_size, shift_mask).contiguous(), x_size)
        return image_to_tokens(self.conv(y)) + x


class Upsample(nn.Sequential):
    """Conv + PixelShuffle stages for scale 2^n or 3 (named ``upsample.{0,1,2,...}`` as upstream)."""

    def __init__(self, scale: int, num_feat: int) -> None:
        layers: list[nn.Module] = []
        if scale == 3:
            layers += [nn.Conv2d(num_feat, 9 * num_feat, 3, 1, 1), nn.PixelShuffle(3)]
        else:
            for _ in range(int(math.log2(scale))):
                layers += [nn.Conv2d(num_feat, 4 * num_feat, 3, 1, 1), nn.PixelShuffle(2)]
        super().__init__(*layers)


class UpsampleOneStep(nn.Sequential):
    """One conv straight to scale^2 * out channels and a PixelShuffle (lightweight models)."""

    def __init__(self, scale: int, num_feat: int, num_out_ch: int) -> None:
        super().__init__(nn.Conv2d(num_feat, scale * scale * num_out_ch, 3, 1, 1), nn.PixelShuffle(scale))


# ----------------------------------------------------------------------------------------------
# Network
# ----------------------------------------------------------------------------------------------


class SwinIR(nn.Module):
    """SwinIR for super-resolution, denoising and JPEG artifact removal.

    ``forward`` takes (B, C, H, W) in [0, 1] of any size and returns (B, C, s*H, s*W); inputs whose
    size is not a multiple of the window are reflect-padded and the output is cropped back.
    """

    mean: Tensor

    def __init__(self, config: SwinIRConfig) -> None:
        super().__init__()
        self.config = config
        cfg = config
        dim = cfg.embed_dim
        self.upscale = cfg.upscale
        self.window_size = cfg.window_size
        self.img_range = cfg.img_range
        self.upsampler = cfg.upsampler
        mean = RGB_MEAN if cfg.in_chans == 3 else (0.0,)
        self.register_buffer("mean", torch.tensor(mean).view(1, cfg.in_chans, 1, 1), persistent=False)

        # Shallow feature extraction.
        self.conv_first = nn.Conv2d(cfg.in_chans, dim, 3, 1, 1)

        # Deep feature extraction.
        self.patch_embed = PatchEmbed(dim, cfg.patch_norm)
        self.absolute_pos_embed: nn.Parameter | None = None
        if cfg.ape:
            self.absolute_pos_embed = nn.Parameter(torch.zeros(1, cfg.img_size * cfg.img_size, dim))
            nn.init.trunc_normal_(self.absolute_pos_embed, std=0.02)
        self.pos_drop = nn.Dropout(cfg.drop_rate)
        dpr = torch.linspace(
            0, cfg.drop_path_rate, sum(cfg.depths), device="cpu"
        ).tolist()  # real even on meta
        self.layers = nn.ModuleList()
        for i, (depth, heads) in enumerate(zip(cfg.depths, cfg.num_heads, strict=True)):
            start = sum(cfg.depths[:i])
            self.layers.append(
                RSTB(
                    dim,
                    depth,
                    heads,
                    cfg.window_size,
                    cfg.mlp_ratio,
                    cfg.qkv_bias,
                    cfg.drop_rate,
                    cfg.attn_drop_rate,
                    dpr[start : start + depth],
                    cfg.resi_connection,
                )
            )
        self.norm = nn.LayerNorm(dim)
        self.conv_after_body = residual_conv(dim, cfg.resi_connection)

        # Reconstruction.
        out_ch = cfg.in_chans
        nf = cfg.num_feat
        if cfg.upsampler == "pixelshuffle":
            self.conv_before_upsample = nn.Sequential(nn.Conv2d(dim, nf, 3, 1, 1), nn.LeakyReLU(inplace=True))
            self.upsample = Upsample(cfg.upscale, nf)
            self.conv_last = nn.Conv2d(nf, out_ch, 3, 1, 1)
        elif cfg.upsampler == "pixelshuffledirect":
            self.upsample = UpsampleOneStep(cfg.upscale, dim, out_ch)
        elif cfg.upsampler == "nearest+conv":
            self.conv_before_upsample = nn.Sequential(nn.Conv2d(dim, nf, 3, 1, 1), nn.LeakyReLU(inplace=True))
            self.conv_up1 = nn.Conv2d(nf, nf, 3, 1, 1)
            if cfg.upscale == 4:
                self.conv_up2 = nn.Conv2d(nf, nf, 3, 1, 1)
            self.conv_hr = nn.Conv2d(nf, nf, 3, 1, 1)
            self.conv_last = nn.Conv2d(nf, out_ch, 3, 1, 1)
            self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)
        else:
            self.conv_last = nn.Conv2d(dim, out_ch, 3, 1, 1)

        self.apply(_init_weights)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute Swin blocks in the backward pass to trade compute for activation memory."""
        for layer in self.layers:
            layer.residual_group.grad_checkpointing = enable

    def pad_to_window(self, x: Tensor) -> Tensor:
        """Reflect-pad (B, C, H, W) on the bottom/right to a multiple of the window size."""
        return pad_to_window(x, self.window_size)

    def forward_features(self, x: Tensor, shift_mask: Tensor | None = None) -> Tensor:
        """(B, C, H, W) features -> (B, C, H, W) deep features (``shift_mask``: see forward_padded)."""
        x_size = (x.shape[2], x.shape[3])
        x = self.patch_embed(x)
        if self.absolute_pos_embed is not None:
            if self.absolute_pos_embed.shape[1] != x.shape[1]:
                raise ValueError(
                    "this model uses an absolute position embedding and only accepts "
                    f"{self.config.img_size}x{self.config.img_size} inputs"
                )
            x = x + self.absolute_pos_embed
        x = _dropout(x, self.pos_drop.p if self.training else 0.0, current_generator())
        for layer in self.layers:
            x = layer(x, x_size, shift_mask)
        return tokens_to_image(self.norm(x), x_size)

    def set_graph_mode(self, enable: bool = True, attention: GraphAttention = "fused") -> None:
        """Run Swin blocks as whole-tensor graphs (no chunks, threads or Python-side tables), the
        form that ``torch.export``/ONNX can capture with dynamic height and width.

        ``attention`` picks how window attention is written (see ``GraphAttention``): ``fused``
        for ONNX Runtime, ``plain4d`` for OpenVINO. Both compute the same function.
        """
        if attention not in GRAPH_ATTENTIONS:
            raise ValueError(f"attention must be one of {', '.join(GRAPH_ATTENTIONS)}, got {attention!r}")
        for layer in self.layers:
            for blk in layer.residual_group.blocks:
                blk.graph_mode = enable
                blk.graph_attention = attention

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) in [0, 1] -> (B, C, s*H, s*W).

        On CPU with several threads, a batch of at least two images is split over the worker
        threads, each running the whole network (forward, and backward in training) on its share
        with one intra-op thread (see ``swinir.cpu_parallel``); single images run block chunks on the
        workers instead.
        """
        if not self._graph_mode():
            pool = CHUNK_POOL.executor(x.device)
            if pool is not None and x.shape[0] >= 2:
                return run_batch(self._forward, self, x, pool)
        return self._forward(x)

    def _forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        x = self.forward_padded(self.pad_to_window(x))
        return x[..., : h * self.upscale, : w * self.upscale].contiguous()

    def _graph_mode(self) -> bool:
        return bool(self.layers) and self.layers[0].residual_group.blocks[0].graph_mode

    def forward_padded(self, x: Tensor, shift_mask: Tensor | None = None) -> Tensor:
        """(B, C, H, W) in [0, 1] with H, W multiples of the window size -> (B, C, s*H, s*W).

        ``shift_mask`` (graph mode only): the (nW, 1, N, N) additive mask of the shifted windows
        (``swinir.windows.shifted_window_mask`` with a new axis), taken as an input rather than
        built inside the graph. OpenVINO needs that: it folds a mask built from the (static) size
        into every block's position bias, one (nW, h, N, N) table per block, 1.2 GB at 256x256.
        """
        if shift_mask is not None and not self._graph_mode():
            raise ValueError("shift_mask is a graph-mode input (see set_graph_mode)")
        mean = self.mean.to(x.dtype)
        # Channels-last throughout: the token layout (B, L, C) is then a free view of every feature
        # map, and oneDNN's channels-last convolutions are faster on CPU.
        x = ((x - mean) * self.img_range).contiguous(memory_format=torch.channels_last)

        if self.upsampler == "pixelshuffle":
            x = self.conv_first(x)
            x = self.conv_after_body(self.forward_features(x, shift_mask)) + x
            x = self.conv_last(self.upsample(self.conv_before_upsample(x)))
        elif self.upsampler == "pixelshuffledirect":
            x = self.conv_first(x)
            x = self.conv_after_body(self.forward_features(x, shift_mask)) + x
            x = self.upsample(x)
        elif self.upsampler == "nearest+conv":
            x = self.conv_first(x)
            x = self.conv_after_body(self.forward_features(x, shift_mask)) + x
            x = self.conv_before_upsample(x)
            x = self.lrelu(self.conv_up1(F.interpolate(x, scale_factor=2, mode="nearest")))
            if self.upscale == 4:
                x = self.lrelu(self.conv_up2(F.interpolate(x, scale_factor=2, mode="nearest")))
            x = self.conv_last(self.lrelu(self.conv_hr(x)))
        else:
            first = self.conv_first(x)
            res = self.conv_after_body(self.forward_features(first, shift_mask)) + first
            x = x + self.conv_last(res)

        return x / self.img_range + mean


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


# ----------------------------------------------------------------------------------------------
# Presets
# ----------------------------------------------------------------------------------------------

_CLASSICAL = dict(
    img_size=48, window_size=8, img_range=1.0, depths=(6,) * 6, embed_dim=180,
    num_heads=(6,) * 6, mlp_ratio=2.0, upsampler="pixelshuffle", resi_connection="1conv",
)  # fmt: skip
_LIGHTWEIGHT = dict(
    img_size=64, window_size=8, img_range=1.0, depths=(6,) * 4, embed_dim=60,
    num_heads=(6,) * 4, mlp_ratio=2.0, upsampler="pixelshuffledirect", resi_connection="1conv",
)  # fmt: skip


def swinir_classical(scale: int) -> SwinIRConfig:
    """Official classical SR model (DIV2K, patch 48); scale 2, 3, 4 or 8."""
    return SwinIRConfig(upscale=scale, **_CLASSICAL)  # type: ignore[arg-type]


def swinir_classical_x2() -> SwinIRConfig:
    return swinir_classical(2)


def swinir_classical_x3() -> SwinIRConfig:
    return swinir_classical(3)


def swinir_classical_x4() -> SwinIRConfig:
    return swinir_classical(4)


def swinir_classical_x8() -> SwinIRConfig:
    return swinir_classical(8)


def swinir_lightweight(scale: int) -> SwinIRConfig:
    """Official lightweight SR model (embed 60, 4 groups of 6, one-step pixel shuffle)."""
    return SwinIRConfig(upscale=scale, **_LIGHTWEIGHT)  # type: ignore[arg-type]


def swinir_lightweight_x2() -> SwinIRConfig:
    return swinir_lightweight(2)


def swinir_lightweight_x3() -> SwinIRConfig:
    return swinir_lightweight(3)


def swinir_lightweight_x4() -> SwinIRConfig:
    return swinir_lightweight(4)


def swinir_real_m_x4() -> SwinIRConfig:
    """Official real-world SR model, medium size (nearest+conv upsampler, trained with GAN)."""
    return SwinIRConfig(
        upscale=4, img_size=64, window_size=8, img_range=1.0, depths=(6,) * 6, embed_dim=180,
        num_heads=(6,) * 6, mlp_ratio=2.0, upsampler="nearest+conv", resi_connection="1conv",
    )  # fmt: skip


def swinir_real_l_x4() -> SwinIRConfig:
    """Official real-world SR model, large size (9 groups, embed 240, 3conv)."""
    return SwinIRConfig(
        upscale=4, img_size=64, window_size=8, img_range=1.0, depths=(6,) * 9, embed_dim=240,
        num_heads=(8,) * 9, mlp_ratio=2.0, upsampler="nearest+conv", resi_connection="3conv",
    )  # fmt: skip


def _restoration(in_chans: int, window_size: int, img_size: int, img_range: float) -> SwinIRConfig:
    return SwinIRConfig(
        upscale=1, in_chans=in_chans, img_size=img_size, window_size=window_size, img_range=img_range,
        depths=(6,) * 6, embed_dim=180, num_heads=(6,) * 6, mlp_ratio=2.0, upsampler="",
        resi_connection="1conv",
    )  # fmt: skip


def swinir_gray_dn() -> SwinIRConfig:
    """Official grayscale denoising model (one per noise level 15/25/50; same architecture)."""
    return _restoration(1, 8, 128, 1.0)


def swinir_color_dn() -> SwinIRConfig:
    """Official color denoising model (one per noise level 15/25/50; same architecture)."""
    return _restoration(3, 8, 128, 1.0)


def swinir_gray_jpeg() -> SwinIRConfig:
    """Official grayscale JPEG artifact removal model (window 7, img_range 255)."""
    return _restoration(1, 7, 126, 255.0)


def swinir_color_jpeg() -> SwinIRConfig:
    """Official color JPEG artifact removal model (window 7, img_range 255)."""
    return _restoration(3, 7, 126, 255.0)


def swinir_seed_x2() -> SwinIRConfig:
    """A large anime x2 model (configs/seed_anime_x2.toml): embed 180, 4x6 blocks, window 4, dropout."""
    return SwinIRConfig(
        upscale=2, in_chans=3, img_size=64, window_size=4, img_range=255.0, depths=(6,) * 4,
        embed_dim=180, num_heads=(6,) * 4, mlp_ratio=4.0, qkv_bias=True, drop_rate=0.1,
        attn_drop_rate=0.1, drop_path_rate=0.1, ape=False, patch_norm=True,
        upsampler="pixelshuffle", resi_connection="3conv",
    )  # fmt: skip


PRESETS: dict[str, Callable[[], SwinIRConfig]] = {
    "classical_x2": swinir_classical_x2,
    "classical_x3": swinir_classical_x3,
    "classical_x4": swinir_classical_x4,
    "classical_x8": swinir_classical_x8,
    "lightweight_x2": swinir_lightweight_x2,
    "lightweight_x3": swinir_lightweight_x3,
    "lightweight_x4": swinir_lightweight_x4,
    "real_m_x4": swinir_real_m_x4,
    "real_l_x4": swinir_real_l_x4,
    "gray_dn": swinir_gray_dn,
    "color_dn": swinir_color_dn,
    "gray_jpeg": swinir_gray_jpeg,
    "color_jpeg": swinir_color_jpeg,
    "seed_x2": swinir_seed_x2,
}


def preset(name: str) -> SwinIRConfig:
    """Look up a preset config by name (see ``PRESETS``); ``lightweight-x2`` is ``lightweight_x2``."""
    if not isinstance(name, str):
        raise ValueError(f"preset must be a name, one of {', '.join(PRESETS)}; got {name!r}")
    key = name.strip().lower().replace("-", "_")
    factory = PRESETS.get(key)
    if factory is None:
        close = difflib.get_close_matches(key, list(PRESETS), n=1, cutoff=0.75)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown preset {name!r}{hint}; choose from {', '.join(PRESETS)}")
    return factory()


def build_model(config: SwinIRConfig) -> SwinIR:
    """Build an untrained network for ``config``."""
    return SwinIR(config)


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
