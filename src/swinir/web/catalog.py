"""The models a server offers, and the :class:`swinir.Upscaler` s loaded for them.

Clients choose among :class:`ModelChoice` names only; the source (a zoo name or a weights file) is
fixed by whoever started the server. By default a server offers every zoo model that is usable
offline: the bundled ones and any already in the download cache.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

from .. import zoo
from ..upscaler import Upscaler
from ..zoo import ZooError, ZooModel, find_model, is_cached, list_models, resolve_model
from .settings import ModelChoice, WebSettings

# Loaded models kept at once (a SwinIR-M is ~100 MB of weights plus caches); the rest are reloaded.
KEEP_LOADED = 2


def noise_levels(entry: ZooModel | None) -> tuple[int, ...]:
    """The noise levels the zoo gives an entry's family (``art``: 0-3), or () when it has none."""
    levels_of = getattr(zoo, "noise_levels", None)
    if entry is None or levels_of is None:
        return ()
    return tuple(int(level) for level in levels_of(entry.name))


def _family_member(entry: ZooModel) -> bool:
    """``art-noise2`` and the like: reached through their family's noise choice, not listed apart."""
    return bool(noise_levels(entry)) and "-noise" in entry.name


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
        if entry.task == "bundled":
            resolve_model(entry.name)  # a bundled model not built into this copy: say so now
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
        if is_cached(m) and not _family_member(m)
    ]


def choices_from(specs: Sequence[str]) -> list[ModelChoice]:
    return [choice_for(spec) for spec in specs] if specs else offline_choices()


# A job's noise choice: None (the model has no levels), a level, or "auto" (from the JPEG tables).
Noise = int | str | None
UpscalerFactory = Callable[[ModelChoice, Noise, bool, WebSettings], Upscaler]


def build_upscaler(choice: ModelChoice, noise: Noise, tta: bool, settings: WebSettings) -> Upscaler:
    """Load one model (the family member for ``noise``; its self-ensemble with ``tta``) with the
    server's device, tiling and precision."""
    return Upscaler(
        choice.source, device=settings.device, tile=settings.tile, tile_overlap=settings.tile_overlap,
        precision=settings.precision, noise=0 if noise is None else noise, tta=tta,
    )  # fmt: skip


class LoadedModels:
    """The most recently used :data:`KEEP_LOADED` Upscalers; used by the worker thread only."""

    def __init__(self, settings: WebSettings, factory: UpscalerFactory = build_upscaler) -> None:
        self.settings = settings
        self.factory = factory
        self._loaded: OrderedDict[tuple[str, Noise, bool], Upscaler] = OrderedDict()

    def get(self, choice: ModelChoice, noise: Noise, tta: bool = False) -> Upscaler:
        key = (choice.name, noise, tta)
        if key in self._loaded:
            self._loaded.move_to_end(key)
            return self._loaded[key]
        while len(self._loaded) >= KEEP_LOADED:
            self._loaded.popitem(last=False)
        upscaler = self.factory(choice, noise, tta, self.settings)
        self._loaded[key] = upscaler
        return upscaler
