"""The job queue: uploads wait on disk, one worker thread upscales them, results expire.

One worker, because one model run already uses every core (or the whole GPU); a second would only
make both slower and double the memory. The queue is bounded (:class:`QueueFull`, HTTP 429) and so is
the folder that holds uploads and results (:class:`StorageFull`, HTTP 503): finished results are
evicted oldest first when space is needed, and every finished job is forgotten ``keep_seconds`` after
it ended. Every job ends in exactly one of ``done``, ``failed`` (with a one-line reason) or
``cancelled``; nothing is dropped silently.

Files on disk are named by the server (``<id>.upload``, ``<id>.<format>``); a client's file name is
kept only as text for the download's name.
"""

from __future__ import annotations

import secrets
import shutil
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from ..imageio import ImageReadError, read_image, write_image
from .catalog import LoadedModels
from .settings import ModelChoice, WebSettings


class JobState(str, Enum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"
    cancelled = "cancelled"


FINAL = (JobState.done, JobState.failed, JobState.cancelled)


class QueueFull(Exception):
    """The queue holds ``max_queue`` unfinished jobs already."""


class StorageFull(Exception):
    """The temporary folder has no room for this upload, even after evicting finished results."""


class _Cancelled(Exception):
    """Raised inside the model run (from the progress callback) to stop a cancelled job."""


@dataclass(frozen=True)
class JobOptions:
    """What a client chose for one upload, already checked against the server's limits."""

    model: ModelChoice
    noise: int | str | None  # a level, "auto" (chosen per image from its JPEG tables), or None
    outscale: float  # the final factor (the model's scale when the client gave none)
    format: str  # png, webp or jpg
    quality: int
    alpha: str  # model or resize
    tta: bool = False  # self-ensemble: the 8 flips and rotations averaged (8x the time)


@dataclass
class Job:
    id: str
    filename: str  # the client's name, for display and the download name only
    options: JobOptions
    width: int
    height: int
    upload: Path
    upload_bytes: int
    created: float = field(default_factory=time.time)
    state: JobState = JobState.queued
    tiles_done: int = 0
    tiles_total: int = 0
    error: str | None = None
    result: Path | None = None
    result_bytes: int = 0
    finished: float | None = None
    noise_used: int | None = None  # the level that ran ("auto" picks one per image)
    cancel: threading.Event = field(default_factory=threading.Event)

    @property
    def out_size(self) -> tuple[int, int]:
        scale = self.options.outscale
        return max(1, round(self.width * scale)), max(1, round(self.height * scale))

    def download_name(self) -> str:
        stem = self.filename.rsplit(".", 1)[0] if "." in self.filename else self.filename
        scale = f"{self.options.outscale:g}"
        return f"{stem or 'image'}_{self.options.model.name}_x{scale}.{self.options.format}"

    def to_dict(self) -> dict[str, object]:
        if self.state is JobState.done:
            progress = 1.0
        else:
            progress = min(1.0, self.tiles_done / self.tiles_total) if self.tiles_total else 0.0
        out_w, out_h = self.out_size
        return {
            "id": self.id,
            "filename": self.filename,
            "state": self.state.value,
            "progress": round(progress, 4),
            "tiles_done": self.tiles_done,
            "tiles_total": self.tiles_total,
            "error": self.error,
            "cancel_requested": self.cancel.is_set() and self.state not in FINAL,
            "model": self.options.model.name,
            "noise": self.options.noise,
            "noise_used": self.noise_used,
            "outscale": self.options.outscale,
            "format": self.options.format,
            "tta": self.options.tta,
            "input_size": [self.width, self.height],
            "output_size": [out_w, out_h],
            "result_bytes": self.result_bytes if self.state is JobState.done else None,
            "download_name": self.download_name() if self.state is JobState.done else None,
        }


class JobQueue:
    """Jobs by id, a FIFO of waiting ones, and the worker thread that runs them."""

    def __init__(self, settings: WebSettings, folder: Path, models: LoadedModels) -> None:
        self.settings = settings
        self.folder = folder
        self.models = models
        self._jobs: dict[str, Job] = {}
        self._waiting: deque[Job] = deque()
        self._lock = threading.Condition()
        self._stop = False
        self._worker = threading.Thread(target=self._work, name="swinir-web-worker", daemon=True)
        self.completed = 0  # jobs that ended done, for the load benchmark's cross-check

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._worker.start()

    def close(self, timeout: float = 30.0) -> None:
        """Stop the worker (cancelling the running job at its next tile) and delete every file."""
        with self._lock:
            self._stop = True
            for job in self._jobs.values():
                job.cancel.set()
            self._lock.notify_all()
        if self._worker.is_alive():
            self._worker.join(timeout)
        shutil.rmtree(self.folder, ignore_errors=True)

    # -- the API's side ------------------------------------------------------------------------

    def new_upload_path(self) -> tuple[str, Path]:
        job_id = secrets.token_hex(8)
        return job_id, self.folder / f"{job_id}.upload"

    def reserve(self, nbytes: int) -> None:
        """Make room for ``nbytes`` more in the folder, evicting finished results oldest first."""
        with self._lock:
            self._expire(time.time())
            if self._unfinished() >= self.settings.max_queue:
                raise QueueFull(f"the queue is full ({self.settings.max_queue} jobs); try again later")
            if not self._make_room(nbytes):
                raise StorageFull(
                    f"no room for {nbytes} more bytes in the server's temporary folder "
                    f"(limit {self.settings.max_storage} bytes); try again when jobs have finished"
                )

    def submit(self, job: Job) -> Job:
        with self._lock:
            if self._stop:
                raise StorageFull("the server is shutting down")
            if self._unfinished() >= self.settings.max_queue:
                raise QueueFull(f"the queue is full ({self.settings.max_queue} jobs); try again later")
            self._jobs[job.id] = job
            self._waiting.append(job)
            self._lock.notify_all()
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            self._expire(time.time())
            return self._jobs.get(job_id)

    def snapshot(self, job_id: str) -> dict[str, object] | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return job.to_dict() if job is not None else None

    def snapshots(self, ids: Iterable[str]) -> list[dict[str, object]]:
        with self._lock:
            self._expire(time.time())
            return [self._jobs[i].to_dict() for i in ids if i in self._jobs]

    def cancel(self, job_id: str) -> dict[str, object] | None:
        """Cancel a waiting job now, a running one at its next tile; forget a finished one."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job.state is JobState.queued:
                self._waiting.remove(job)
                self._finish(job, JobState.cancelled, None)
            elif job.state is JobState.running:
                job.cancel.set()
            else:
                self._forget(job)
            return job.to_dict()

    def stats(self) -> dict[str, int]:
        with self._lock:
            states = [j.state for j in self._jobs.values()]
            return {
                "queued": states.count(JobState.queued),
                "running": states.count(JobState.running),
                "finished": sum(s in FINAL for s in states),
                "storage_bytes": self._used(),
                "completed_total": self.completed,
            }

    # -- bookkeeping (call with the lock held) -------------------------------------------------

    def _unfinished(self) -> int:
        return sum(j.state not in FINAL for j in self._jobs.values())

    def _used(self) -> int:
        total = 0
        for job in self._jobs.values():
            if job.state not in FINAL:
                total += job.upload_bytes
            total += job.result_bytes if job.result is not None else 0
        return total

    def _make_room(self, nbytes: int) -> bool:
        evictable = [j for j in self._jobs.values() if j.result is not None and j.state in FINAL]
        finished = sorted(evictable, key=lambda j: j.finished or 0.0)
        while self._used() + nbytes > self.settings.max_storage and finished:
            self._forget(finished.pop(0))
        return self._used() + nbytes <= self.settings.max_storage

    def _expire(self, now: float) -> None:
        for job in list(self._jobs.values()):
            if job.finished is not None and now - job.finished > self.settings.keep_seconds:
                self._forget(job)

    def _forget(self, job: Job) -> None:
        self._jobs.pop(job.id, None)
        for path in (job.upload, job.result):
            if path is not None:
                path.unlink(missing_ok=True)
        job.result = None

    def _finish(self, job: Job, state: JobState, error: str | None) -> None:
        job.state = state
        job.error = error
        job.finished = time.time()
        job.upload.unlink(missing_ok=True)
        if state is JobState.done:
            self.completed += 1
        self._lock.notify_all()

    # -- the worker ----------------------------------------------------------------------------

    def _next(self) -> Job | None:
        with self._lock:
            while not self._waiting and not self._stop:
                # Wake now and then to expire old results even when nobody asks.
                self._lock.wait(timeout=min(60.0, self.settings.keep_seconds))
                self._expire(time.time())
            if self._stop:
                return None
            job = self._waiting.popleft()
            job.state = JobState.running
            return job

    def _work(self) -> None:
        while (job := self._next()) is not None:
            try:
                state, error = self._run(job)
            except BaseException as exc:  # never leave a job running, nor the queue without a worker
                state, error = JobState.failed, f"{job.filename}: internal error ({type(exc).__name__})"
            with self._lock:
                job.upload.unlink(missing_ok=True)  # read already: its room goes to the result
                job.upload_bytes = 0
                if state is JobState.done and not self._make_room(0):
                    assert job.result is not None
                    job.result.unlink(missing_ok=True)
                    job.result = None
                    state, error = JobState.failed, "the result is larger than the server's storage limit"
                if job.id not in self._jobs:  # forgotten while running (server closing)
                    continue
                self._finish(job, state, error)

    def _run(self, job: Job) -> tuple[JobState, str | None]:
        opts = job.options
        try:
            upscaler = self.models.get(opts.model, opts.noise, opts.tta)
            # One worker owns the loaded models, so setting the alpha mode per job is safe.
            upscaler.alpha = opts.alpha
            data = read_image(job.upload, max_pixels=self.settings.max_pixels)
            if opts.noise is not None:
                # The family member for this image: the asked level, or one read from its JPEG tables.
                upscaler, choice = upscaler.choose_noise_for_file(job.upload)
                upscaler.alpha = opts.alpha
                job.noise_used = choice.level
            job.tiles_total = upscaler.count_tiles(data)

            def progress(done: int) -> None:
                if job.cancel.is_set():
                    raise _Cancelled
                job.tiles_done += done

            outscale = None if opts.outscale == upscaler.scale else opts.outscale
            result = upscaler.upscale_data(data, outscale, progress)
            del data
            if job.cancel.is_set():
                raise _Cancelled
            path = self.folder / f"{job.id}.{opts.format}"
            write_image(path, result, format=opts.format, quality=opts.quality)
            job.result, job.result_bytes = path, path.stat().st_size
            return JobState.done, None
        except _Cancelled:
            return JobState.cancelled, None
        except ImageReadError as exc:
            return JobState.failed, f"{job.filename}: {exc.reason}"
        except MemoryError:
            return JobState.failed, f"{job.filename}: out of memory while upscaling"
        except Exception as exc:  # one line for the page; the server keeps serving
            text = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            return JobState.failed, f"{job.filename}: upscaling failed ({text})"
