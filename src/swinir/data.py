"""Training data: image folders streamed as random (LR, HR) patch pairs in bounded memory.

Layout and terms:

- A **shard** is one folder of images. ``train_dirs`` are searched recursively and every folder
  holding images is a shard, so a dataset too big for RAM is simply a tree of folders.
- Patches come from ``lanes`` independent **lane** streams. Shards are dealt to lanes (split file by
  file when there are fewer shards than lanes). Patch ``j`` of every global batch comes from lane
  ``j % lanes``, so the batch content depends only on the seed and the config, not on how many
  processes or worker processes read it: process ``r`` of ``W`` reads the lanes ``l % W == r``.
- A lane visits its images epoch after epoch, each epoch in a fresh order (shards shuffled, files
  shuffled within each shard). It holds a sliding **window** of ``M`` consecutive images of that
  sequence (at most ``M`` decoded images: memory does not grow with the dataset) and draws every
  patch from a random image of the window; the window moves on by one image every
  ``patches_per_image`` patches.
- Everything random about patch ``c`` of lane ``l`` (image, position, flips, degradation) comes from
  a generator seeded by ``(seed, l, c)``, so the stream can be restarted at any step exactly:
  resuming needs only the step number.
- **Mixed sources** (``train_weights``, ``generator_weight``): each folder is a source of its own and
  the procedural art generator (:mod:`swinir.artgen`) is one more. A lane's image sequence is cut
  into blocks of :data:`MIX_BLOCK` slots; each block gives every source a fixed quota of slots
  (its weight, rounded), shuffled by ``(seed, lane, block)``, and each source walks its own epochs.
  Slot ``i`` therefore maps to an image in O(1), and the window, memory bound and exact resume work
  as for a single source. Generated images are named ``artgen:<size>:<seed>`` and drawn on load.

Batches are (B, C, p, p) LR and (B, C, s*p, s*p) HR float tensors in [0, 1].
"""

from __future__ import annotations

import fnmatch
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from .artgen import generate as generate_art
from .degradations import Degradation, jpeg_compress, modcrop
from .paths import printable

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm")

# Tags that keep the seeded generators for different purposes independent.
_TAG_ORDER = 0
_TAG_PATCH = 1
_TAG_MIX = 2

MIX_BLOCK = 64  # slots per mixing block: quotas are weights rounded to 1/64
GENERATOR_PREFIX = "artgen:"


class DataError(ValueError):
    """Bad training data or data settings; the message names the folder or file."""


@dataclass(frozen=True)
class ImageRecord:
    """One training image: the HR path and, for paired data, its LR path ('' otherwise)."""

    hr: str
    lr: str = ""


# ----------------------------------------------------------------------------------------------
# Scanning folders
# ----------------------------------------------------------------------------------------------


def list_images(root: str | os.PathLike[str]) -> list[Path]:
    """Every image under ``root`` (recursive, sorted, hidden files and folders skipped)."""
    out: list[Path] = []

    def unreadable(err: OSError) -> None:  # os.walk would skip the folder silently
        from .paths import printable

        raise DataError(f"{printable(err.filename or root)}: cannot read the folder ({err.strerror})")

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out.extend(
            Path(dirpath, f)
            for f in sorted(filenames)
            if not f.startswith(".") and f.lower().endswith(IMAGE_SUFFIXES)
        )
    return out


def matches(rel: str, patterns: Sequence[str]) -> bool:
    """True when the relative path or the file name matches one of the glob patterns."""
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(name, p) for p in patterns)


def find_lr(lr_root: Path, rel: Path, scale: int) -> Path | None:
    """The LR file for HR ``rel``: same relative path, or ``{stem}x{scale}`` (benchmark naming)."""
    candidates = [lr_root / rel]
    for suffix in (rel.suffix, *IMAGE_SUFFIXES):
        candidates.append(lr_root / rel.parent / f"{rel.stem}x{scale}{suffix}")
        candidates.append(lr_root / rel.parent / f"{rel.stem}{suffix}")
    return next((c for c in candidates if c.is_file()), None)


def scan_shards(
    train_dirs: Sequence[str],
    lr_dirs: Sequence[str] = (),
    exclude: Sequence[str] = (),
    scale: int = 2,
) -> list[list[ImageRecord]]:
    """Group the images of ``train_dirs`` into shards (one per folder), in sorted order."""
    if not train_dirs:
        raise DataError("no training folders given (data.train_dirs)")
    shards: list[list[ImageRecord]] = []
    for i, root_s in enumerate(train_dirs):
        root = Path(root_s)
        if not root.is_dir():
            raise DataError(f"{printable(root)}: no such folder")
        lr_root = Path(lr_dirs[i]) if lr_dirs else None
        if lr_root is not None and not lr_root.is_dir():
            raise DataError(f"{printable(lr_root)}: no such folder")
        by_folder: dict[Path, list[ImageRecord]] = {}
        for path in list_images(root):
            rel = path.relative_to(root)
            if matches(rel.as_posix(), exclude):
                continue
            lr = ""
            if lr_root is not None:
                found = find_lr(lr_root, rel, scale)
                if found is None:
                    raise DataError(f"{printable(path)}: no LR image for it under {printable(lr_root)}")
                lr = str(found)
            by_folder.setdefault(rel.parent, []).append(ImageRecord(str(path), lr))
        shards.extend(by_folder[k] for k in sorted(by_folder))
    if not shards:
        raise DataError(f"no images found in {', '.join(map(printable, train_dirs))}")
    return shards


def split_lanes(shards: list[list[ImageRecord]], lanes: int) -> list[list[list[ImageRecord]]]:
    """Deal shards to lanes, balancing image counts; split shards file by file if there are too few."""
    total = sum(len(s) for s in shards)
    if total < lanes:
        raise DataError(f"{total} training images cannot feed {lanes} lanes (lower data.lanes)")
    out: list[list[list[ImageRecord]]] = [[] for _ in range(lanes)]
    if len(shards) >= lanes:
        sizes = [0] * lanes
        for idx in sorted(range(len(shards)), key=lambda i: (-len(shards[i]), i)):
            lane = min(range(lanes), key=lambda k: (sizes[k], k))
            out[lane].append(shards[idx])
            sizes[lane] += len(shards[idx])
        # Keep each lane's shards in scan order (the dealing order is by size).
        return [sorted(lane, key=shards.index) for lane in out]
    for shard in shards:
        for lane in range(lanes):
            part = shard[lane::lanes]
            if part:
                out[lane].append(part)
    return out


def shuffled_epoch(shards: list[list[ImageRecord]], rng: np.random.Generator) -> list[ImageRecord]:
    """One epoch's order: the shards shuffled, then the files within each shard (one folder's
    images stay together, so a lane reads folder after folder)."""
    seq: list[ImageRecord] = []
    for s in rng.permutation(len(shards)):
        shard = shards[int(s)]
        seq.extend(shard[int(i)] for i in rng.permutation(len(shard)))
    return seq


def split_sources(sources: list[list[list[ImageRecord]]], lanes: int) -> list[list[list[list[ImageRecord]]]]:
    """Deal every source's shards to lanes: ``out[lane][k]`` is source ``k``'s shards in that lane.

    A source with fewer images than lanes is given whole to every lane (it is sampled by weight,
    not by size, so repeating it across lanes changes nothing but the order).
    """
    out: list[list[list[list[ImageRecord]]]] = [[] for _ in range(lanes)]
    for shards in sources:
        per_lane = split_lanes(shards, lanes) if sum(len(s) for s in shards) >= lanes else [shards] * lanes
        for lane in range(lanes):
            out[lane].append(per_lane[lane])
    return out


def mix_quotas(weights: Sequence[float], block: int = MIX_BLOCK) -> list[int]:
    """Slots per block for each weight (largest remainder; every positive weight gets >= 1 slot)."""
    w = np.asarray(weights, dtype=np.float64)
    if len(w) == 0 or np.any(w < 0) or w.sum() <= 0:
        raise DataError("data.train_weights and data.generator_weight must be >= 0 and not all 0")
    if int((w > 0).sum()) > block:
        raise DataError(f"at most {block} weighted sources")
    raw = w / w.sum() * block
    quota = np.floor(raw).astype(int)
    quota[(w > 0) & (quota == 0)] = 1
    while quota.sum() > block:  # the minimum of 1 may overshoot: take from the largest
        quota[int(np.argmax(quota))] -= 1
    rest = raw - np.floor(raw)
    for i in np.argsort(-rest, kind="stable"):
        if quota.sum() >= block:
            break
        if w[i] > 0:
            quota[i] += 1
    return [int(q) for q in quota]


@dataclass(frozen=True)
class MixSpec:
    """Weighted sources: ``lane_sources[lane][k]`` are source ``k``'s shards in that lane;
    ``quotas[k]`` its slots per block; a last extra quota is the generator's (0 = no generator)."""

    lane_sources: list[list[list[list[ImageRecord]]]]
    quotas: list[int]
    generator_size: int = 256


class _MixedSequence:
    """Slot index -> image for one lane of a :class:`MixSpec` (see the module docstring)."""

    def __init__(self, mix: MixSpec, lane: int, seed: int) -> None:
        self.sources = mix.lane_sources[lane]
        self.quotas = mix.quotas
        self.gen_size = mix.generator_size
        self.lane, self.seed = lane, seed
        self.sizes = [sum(len(s) for s in shards) for shards in self.sources]
        for k, n in enumerate(self.sizes):
            if n == 0 and self.quotas[k] > 0:
                raise DataError(f"lane {lane} has no images of source {k}")
        labels = np.concatenate([np.full(q, k) for k, q in enumerate(self.quotas)])
        self.labels = labels.astype(np.int64)
        self._blocks: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._orders: dict[tuple[int, int], list[ImageRecord]] = {}

    def _block(self, b: int) -> tuple[np.ndarray, np.ndarray]:
        """(source of each slot, index of that slot within its source's run in this block)."""
        if b not in self._blocks:
            rng = np.random.default_rng([self.seed, _TAG_MIX, self.lane, b])
            lab = self.labels[rng.permutation(len(self.labels))]
            within = np.zeros(len(lab), dtype=np.int64)
            seen = [0] * len(self.quotas)
            for i, k in enumerate(lab.tolist()):
                within[i] = seen[k]
                seen[k] += 1
            if len(self._blocks) >= 4:
                self._blocks.pop(min(self._blocks))
            self._blocks[b] = (lab, within)
        return self._blocks[b]

    def _order(self, k: int, epoch: int) -> list[ImageRecord]:
        key = (k, epoch)
        if key not in self._orders:
            rng = np.random.default_rng([self.seed, _TAG_ORDER, self.lane, epoch, k])
            seq = shuffled_epoch(self.sources[k], rng)
            if len(self._orders) >= 3 * (len(self.sources) + 1):
                self._orders.pop(next(iter(self._orders)))
            self._orders[key] = seq
        return self._orders[key]

    def record(self, index: int) -> ImageRecord:
        b, slot = divmod(index, len(self.labels))
        lab, within = self._block(b)
        k = int(lab[slot])
        j = b * self.quotas[k] + int(within[slot])  # the j-th image this lane takes from source k
        if k == len(self.sources):  # the generator: a fresh picture every time
            return generator_record(self.gen_size, (self.seed * 1_000_003 + self.lane) * 10**12 + j)
        n = self.sizes[k]
        return self._order(k, j // n)[j % n]


# ----------------------------------------------------------------------------------------------
# Images and patches
# ----------------------------------------------------------------------------------------------


def generator_record(size: int, seed: int) -> ImageRecord:
    """The record of one procedural picture (drawn, not read, when loaded)."""
    return ImageRecord(f"{GENERATOR_PREFIX}{size}:{seed}")


def read_image(path: str, channels: int) -> np.ndarray:
    """Decode to uint8 (H, W, 3) for ``channels`` 3 or (H, W) for 1 (``artgen:`` names are drawn)."""
    if path.startswith(GENERATOR_PREFIX):
        size, seed = (int(v) for v in path[len(GENERATOR_PREFIX) :].split(":"))
        art = generate_art(seed, size)
        return art if channels == 3 else np.asarray(Image.fromarray(art).convert("L")).copy()
    with Image.open(path) as img:
        img.load()
        return np.asarray(img.convert("RGB" if channels == 3 else "L")).copy()


def to_tensor(arr: np.ndarray) -> Tensor:
    """uint8 (H, W[, C]) -> float (C, H, W) in [0, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(arr))
    t = t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1)
    return t.float().div_(255.0)


class LaneStream:
    """The patch stream of one lane: ``patch(c)`` is the ``c``-th (LR, HR) uint8 pair, for any ``c``.

    Calls with increasing ``c`` are cheap (the window slides one image at a time); a jump re-reads
    the window around ``c``. Images that cannot be read or are smaller than a patch are reported once
    on stderr and skipped.
    """

    def __init__(
        self,
        shards: list[list[ImageRecord]],
        lane: int,
        seed: int,
        window: int,
        patches_per_image: int,
        patch_size: int,
        scale: int,
        channels: int,
        degradation: Degradation,
        flip: bool = True,
        rot90: bool = True,
        mix: MixSpec | None = None,
    ) -> None:
        self.shards = shards
        self.n = sum(len(s) for s in shards)
        self.mixed = _MixedSequence(mix, lane, seed) if mix is not None else None
        if self.n == 0 and self.mixed is None:
            raise DataError(f"lane {lane} has no images")
        self.lane = lane
        self.seed = seed
        self.window = window
        self.ppi = patches_per_image
        self.patch_size = patch_size
        self.scale = scale
        self.channels = channels
        self.degradation = degradation
        self.flip = flip
        self.rot90 = rot90
        self._orders: dict[int, list[ImageRecord]] = {}
        self._slots: dict[int, str] = {}  # sequence index -> hr path
        self._cache: dict[str, tuple[int, tuple[np.ndarray, np.ndarray | None] | None]] = {}
        self._reported: set[str] = set()

    # --- the image sequence ---

    def order(self, epoch: int) -> list[ImageRecord]:
        """This lane's images in epoch ``epoch``: shards shuffled, then files within each shard."""
        if epoch not in self._orders:
            rng = np.random.default_rng([self.seed, _TAG_ORDER, self.lane, epoch])
            seq = shuffled_epoch(self.shards, rng)
            if len(self._orders) >= 3:
                self._orders.pop(min(self._orders))
            self._orders[epoch] = seq
        return self._orders[epoch]

    def record(self, index: int) -> ImageRecord:
        if self.mixed is not None:
            return self.mixed.record(index)
        return self.order(index // self.n)[index % self.n]

    @property
    def decoded(self) -> int:
        """Number of distinct decoded images held now (bounded by the window)."""
        return len(self._cache)

    def _slide(self, start: int) -> list[int]:
        """Make the window hold sequence indices [start, start + window); return them."""
        wanted = range(start, start + self.window)
        for idx in [i for i in self._slots if i not in wanted]:
            path = self._slots.pop(idx)
            refs, data = self._cache[path]
            if refs == 1:
                del self._cache[path]
            else:
                self._cache[path] = (refs - 1, data)
        for idx in wanted:
            if idx in self._slots:
                continue
            rec = self.record(idx)
            self._slots[idx] = rec.hr
            if rec.hr in self._cache:
                refs, data = self._cache[rec.hr]
                self._cache[rec.hr] = (refs + 1, data)
            else:
                self._cache[rec.hr] = (1, self._load(rec))
        return list(wanted)

    def _skip(self, path: str, reason: str) -> None:
        if path not in self._reported:
            self._reported.add(path)
            line = f"swinir train: skipping {printable(path)}: {printable(reason)}"
            print(line, file=sys.stderr, flush=True)

    def _load(self, rec: ImageRecord) -> tuple[np.ndarray, np.ndarray | None] | None:
        """(HR, LR or None) with HR cropped to a multiple of the scale; None when unusable."""
        s, p = self.scale, self.patch_size
        try:
            hr = modcrop(read_image(rec.hr, self.channels), s)
            lr = read_image(rec.lr, self.channels) if rec.lr else None
        except (OSError, ValueError) as exc:
            self._skip(rec.lr or rec.hr, f"unreadable image ({exc})")
            return None
        if lr is not None:
            lh, lw = lr.shape[:2]
            if lh * s > hr.shape[0] or lw * s > hr.shape[1] or hr.shape[0] - lh * s >= s:
                self._skip(rec.lr, f"LR {lw}x{lh} does not match HR {hr.shape[1]}x{hr.shape[0]} at x{s}")
                return None
            hr = hr[: lh * s, : lw * s]
        if min(hr.shape[:2]) < p * s:
            self._skip(rec.hr, f"smaller than a {p * s}x{p * s} HR patch")
            return None
        if lr is None and not self.degradation.random:
            lr = self.degradation(hr)  # deterministic: degrade the whole image once
        return hr, lr

    # --- patches ---

    def patch(self, c: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``c``-th (LR (p, p[, C]), HR (s*p, s*p[, C])) uint8 pair of this lane."""
        indices = self._slide(c // self.ppi)
        usable = [i for i in indices if self._cache[self._slots[i]][1] is not None]
        if not usable:
            paths = sorted({self._slots[i] for i in indices})
            raise DataError(f"no usable image among {len(paths)} in the window (e.g. {printable(paths[0])})")
        rng = np.random.default_rng([self.seed, _TAG_PATCH, self.lane, c])
        pick = usable[int(rng.integers(len(usable)))]
        data = self._cache[self._slots[pick]][1]
        assert data is not None
        hr, lr = data
        s, p = self.scale, self.patch_size
        coin = rng.random(3)
        if lr is not None:
            y = int(rng.integers(lr.shape[0] - p + 1))
            x = int(rng.integers(lr.shape[1] - p + 1))
            lr_p = lr[y : y + p, x : x + p]
            hr_p = hr[s * y : s * (y + p), s * x : s * (x + p)]
        else:
            h, w = hr.shape[0] // s, hr.shape[1] // s
            m = self.degradation.margin if min(h, w) >= p + 2 * self.degradation.margin else 0
            y = int(rng.integers(h - p - 2 * m + 1))
            x = int(rng.integers(w - p - 2 * m + 1))
            big = hr[s * y : s * (y + p + 2 * m), s * x : s * (x + p + 2 * m)]
            lr_p = self.degradation(big, rng)[m : m + p, m : m + p]
            hr_p = big[s * m : s * (m + p), s * m : s * (m + p)]
        if self.flip and coin[0] < 0.5:
            lr_p, hr_p = lr_p[:, ::-1], hr_p[:, ::-1]
        if self.flip and coin[1] < 0.5:
            lr_p, hr_p = lr_p[::-1], hr_p[::-1]
        if self.rot90 and coin[2] < 0.5:
            lr_p, hr_p = lr_p.swapaxes(0, 1), hr_p.swapaxes(0, 1)
        return np.ascontiguousarray(lr_p), np.ascontiguousarray(hr_p)


# ----------------------------------------------------------------------------------------------
# Batches
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamSpec:
    """Everything a worker needs to rebuild its lane streams (picklable)."""

    lane_shards: list[list[list[ImageRecord]]]
    seed: int
    window: int
    patches_per_image: int
    patch_size: int
    scale: int
    channels: int
    degradation: Degradation
    flip: bool
    rot90: bool
    mix: MixSpec | None = None

    def stream(self, lane: int) -> LaneStream:
        return LaneStream(
            self.lane_shards[lane],
            lane,
            self.seed,
            self.window,
            self.patches_per_image,
            self.patch_size,
            self.scale,
            self.channels,
            self.degradation,
            self.flip,
            self.rot90,
            self.mix,
        )


class _LaneChunks(IterableDataset):
    """Yields ``(step, {lane: (LR (n, C, p, p), HR (n, C, sp, sp))})`` for this worker's lanes."""

    def __init__(self, spec: StreamSpec, lanes: list[int], counts: dict[int, int], start_step: int) -> None:
        super().__init__()
        self.spec = spec
        self.lanes = lanes
        self.counts = counts
        self.start_step = start_step

    def __iter__(self) -> Iterator[tuple[int, dict[int, tuple[Tensor, Tensor]]]]:
        info = get_worker_info()
        k, w = (info.num_workers, info.id) if info is not None else (1, 0)
        mine = [lane for i, lane in enumerate(self.lanes) if i % k == w]
        streams = {lane: self.spec.stream(lane) for lane in mine}
        step = self.start_step
        while True:
            out: dict[int, tuple[Tensor, Tensor]] = {}
            for lane in mine:
                n = self.counts[lane]
                pairs = [streams[lane].patch(step * n + i) for i in range(n)]
                out[lane] = (
                    torch.stack([to_tensor(lr) for lr, _ in pairs]),
                    torch.stack([to_tensor(hr) for _, hr in pairs]),
                )
            yield step, out
            step += 1


def _worker_init(_: int) -> None:
    # Decoding and cropping are single-threaded work; extra intra-op threads would only compete.
    torch.set_num_threads(1)
    # Ctrl-C reaches the whole process group but is for the trainer, which saves and exits; the
    # workers end with it. A worker killed by it instead would make the loader raise mid-save.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class PatchLoader:
    """Infinite iterator of this process's share of each global batch, from ``start_step`` on.

    Process ``rank`` of ``world`` gets the patches ``j`` with ``j % world == rank`` of every global
    batch of ``batch_size`` (``lanes`` and ``batch_size`` must be multiples of ``world``).
    """

    def __init__(
        self,
        spec: StreamSpec,
        batch_size: int,
        rank: int = 0,
        world: int = 1,
        workers: int = 0,
        start_step: int = 0,
        pin_memory: bool = False,
    ) -> None:
        lanes = len(spec.lane_shards)
        if batch_size < lanes:
            raise DataError(f"data.batch_size {batch_size} is smaller than data.lanes {lanes}")
        if lanes % world or batch_size % world:
            raise DataError(
                f"data.lanes ({lanes}) and data.batch_size ({batch_size}) must be multiples of the "
                f"number of processes ({world})"
            )
        self.spec = spec
        self.batch_size = batch_size
        self.rank, self.world = rank, world
        self.start_step = start_step
        self.pin_memory = pin_memory
        self.lanes = [lane for lane in range(lanes) if lane % world == rank]
        self.counts = {lane: len(range(lane, batch_size, lanes)) for lane in self.lanes}
        self.workers = min(workers, len(self.lanes))
        # Position of each local patch: (lane, index within that lane's chunk), in global order.
        self.order = [(j % lanes, j // lanes) for j in range(batch_size) if (j % lanes) % world == rank]

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        dataset = _LaneChunks(self.spec, self.lanes, self.counts, self.start_step)
        if self.workers == 0:
            source: Iterator = iter(dataset)
            per_step = 1
        else:
            # A private generator: creating the loader must not consume the global torch RNG,
            # or resuming would change dropout draws.
            source = iter(
                DataLoader(
                    dataset,
                    batch_size=None,
                    num_workers=self.workers,
                    worker_init_fn=_worker_init,
                    generator=torch.Generator(),
                    pin_memory=self.pin_memory,
                    prefetch_factor=2,
                )
            )
            per_step = self.workers  # workers answer in turn, one item per step each
        step = self.start_step
        while True:
            chunks: dict[int, tuple[Tensor, Tensor]] = {}
            for _ in range(per_step):
                try:
                    got_step, part = next(source)
                except DataError as exc:
                    # From a worker the message carries the worker's traceback; keep its last line.
                    last = str(exc).strip().splitlines()[-1]
                    raise DataError(last.split("DataError: ", 1)[-1]) from None
                if got_step != step:
                    raise RuntimeError(f"data workers out of step ({got_step} != {step})")
                chunks.update(part)
            lr = torch.stack([chunks[lane][0][i] for lane, i in self.order])
            hr = torch.stack([chunks[lane][1][i] for lane, i in self.order])
            yield lr, hr
            step += 1


def build_spec(
    shards: list[list[ImageRecord]],
    lanes: int,
    seed: int,
    buffer_images: int,
    patches_per_image: int,
    patch_size: int,
    scale: int,
    channels: int,
    degradation: Degradation,
    flip: bool = True,
    rot90: bool = True,
    sources: list[list[list[ImageRecord]]] | None = None,
    weights: Sequence[float] = (),
    generator_weight: float = 0.0,
    generator_size: int = 256,
) -> StreamSpec:
    """Split ``shards`` over ``lanes``; each lane's window holds ``buffer_images // lanes`` images.

    With ``sources`` (one list of shards per folder) and ``weights`` (one per source) and/or a
    ``generator_weight``, images are drawn from the sources by weight (see :class:`MixSpec`);
    ``shards`` is then only used for the image count.
    """
    mix = None
    if sources is not None or generator_weight > 0:
        src = list(sources or [])
        w = list(weights) if weights else [float(sum(len(s) for s in shards)) for shards in src]
        if len(w) != len(src):
            raise DataError(f"data.train_weights needs one weight per train dir ({len(src)}), got {len(w)}")
        mix = MixSpec(split_sources(src, lanes), mix_quotas([*w, generator_weight]), generator_size)
    return StreamSpec(
        mix=mix,
        lane_shards=split_lanes(shards, lanes) if mix is None else [[] for _ in range(lanes)],
        seed=seed,
        window=max(1, buffer_images // lanes),
        patches_per_image=patches_per_image,
        patch_size=patch_size,
        scale=scale,
        channels=channels,
        degradation=degradation,
        flip=flip,
        rot90=rot90,
    )


# ----------------------------------------------------------------------------------------------
# Validation images
# ----------------------------------------------------------------------------------------------


def load_validation(
    hr_dir: str,
    scale: int,
    channels: int = 3,
    lr_dir: str = "",
    include: Sequence[str] = (),
    max_images: int = 0,
    jpeg_quality: int = 0,
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, LR, HR) uint8 triples; LR is the MATLAB bicubic downscale unless ``lr_dir`` is given,
    then saved once as a 4:2:0 JPEG at ``jpeg_quality`` when that is > 0 (noise-level models)."""
    root = Path(hr_dir)
    if not root.is_dir():
        raise DataError(f"{printable(root)}: no such folder")
    degrade = Degradation(scale, "bicubic")
    out: list[tuple[str, np.ndarray, np.ndarray]] = []
    for path in list_images(root):
        rel = path.relative_to(root).as_posix()
        if include and not matches(rel, include):
            continue
        try:
            hr = modcrop(read_image(str(path), channels), scale)
            if lr_dir:
                found = find_lr(Path(lr_dir), Path(rel), scale)
                if found is None:
                    raise DataError(f"{printable(path)}: no LR image for it under {printable(lr_dir)}")
                path = found
                lr = read_image(str(found), channels)
                hr = hr[: lr.shape[0] * scale, : lr.shape[1] * scale]
            else:
                lr = degrade(hr)
            if jpeg_quality:
                lr = jpeg_compress(lr, jpeg_quality)
        except (OSError, ValueError) as exc:
            if isinstance(exc, DataError):
                raise
            reason = printable(str(exc))
            raise DataError(f"{printable(path)}: unreadable validation image ({reason})") from None
        out.append((rel, lr, hr))
        if max_images and len(out) >= max_images:
            break
    if not out:
        raise DataError(f"no validation images in {printable(root)}")
    return out
