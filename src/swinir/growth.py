"""Growing a trained SwinIR into a deeper one that starts as the same function.

A network with more Swin blocks per stage, or more stages, can start from a smaller network's
weights: every tensor of the smaller network is copied, and the new parts begin as identities, so
the grown network's first output equals the smaller one's and training only has to add to it.

- A new block in an existing stage is ``x + attn(norm1(x))`` then ``x + mlp(norm2(x))``: with the
  attention's output projection and the MLP's last layer at zero both branches add nothing, and the
  gradient still reaches those two layers (their inputs are not zero), so the block wakes up.
- A new stage (RSTB) is ``conv(blocks(x)) + x``: with its closing convolution at zero it adds
  nothing; its blocks keep their random initialisation, which breaks the symmetry between them.

The shapes that cannot grow this way (embedding width, window, MLP ratio, heads of an existing
stage, upsampler) must match exactly.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor, nn

from .model import SwinIR, SwinIRConfig

_IGNORED = ("img_size", "drop_rate", "attn_drop_rate", "drop_path_rate", "depths", "num_heads")


def growth_problem(small: SwinIRConfig, large: SwinIRConfig) -> str | None:
    """Why ``small``'s weights cannot start ``large`` (None when they can, including equal shapes)."""
    ignore = {f: getattr(large, f) for f in _IGNORED}
    if dataclasses.replace(small, **ignore) != large:
        differ = [
            f.name
            for f in dataclasses.fields(SwinIRConfig)
            if f.name not in _IGNORED and getattr(small, f.name) != getattr(large, f.name)
        ]
        return f"{', '.join(differ)} differ (only depths and added stages can grow)"
    if len(large.depths) < len(small.depths):
        return f"{len(large.depths)} stages cannot start from {len(small.depths)}"
    for i, (d_small, d_large) in enumerate(zip(small.depths, large.depths, strict=False)):
        if d_large < d_small:
            return f"stage {i} has {d_large} blocks, fewer than the {d_small} it starts from"
        if large.num_heads[i] != small.num_heads[i]:
            return f"stage {i} has {large.num_heads[i]} heads, not the {small.num_heads[i]} it starts from"
    return None


def grow_into(model: SwinIR, small: SwinIRConfig, state: dict[str, Tensor]) -> list[str]:
    """Load ``state`` (weights of a network with config ``small``) into the larger ``model``.

    Returns the names of the parts that start as identities (``layers.2.blocks.4``, ``layers.3``).
    Raises ValueError when the shapes cannot grow (see :func:`growth_problem`).
    """
    large = model.config
    problem = growth_problem(small, large)
    if problem:
        raise ValueError(problem)
    own = model.state_dict()
    for key, value in state.items():
        if key not in own or own[key].shape != value.shape:
            raise ValueError(f"{key}: no tensor of shape {tuple(value.shape)} in the larger network")
    new: list[str] = []
    with torch.no_grad():
        model.load_state_dict(state, strict=False)
        for i, stage in enumerate(model.layers):
            if i >= len(small.depths):
                _zero(_last_conv(stage.conv))
                new.append(f"layers.{i}")
                continue
            for j in range(small.depths[i], large.depths[i]):
                block = stage.residual_group.blocks[j]
                _zero(block.attn.proj)
                _zero(block.mlp.fc2)
                new.append(f"layers.{i}.blocks.{j}")
    return new


def _last_conv(conv: nn.Module) -> nn.Module:
    return conv[-1] if isinstance(conv, nn.Sequential) else conv


def _zero(layer: nn.Module) -> None:
    for p in layer.parameters():
        p.zero_()
