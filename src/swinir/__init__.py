"""swinir: SwinIR image super-resolution and restoration on PyTorch."""

from .checkpoint import CheckpointError, canonicalize_state_dict, infer_config, load_model, save_model
from .model import PRESETS, SwinIR, SwinIRConfig, build_model, preset
from .upscaler import Upscaler

__version__ = "0.1.0"

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
