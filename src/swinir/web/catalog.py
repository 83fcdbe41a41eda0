"""The models a server offers, and the :class:`swinir.Upscaler` s loaded for them.

Clients choose among :class:`ModelChoice` names only; the source (a zoo name or a weights file) is
fixed by whoever started the server. By default a server offers every zoo model that is usable
offline: the bundled ones and any already in the download cache.
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

from ..upscaler import Upscaler
from ..zoo import ZooError, ZooModel, find_model, is_cached, list_models
from .settings import ModelChoice, WebSettings

# Loaded models kept at once (a SwinIR-M is ~100 MB of weights plus caches); the rest are reloaded.
KEEP_LOADED = 2


def noise_levels(entry: ZooModel | None) -> tuple[int, ...]:
    """The noise levels a zoo entry exposes, or () when the entry (or this zoo) has none."""
    levels = getattr(entry, "noise_levels", None) if entry is not None else None
    if not levels:
        return ()
    return tuple(int(level) for level in levels)


def choice_for(spec: str) -> ModelChoice:
    """A model from ``--models``: a zoo name, or ``NAME=FILE`` / ``FILE`` for a local weights file.

    Raises:
        ZooError: an unknown name, or a file that does not exist.
    """
    name, sep, target = spec.partition("=")
    if not sep:
        name, target = "", spec
    entry = find_model(target)
    if entry is not None and not Path(target).is_file():
        return ModelChoice(
            name or entry.name, entry.name, entry.scale, entry.description, noise_levels(entry)
        )
    path = Path(target).expanduser()
    if not path.is_file():
        raise ZooError(f"{target}: no such file, and not a model name (see `swinir upscale --list-models`)")
    from ..checkpoint import CheckpointError, infer_config, read_checkpoint

    try:
        state, config = read_checkpoint(path)
        scale = (config or infer_config(state)).upscale
    except (CheckpointError, KeyError, IndexError, ValueError) as exc:
        raise ZooError(f"{path}: not a usable SwinIR checkpoint ({exc})") from None
    label = name or path.stem
    return ModelChoice(label, str(path), scale, f"local weights file {path.name}")


def offline_choices() -> list[ModelChoice]:
    """Every zoo model that runs without a download: the bundled ones and those in the cache."""
    return [
        ModelChoice(m.name, m.name, m.scale, m.description, noise_levels(m))
        for m in list_models()
        if is_cached(m)
    ]


def choices_from(specs: Sequence[str]) -> list[ModelChoice]:
    return [choice_for(spec) for spec in specs] if specs else offline_choices()


UpscalerFactory = Callable[[ModelChoice, "int | None", WebSettings], Upscaler]


def build_upscaler(choice: ModelChoice, noise: int | None, settings: WebSettings) -> Upscaler:
    """Load one model with the server's device, tiling and precision."""
    if noise is not None and "noise" in inspect.signature(Upscaler).parameters:
        return Upscaler(
            choice.source, device=settings.device, tile=settings.tile, tile_overlap=settings.tile_overlap,
            precision=settings.precision, noise=noise,  # type: ignore[call-arg]
        )  # fmt: skip
    return Upscaler(
        choice.source, device=settings.device, tile=settings.tile, tile_overlap=settings.tile_overlap,
        precision=settings.precision,
    )  # fmt: skip


class LoadedModels:
    """The most recently used :data:`KEEP_LOADED` Upscalers; used by the worker thread only."""

    def __init__(self, settings: WebSettings, factory: UpscalerFactory = build_upscaler) -> None:
        self.settings = settings
        self.factory = factory
        self._loaded: OrderedDict[tuple[str, int | None], Upscaler] = OrderedDict()

    def get(self, choice: ModelChoice, noise: int | None) -> Upscaler:
        key = (choice.name, noise)
        if key in self._loaded:
            self._loaded.move_to_end(key)
            return self._loaded[key]
        while len(self._loaded) >= KEEP_LOADED:
            self._loaded.popitem(last=False)
        upscaler = self.factory(choice, noise, self.settings)
        self._loaded[key] = upscaler
        return upscaler
