"""Options and limits of the web server, as one typed dataclass built explicitly by the command."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from ..tiling import DEFAULT_OVERLAP, DEFAULT_TILE

MiB = 1024 * 1024

# Defaults, stated in `swinir web --help` and the README.
DEFAULT_MAX_UPLOAD = 32 * MiB  # bytes of one request body
DEFAULT_MAX_PIXELS = 16_000_000  # input pixels (a 4900x3265 photo)
DEFAULT_MAX_OUTPUT_PIXELS = 64_000_000  # output pixels (8000x8000): bounds memory and the worker's time
DEFAULT_MAX_OUTSCALE = 8.0
DEFAULT_QUEUE = 64  # jobs waiting or running; one more answers 429
DEFAULT_STORAGE = 2048 * MiB  # uploads + results kept in the temporary folder
DEFAULT_KEEP = 3600.0  # seconds a finished job's result is kept
DEFAULT_BODY_TIMEOUT = 60.0  # seconds to send a whole request body
DEFAULT_HEADER_TIMEOUT = 10.0  # seconds from connecting (or the previous answer) to a full request head
DEFAULT_MAX_CONNECTIONS = 128  # open connections; more are answered 503 by uvicorn

FORMATS: tuple[str, ...] = ("png", "webp", "jpg")
ALPHA_MODES: tuple[str, ...] = ("model", "resize")


@dataclass(frozen=True)
class ModelChoice:
    """One model the server offers.

    Attributes:
        name: what clients send as ``model`` (a zoo name, or a weights file's stem).
        source: what :class:`swinir.Upscaler` is built from (the zoo name, or the file path). Never
            shown to or taken from a client.
        scale: the model's upscaling factor.
        description: one line for the page.
        noise_levels: the model's noise levels (empty when it has none).
    """

    name: str
    source: str
    scale: int
    description: str
    noise_levels: tuple[int, ...] = ()


@dataclass(frozen=True)
class WebSettings:
    """Everything the app needs besides the models themselves; see ``swinir web --help``."""

    models: tuple[ModelChoice, ...]
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    device: str = "auto"
    tile: int = DEFAULT_TILE
    tile_overlap: int = DEFAULT_OVERLAP
    precision: str = "fp32"
    max_upload: int = DEFAULT_MAX_UPLOAD
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_output_pixels: int = DEFAULT_MAX_OUTPUT_PIXELS
    max_outscale: float = DEFAULT_MAX_OUTSCALE
    max_queue: int = DEFAULT_QUEUE
    max_storage: int = DEFAULT_STORAGE
    keep_seconds: float = DEFAULT_KEEP
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    temp_root: Path | None = None  # parent of the server's temporary folder (default: the system's)
    quiet: bool = False
    extra_hosts: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not self.models:
            raise ValueError("no models to offer")
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError(f"model names must be unique, got {', '.join(names)}")
        for name, value in (
            ("max_upload", self.max_upload),
            ("max_pixels", self.max_pixels),
            ("max_output_pixels", self.max_output_pixels),
            ("max_queue", self.max_queue),
            ("max_storage", self.max_storage),
            ("max_connections", self.max_connections),
        ):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        for name, seconds in (
            ("keep_seconds", self.keep_seconds),
            ("body_timeout", self.body_timeout),
            ("header_timeout", self.header_timeout),
            ("max_outscale", self.max_outscale),
        ):
            if not seconds > 0:
                raise ValueError(f"{name} must be positive, got {seconds}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {self.port}")

    def model(self, name: str) -> ModelChoice | None:
        """The offered model called ``name``; a client's text is only ever compared, never opened."""
        for choice in self.models:
            if choice.name == name:
                return choice
        return None


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
