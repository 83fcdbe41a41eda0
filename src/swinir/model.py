"""The SwinIR network (Liang et al., 2021, arXiv 2108.10257), built bottom-up.

Parameter names follow the official implementation exactly, so official state dicts load unchanged:
``conv_first``, ``patch_embed.norm``, ``layers.{i}.residual_group.blocks.{j}.attn.qkv``, ... .

Layout conventions used in the docstrings:
    B batch, C channels, H/W height/width in pixels, L = H*W tokens,
    ws window size, N = ws*ws tokens per window, nW windows per image, h heads, d head dim.

Buffers that depend only on sizes (relative-position index, shifted-window masks, token permutations)
are computed on demand and cached per input size; they are never stored in checkpoints.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint as activation_checkpoint

Upsampler = Literal["pixelshuffle", "pixelshuffledirect", "nearest+conv", ""]
ResiConnection = Literal["1conv", "3conv"]

UPSAMPLERS: tuple[str, ...] = ("pixelshuffle", "pixelshuffledirect", "nearest+conv", "")
RESI_CONNECTIONS: tuple[str, ...] = ("1conv", "3conv")

# Mean of DIV2K used by the official code for 3-channel models; grayscale models use 0.
RGB_MEAN: tuple[float, float, float] = (0.4488, 0.4371, 0.4040)
# Additive logit for masked (cross-window) pairs; the official code uses -100, not -inf.
MASK_VALUE = -100.0


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
# Size-derived tables
# ----------------------------------------------------------------------------------------------


def relative_position_index(window_size: int) -> Tensor:
    """Index into the (2ws-1)^2 bias table for every pair of tokens in a window: (N, N) int64."""
    coords = torch.stack(
        torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij")
    ).flatten(1)  # (2, N)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)  # (N, N, 2)
    rel = rel + (window_size - 1)
    return rel[..., 0] * (2 * window_size - 1) + rel[..., 1]


def shifted_window_mask(height: int, width: int, window_size: int, shift: int) -> Tensor:
    """Additive mask for shifted windows: (nW, N, N), 0 within a region, MASK_VALUE across regions.

    ``height`` and ``width`` must be multiples of ``window_size``.
    """
    img = torch.zeros(height, width)
    cnt = 0
    for hs in (slice(0, -window_size), slice(-window_size, -shift), slice(-shift, None)):
        for wsl in (slice(0, -window_size), slice(-window_size, -shift), slice(-shift, None)):
            img[hs, wsl] = cnt
            cnt += 1
    win = img.view(height // window_size, window_size, width // window_size, window_size)
    win = win.permute(0, 2, 1, 3).reshape(-1, window_size * window_size)  # (nW, N)
    diff = win[:, None, :] - win[:, :, None]
    return torch.zeros_like(diff).masked_fill_(diff != 0, MASK_VALUE)


def window_token_order(height: int, width: int, window_size: int, shift: int) -> Tensor:
    """Token permutation that applies the cyclic shift and window partition in one gather.

    Returns ``perm`` (L,) int64 such that ``tokens[:, perm]`` lists the tokens window by window
    (row-major windows, row-major inside a window) of the image rolled by ``-shift`` pixels.
    """
    rows = (torch.arange(height) + shift) % height
    cols = (torch.arange(width) + shift) % width
    idx = rows[:, None] * width + cols[None, :]  # position in the original token grid
    idx = idx.view(height // window_size, window_size, width // window_size, window_size)
    return idx.permute(0, 2, 1, 3).reshape(-1)


# ----------------------------------------------------------------------------------------------
# Building blocks
# ----------------------------------------------------------------------------------------------


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch per sample during training."""

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: Tensor) -> Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        return x * x.new_empty(shape).bernoulli_(keep).div_(keep)

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"


class Mlp(nn.Module):
    """Token-wise MLP: (B, L, C) -> (B, L, C)."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


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

    def relative_position_bias(self) -> Tensor:
        """(h, N, N) bias gathered from the table."""
        n = self.window_size * self.window_size
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        return bias.view(n, n, self.num_heads).permute(2, 0, 1)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """Attend within windows.

        Args:
            x: (B, nW, N, C) tokens grouped by window.
            mask: optional (nW, N, N) additive mask for shifted windows.

        Returns:
            (B, nW, N, C) attended tokens (before the output projection's dropout is skipped in eval).
        """
        b, nw, n, c = x.shape
        qkv = self.qkv(x).view(b, nw, n, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(3, 0, 1, 4, 2, 5).unbind(0)  # each (B, nW, h, N, d)
        bias = self.relative_position_bias()  # (h, N, N)
        if mask is not None:
            bias = bias.unsqueeze(0) + mask.unsqueeze(1).to(bias.dtype)  # (nW, h, N, N)
        bias = bias.to(q.dtype)
        out = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=bias,
            dropout_p=self.attn_drop if self.training else 0.0,
            scale=self.scale,
        )  # (B, nW, h, N, d)
        out = out.transpose(2, 3).reshape(b, nw, n, c)
        return self.proj_drop(self.proj(out))

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
        self._cache: dict[tuple[int, int, str], tuple[Tensor, Tensor, Tensor | None]] = {}

    def _tables(self, height: int, width: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor | None]:
        """(perm, inverse perm, mask) for an input size, cached per size and device."""
        key = (height, width, str(device))
        tables = self._cache.get(key)
        if tables is None:
            perm = window_token_order(height, width, self.window_size, self.shift_size)
            inv = torch.empty_like(perm)
            inv[perm] = torch.arange(perm.numel())
            mask = None
            if self.shift_size > 0:
                mask = shifted_window_mask(height, width, self.window_size, self.shift_size).to(device)
            tables = (perm.to(device), inv.to(device), mask)
            if len(self._cache) >= 8:  # keep a few sizes (tiles, edge tiles); drop the oldest
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = tables
        return tables

    def forward(self, x: Tensor, x_size: tuple[int, int]) -> Tensor:
        """(B, L, C) -> (B, L, C) for an image of ``x_size`` = (H, W) with H, W multiples of ws."""
        height, width = x_size
        b, length, c = x.shape
        perm, inv, mask = self._tables(height, width, x.device)
        ws = self.window_size
        nw = (height // ws) * (width // ws)
        # LayerNorm and the projections are token-wise, so they commute with the shift+partition gather.
        windows = self.norm1(x).index_select(1, perm).view(b, nw, ws * ws, c)
        attn = self.attn(windows, mask).view(b, length, c).index_select(1, inv)
        x = x + self.drop_path(attn)
        return x + self.drop_path(self.mlp(self.norm2(x)))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, window_size={self.window_size}, shift_size={self.shift_size}"


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

    def forward(self, x: Tensor, x_size: tuple[int, int]) -> Tensor:
        """(B, L, C) -> (B, L, C)."""
        for blk in self.blocks:
            if self.grad_checkpointing and self.training and torch.is_grad_enabled():
                x = activation_checkpoint(blk, x, x_size, use_reentrant=False)
            else:
                x = blk(x, x_size)
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
        x = x.flatten(2).transpose(1, 2)
        return self.norm(x) if self.norm is not None else x


def tokens_to_image(x: Tensor, x_size: tuple[int, int]) -> Tensor:
    """(B, L, C) -> (B, C, H, W)."""
    b, _, c = x.shape
    return x.transpose(1, 2).reshape(b, c, x_size[0], x_size[1])


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

    def forward(self, x: Tensor, x_size: tuple[int, int]) -> Tensor:
        y = tokens_to_image(self.residual_group(x, x_size), x_size)
        return self.conv(y).flatten(2).transpose(1, 2) + x


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
        dpr = torch.linspace(0, cfg.drop_path_rate, sum(cfg.depths)).tolist()
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
        h, w = x.shape[-2:]
        ws = self.window_size
        pad_h, pad_w = (-h) % ws, (-w) % ws
        if pad_h == 0 and pad_w == 0:
            return x
        if pad_h < h and pad_w < w:
            return F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
        # Smaller than the window: reflect as far as possible, then repeat the edge.
        x = F.pad(x, (0, min(pad_w, w - 1), 0, min(pad_h, h - 1)), mode="reflect")
        return F.pad(x, (0, w + pad_w - x.shape[-1], 0, h + pad_h - x.shape[-2]), mode="replicate")

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, C, H, W) features -> (B, C, H, W) deep features."""
        x_size = (x.shape[2], x.shape[3])
        x = self.patch_embed(x)
        if self.absolute_pos_embed is not None:
            if self.absolute_pos_embed.shape[1] != x.shape[1]:
                raise ValueError(
                    "this model uses an absolute position embedding and only accepts "
                    f"{self.config.img_size}x{self.config.img_size} inputs"
                )
            x = x + self.absolute_pos_embed
        x = self.pos_drop(x)
        for layer in self.layers:
            x = layer(x, x_size)
        return tokens_to_image(self.norm(x), x_size)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) in [0, 1] -> (B, C, s*H, s*W)."""
        h, w = x.shape[-2:]
        x = self.pad_to_window(x)
        mean = self.mean.to(x.dtype)
        x = (x - mean) * self.img_range

        if self.upsampler == "pixelshuffle":
            x = self.conv_first(x)
            x = self.conv_after_body(self.forward_features(x)) + x
            x = self.conv_last(self.upsample(self.conv_before_upsample(x)))
        elif self.upsampler == "pixelshuffledirect":
            x = self.conv_first(x)
            x = self.conv_after_body(self.forward_features(x)) + x
            x = self.upsample(x)
        elif self.upsampler == "nearest+conv":
            x = self.conv_first(x)
            x = self.conv_after_body(self.forward_features(x)) + x
            x = self.conv_before_upsample(x)
            x = self.lrelu(self.conv_up1(F.interpolate(x, scale_factor=2, mode="nearest")))
            if self.upscale == 4:
                x = self.lrelu(self.conv_up2(F.interpolate(x, scale_factor=2, mode="nearest")))
            x = self.conv_last(self.lrelu(self.conv_hr(x)))
        else:
            first = self.conv_first(x)
            res = self.conv_after_body(self.forward_features(first)) + first
            x = x + self.conv_last(res)

        x = x / self.img_range + mean
        return x[..., : h * self.upscale, : w * self.upscale]


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
    """The seed project's anime model: embed 180, 4x6 blocks, window 4, heavy regularisation."""
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
    """Look up a preset config by name (see ``PRESETS``)."""
    try:
        factory = PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}") from None
    return factory()


def build_model(config: SwinIRConfig) -> SwinIR:
    """Build an untrained network for ``config``."""
    return SwinIR(config)


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
