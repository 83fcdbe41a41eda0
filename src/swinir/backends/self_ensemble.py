"""Self-ensemble (test-time augmentation) around any runner.

The network is not equivariant to flips and rotations: a tile turned by 90 degrees gives a slightly
different answer than the same tile's answer turned. Running the eight flips and rotations of each
tile (the dihedral group of the square), turning each output back and averaging them cancels part
of those errors: the "+" rows of SR papers (SwinIR+, EDSR+) and waifu2x's TTA mode. It costs eight
model calls per tile and no more peak memory than one call plus the output accumulator, and the
result is exactly equivariant: ensemble(flip(x)) == flip(ensemble(x)).

``apply_transform`` flips the width axis (for half of them), then turns by ``k * 90`` degrees;
``undo_transform`` turns back, then flips: its exact inverse. Rotations by 90 and 270 degrees swap the
tile's height and width, so back ends that convert per input shape (``openvino``) are asked for
both orientations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from . import Runner

# (quarter turns, flip first): the eight symmetries of the square.
TRANSFORMS: tuple[tuple[int, bool], ...] = tuple((k, flip) for flip in (False, True) for k in range(4))


def apply_transform(x: Tensor, k: int, flip: bool) -> Tensor:
    """(..., H, W) -> the same tensor flipped left-right (if ``flip``), then turned ``k`` times."""
    if flip:
        x = torch.flip(x, (-1,))
    return torch.rot90(x, k, (-2, -1)) if k else x


def undo_transform(y: Tensor, k: int, flip: bool) -> Tensor:
    """The inverse of :func:`apply_transform` (turned back, then flipped)."""
    if k:
        y = torch.rot90(y, -k, (-2, -1))
    return torch.flip(y, (-1,)) if flip else y


def ensemble_forward(forward: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """The mean of ``undo(forward(apply(x)))`` over :data:`TRANSFORMS`, for (B, C, h, w) ``x``."""
    total: Tensor | None = None
    for k, flip in TRANSFORMS:
        y = undo_transform(forward(apply_transform(x, k, flip).contiguous()), k, flip)
        total = y.clone() if total is None else total.add_(y)
    assert total is not None
    return total.div_(len(TRANSFORMS))


class SelfEnsembleRunner:
    """A :class:`~swinir.backends.Runner` that averages ``inner`` over the eight symmetries.

    ``forward``: (B, C, h, w) float32 CPU in [0, 1] -> (B, C, s*h, s*w) float32 CPU, the mean of
    ``undo(inner.forward(apply(x)))`` over :data:`TRANSFORMS`.
    """

    def __init__(self, inner: Runner) -> None:
        self.inner = inner
        self.config = inner.config
        self.scale = inner.scale
        self.in_chans = inner.in_chans
        self.window_size = inner.window_size
        # What a run's header reports about the network (parameters) stays the inner runner's.
        self.params: int | None = getattr(inner, "params", None)

    def forward(self, x: Tensor) -> Tensor:
        return ensemble_forward(self.inner.forward, x)


class PerShapeSelfEnsembleRunner(SelfEnsembleRunner):
    """:class:`SelfEnsembleRunner` around a back end that converts per input shape (``openvino``):
    both orientations of every tile shape are converted ahead of the first tile."""

    def prepare(self, shapes: Iterable[tuple[int, int, int, int]]) -> list[Any]:
        both = sorted({s for b, c, h, w in shapes for s in ((b, c, h, w), (b, c, w, h))})
        return list(self.inner.prepare(both))  # type: ignore[attr-defined]

    def cached_shapes(self) -> list[tuple[int, int, int, int]]:
        """Shapes converted in both orientations (the only ones a tile plan can reuse for free)."""
        known = set(self.inner.cached_shapes())  # type: ignore[attr-defined]
        return sorted((b, c, h, w) for b, c, h, w in known if (b, c, w, h) in known)

    @property
    def log(self) -> Callable[[str], None]:
        return self.inner.log  # type: ignore[attr-defined]

    @log.setter
    def log(self, value: Callable[[str], None]) -> None:
        self.inner.log = value  # type: ignore[attr-defined]


def self_ensemble(inner: Runner) -> SelfEnsembleRunner:
    """``inner`` wrapped in the self-ensemble that matches what kind of back end it is."""
    if hasattr(inner, "prepare") and hasattr(inner, "cached_shapes"):
        return PerShapeSelfEnsembleRunner(inner)
    return SelfEnsembleRunner(inner)
