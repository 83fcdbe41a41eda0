"""swinir: SwinIR image super-resolution and restoration on PyTorch.

The names below are imported on first use (PEP 562), so that ``import swinir`` and the
``swinir`` command start without loading torch until something needs it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public name -> the module that defines it.
_EXPORTS: dict[str, str] = {
    "CheckpointError": "checkpoint",
    "canonicalize_state_dict": "checkpoint",
    "infer_config": "checkpoint",
    "load_model": "checkpoint",
    "save_model": "checkpoint",
    "PRESETS": "model",
    "SwinIR": "model",
    "SwinIRConfig": "model",
    "build_model": "model",
    "preset": "model",
    "Upscaler": "upscaler",
}

__all__ = [
    "PRESETS",
    "CheckpointError",
    "SwinIR",
    "SwinIRConfig",
    "Upscaler",
    "build_model",
    "canonicalize_state_dict",
    "infer_config",
    "load_model",
    "preset",
    "save_model",
]

if TYPE_CHECKING:
    from .checkpoint import CheckpointError, canonicalize_state_dict, infer_config, load_model, save_model
    from .model import PRESETS, SwinIR, SwinIRConfig, build_model, preset
    from .upscaler import Upscaler


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'swinir' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
