"""Model zoo: a short name for every official SwinIR checkpoint, downloaded once into a cache.

``resolve_model(name_or_path)`` turns what a user typed into a local weights file:

* a path to an existing file is used as it is;
* ``default`` and the ``art`` family (``art``, ``art-noise1`` .. ``art-noise3``) are the project's
  bundled models, shipped inside the package;
* a zoo name (``classical-x2``, ``real-x4-gan``, ... see :data:`MODELS` or
  ``swinir upscale --list-models``) or an official file name is looked up in the cache directory
  (``$SWINIR_CACHE``, else ``~/.cache/swinir``) and downloaded from the official GitHub release on first
  use, with a progress bar.

Downloads are verified before they are kept: by SHA-256 where the digest is known (from two
independent published manifests), otherwise by loading the file as a SwinIR checkpoint. They are
written atomically, so an interrupted, corrupt or refused download never leaves a file in the cache.
``$SWINIR_ZOO_URL`` replaces the release URL (a mirror, or a local server in tests).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from .atomic import atomic_path

RELEASE_URL = "https://github.com/JingyunLiang/SwinIR/releases/download/v0.0"
BUNDLED_NAME = "default"
BUNDLED_FILE = "swinir_default_x2.safetensors"
_CHUNK = 1 << 20


class ZooError(Exception):
    """A model that cannot be resolved or downloaded; the message says why and what to do."""


@dataclass(frozen=True)
class ZooModel:
    """One named checkpoint.

    Attributes:
        name: the short name users type (``classical-x2``).
        filename: the official release file name.
        task: ``classical_sr``, ``lightweight_sr``, ``real_sr``, ``gray_dn``, ``color_dn``,
            ``gray_jpeg``, ``color_jpeg`` or ``bundled``.
        scale: upscaling factor (1 for denoising and JPEG artifact removal).
        img_range: input scaling used by the official test script (255 for JPEG models, else 1).
        description: one line for listings.
        sha256: expected digest, when known.
        size: expected size in bytes, when known.
    """

    name: str
    filename: str
    task: str
    scale: int
    img_range: float
    description: str
    sha256: str | None = None
    size: int | None = None

    def url(self, base_url: str | None = None) -> str:
        base = base_url or os.environ.get("SWINIR_ZOO_URL") or RELEASE_URL
        return f"{base.rstrip('/')}/{self.filename}"


# Digests published for these files by two independent projects that pin the official releases.
_KNOWN: dict[str, tuple[str, int]] = {
    "003_realSR_BSRGAN_DFO_s64w8_SwinIR-M_x2_GAN.pth": (
        "f397408977a3e07eb06afb7238d453a12ef35ebab7328a54241f307860dbe342",
        66_974_517,
    ),
    "003_realSR_BSRGAN_DFO_s64w8_SwinIR-M_x4_GAN.pth": (
        "b9afb61e65e04eb7f8aba5095d070bbe9af28df76acd0c9405aeb33b814bcfc6",
        67_129_861,
    ),
    "003_realSR_BSRGAN_DFOWMFC_s64w8_SwinIR-L_x4_GAN.pth": (
        "99adfa91350a84c99e946c1eb3d8fce34bc28f57d807b09dc8fe40a316328c0a",
        142_473_939,
    ),
    "005_colorDN_DFWB_s128w8_SwinIR-M_noise15.pth": (
        "917cd972f7ba80786871add249ad43e4477ce2db59b4ad63e2fa446f7221d013",
        122_905_743,
    ),
    "006_colorCAR_DFWB_s126w7_SwinIR-M_jpeg10.pth": (
        "0005b707e0e6f75b4d13c7447e2f184858ddbdcec95aa7eb8c07e8afa1d26bd9",
        102_873_665,
    ),
}


def _official() -> list[ZooModel]:
    models: list[ZooModel] = []

    def add(name: str, filename: str, task: str, scale: int, img_range: float, description: str) -> None:
        sha, size = _KNOWN.get(filename, (None, None))
        models.append(ZooModel(name, filename, task, scale, img_range, description, sha, size))

    for s in (2, 3, 4, 8):
        add(f"classical-x{s}", f"001_classicalSR_DF2K_s64w8_SwinIR-M_x{s}.pth", "classical_sr", s, 1.0,
            f"classical (bicubic) SR x{s}, SwinIR-M, DIV2K+Flickr2K, patch 64")  # fmt: skip
    for s in (2, 3, 4, 8):
        add(f"classical-div2k-x{s}", f"001_classicalSR_DIV2K_s48w8_SwinIR-M_x{s}.pth", "classical_sr", s, 1.0,
            f"classical (bicubic) SR x{s}, SwinIR-M, DIV2K only, patch 48")  # fmt: skip
    for s in (2, 3, 4):
        add(f"lightweight-x{s}", f"002_lightweightSR_DIV2K_s64w8_SwinIR-S_x{s}.pth", "lightweight_sr", s, 1.0,
            f"lightweight (bicubic) SR x{s}, SwinIR-S, fast")  # fmt: skip
    for s in (2, 4):
        for kind, what in (("gan", "sharp, GAN-trained"), ("psnr", "smooth, PSNR-trained")):
            add(f"real-x{s}-{kind}", f"003_realSR_BSRGAN_DFO_s64w8_SwinIR-M_x{s}_{kind.upper()}.pth",
                "real_sr", s, 1.0, f"real-world photos x{s}, SwinIR-M, {what}")  # fmt: skip
    for kind, what in (("gan", "sharp, GAN-trained"), ("psnr", "smooth, PSNR-trained")):
        add(f"real-large-x4-{kind}", f"003_realSR_BSRGAN_DFOWMFC_s64w8_SwinIR-L_x4_{kind.upper()}.pth",
            "real_sr", 4, 1.0, f"real-world photos x4, SwinIR-L (large, more data), {what}")  # fmt: skip
    for sigma in (15, 25, 50):
        add(f"gray-denoise-{sigma}", f"004_grayDN_DFWB_s128w8_SwinIR-M_noise{sigma}.pth", "gray_dn", 1, 1.0,
            f"grayscale denoising, noise level {sigma}")  # fmt: skip
    for sigma in (15, 25, 50):
        add(f"color-denoise-{sigma}", f"005_colorDN_DFWB_s128w8_SwinIR-M_noise{sigma}.pth", "color_dn", 1,
            1.0, f"colour denoising, noise level {sigma}")  # fmt: skip
    for q in (10, 20, 30, 40):
        add(f"gray-jpeg-{q}", f"006_CAR_DFWB_s126w7_SwinIR-M_jpeg{q}.pth", "gray_jpeg", 1, 255.0,
            f"grayscale JPEG artifact removal, quality {q}")  # fmt: skip
    for q in (10, 20, 30, 40):
        add(f"color-jpeg-{q}", f"006_colorCAR_DFWB_s126w7_SwinIR-M_jpeg{q}.pth", "color_jpeg", 1, 255.0,
            f"colour JPEG artifact removal, quality {q}")  # fmt: skip
    return models


BUNDLED = ZooModel(
    BUNDLED_NAME,
    BUNDLED_FILE,
    "bundled",
    2,
    1.0,
    "the project's own x2 model for photos, shipped with the package",
)
# The art family: anime and illustration x2, clean and at three JPEG noise levels (denoise + x2).
ART_NAME = "art"
NOISE_LEVELS = (1, 2, 3)
_NOISE_WORDS = {1: "light", 2: "medium", 3: "heavy"}
ART_MODELS = [
    ZooModel(
        ART_NAME, "swinir_art_x2.safetensors", "bundled", 2, 1.0, "anime and illustration x2, clean input"
    ),
    *(
        ZooModel(
            f"{ART_NAME}-noise{n}", f"swinir_art_x2_noise{n}.safetensors", "bundled", 2, 1.0,
            f"anime and illustration x2 with {_NOISE_WORDS[n]} JPEG noise removal (--noise {n})",
        )
        for n in NOISE_LEVELS
    ),
]  # fmt: skip
MODELS: dict[str, ZooModel] = {m.name: m for m in [BUNDLED, *ART_MODELS, *_official()]}


def cache_dir() -> Path:
    """Where downloads are kept: ``$SWINIR_CACHE``, else ``~/.cache/swinir``."""
    env = os.environ.get("SWINIR_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "swinir"


def bundled_path(model: ZooModel = BUNDLED) -> Path:
    """A bundled model's file inside the installed package (it may not be built yet)."""
    return Path(__file__).resolve().parent / "weights" / model.filename


def normalize_name(name: str) -> str:
    """The zoo spelling of a model name: ``lightweight_x2`` and ``Lightweight-X2`` are ``lightweight-x2``."""
    return name.strip().lower().replace("_", "-")


def find_model(name: str) -> ZooModel | None:
    """A zoo entry by short name (``-`` or ``_``, any case), official file name, or file name without
    ``.pth``."""
    model = MODELS.get(name) or MODELS.get(normalize_name(name))
    if model is None:
        model = next((m for m in MODELS.values() if name in (m.filename, Path(m.filename).stem)), None)
    if model is not None and model.task == "bundled":
        return _bundled(model)
    return model


def suggest(name: str) -> str:
    """`` (did you mean 'default'?)`` for a near miss of a zoo name, else ``""``."""
    close = difflib.get_close_matches(normalize_name(name), list(MODELS), n=2, cutoff=0.75)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"


def list_models() -> list[ZooModel]:
    return [_bundled(m) if m.task == "bundled" else m for m in MODELS.values()]


def noise_levels(name: str) -> tuple[int, ...]:
    """The JPEG noise levels a model family offers: (0, 1, 2, 3) for ``art``, () for the others."""
    base = name.split("-noise")[0]
    return (0, *NOISE_LEVELS) if base == ART_NAME else ()


def with_noise(name: str, noise: int) -> str:
    """The family member of ``name`` for noise ``level`` (``art`` + 2 -> ``art-noise2``).

    Raises:
        ZooError: the model has no noise levels (and ``noise`` > 0), or no such level.
    """
    levels = noise_levels(name)
    if not levels:
        if noise == 0:
            return name
        raise ZooError(
            f"--noise {noise}: model {name!r} has no noise levels; "
            f"use --model {ART_NAME} --noise {noise} (or --noise 0)"
        )
    if noise not in levels:
        raise ZooError(f"--noise {noise}: model {name!r} has noise levels {', '.join(map(str, levels))}")
    base = name.split("-noise")[0]
    return base if noise == 0 else f"{base}-noise{noise}"


def _bundled(model: ZooModel) -> ZooModel:
    """A bundled entry with scale and img_range read from the file's metadata when it exists."""
    path = bundled_path(model)
    if not path.is_file():
        return model
    try:
        config = json.loads(safetensors_metadata(path).get("swinir_config", "{}"))
        return replace(
            model,
            scale=int(config.get("upscale", model.scale)),
            img_range=float(config.get("img_range", model.img_range)),
        )
    except Exception:  # an unreadable file is reported when it is loaded, not when it is listed
        return model


def safetensors_metadata(path: Path) -> dict[str, str]:
    """The ``__metadata__`` of a .safetensors file, read from its JSON header (no torch import:
    listing models must stay fast)."""
    with open(path, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        if not 0 < size <= 100 << 20:
            raise ValueError("bad safetensors header")
        header = json.loads(f.read(size))
    meta = header.get("__metadata__") or {}
    return {str(k): str(v) for k, v in meta.items()}


def is_cached(model: ZooModel, cache: Path | None = None) -> bool:
    if model.task == "bundled":
        return bundled_path(model).is_file()
    return ((cache or cache_dir()) / model.filename).is_file()


def resolve_model(
    name_or_path: str | os.PathLike[str],
    *,
    cache: Path | None = None,
    base_url: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Turn a zoo name, ``default``, or a path into a local weights file, downloading if needed.

    Raises:
        ZooError: unknown name, missing file, bundled model not built yet, or a failed download;
            one line saying why and how to pass a local file instead.
    """
    text = os.fspath(name_or_path)
    local = Path(text).expanduser()
    if local.is_file():
        return local
    model = find_model(text)
    if model is None:
        if local.exists():
            raise ZooError(f"{text}: is a directory, not a weights file")
        raise ZooError(
            f"{text}: no such file, and not a model name{suggest(text)} "
            "(run `swinir upscale --list-models` for names)"
        )
    if model.task == "bundled":
        path = bundled_path(model)
        if not path.is_file():
            raise ZooError(
                f"the bundled model {model.name!r} ({model.filename}) is not built yet in this copy "
                "of swinir; "
                "pass --model with a zoo name (see `swinir upscale --list-models`) or a local "
                ".pth/.safetensors file"
            )
        return path
    cache = cache or cache_dir()
    target = cache / model.filename
    if target.is_file():
        return target
    return download(model, target, base_url=base_url, progress=progress, timeout=timeout)


def download(
    model: ZooModel,
    target: Path,
    *,
    base_url: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Fetch ``model`` into ``target`` atomically and verify it; nothing is left behind on failure."""
    # Imported here: listing models (and every --help) must not pay for the HTTP stack.
    import http.client
    import urllib.error

    url = model.url(base_url)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            digest = _fetch(url, tmp, model.filename, progress, timeout)
            _verify(model, tmp, digest)
    except ZooError as exc:
        raise ZooError(_download_failed(model, url, target, str(exc))) from None
    except urllib.error.HTTPError as exc:
        raise ZooError(_download_failed(model, url, target, f"HTTP {exc.code} {exc.reason}")) from None
    except urllib.error.URLError as exc:
        raise ZooError(_download_failed(model, url, target, _reason(exc.reason))) from None
    except (http.client.HTTPException, TimeoutError, ConnectionError) as exc:
        raise ZooError(_download_failed(model, url, target, _reason(exc))) from None
    except OSError as exc:  # the cache directory cannot be written
        raise ZooError(_download_failed(model, url, target, _reason(exc))) from None
    return target


def _fetch(url: str, dest: Path, label: str, progress: bool, timeout: float) -> str:
    """Stream ``url`` into ``dest``; return the SHA-256 of what was received."""
    import urllib.request

    from tqdm import tqdm

    request = urllib.request.Request(url, headers={"User-Agent": "swinir"})
    sha = hashlib.sha256()
    received = 0
    with urllib.request.urlopen(request, timeout=timeout) as response, open(dest, "wb") as out:
        length_header = response.headers.get("Content-Length")
        expected = int(length_header) if length_header and length_header.isdigit() else None
        with tqdm(
            total=expected,
            desc=f"downloading {label}",
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            disable=not progress,
            file=sys.stderr,
            leave=False,
        ) as bar:
            while True:
                chunk = response.read(_CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                sha.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if expected is not None and received != expected:
        raise ZooError(f"the connection closed after {received} of {expected} bytes")
    if received == 0:
        raise ZooError("the server sent an empty file")
    return sha.hexdigest()


def _verify(model: ZooModel, path: Path, digest: str) -> None:
    if model.size is not None and path.stat().st_size != model.size:
        raise ZooError(f"wrong size ({path.stat().st_size} bytes, expected {model.size})")
    if model.sha256 is not None:
        if digest != model.sha256:
            raise ZooError(f"checksum mismatch (sha256 {digest[:16]}..., expected {model.sha256[:16]}...)")
        return
    # No published digest: the file must at least load as a SwinIR checkpoint.
    from .checkpoint import CheckpointError, infer_config, read_checkpoint

    try:
        state, _ = read_checkpoint(path)
        infer_config(state)
    except (CheckpointError, KeyError, IndexError, ValueError) as exc:
        reason = str(exc).split(": ", 1)[-1]
        raise ZooError(f"the downloaded file is not a SwinIR checkpoint ({reason})") from None


def _reason(exc: object) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


def _download_failed(model: ZooModel, url: str, target: Path, reason: str) -> str:
    return (
        f"could not download model {model.name!r} from {url}: {reason}. "
        f"If this machine is offline, get {model.filename} elsewhere and pass it with "
        f"--model path/to/{model.filename} (or copy it to {target})"
    )


def describe_models(cache: Path | None = None) -> str:
    """A table of every name, for ``--list-models``."""
    cache = cache or cache_dir()
    rows = [("NAME", "SCALE", "CACHED", "DESCRIPTION")]
    for m in list_models():
        rows.append((m.name, f"x{m.scale}", "yes" if is_cached(m, cache) else "-", m.description))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}" for r in rows]
    lines.append("")
    lines.append(f"Downloads go to {cache} (set SWINIR_CACHE to change it); any local .pth/.safetensors")
    lines.append("file can be passed instead of a name. Official files: " + RELEASE_URL)
    return "\n".join(lines)
