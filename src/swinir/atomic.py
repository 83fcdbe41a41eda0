"""Atomic, durable file writes: a reader never sees a half-written output or checkpoint.

Every file swinir writes goes through :class:`atomic_path`: the data is written to a hidden temporary
file next to the target, flushed to the disk (``fsync``), renamed onto the target, and the rename is
made durable by syncing the folder. After a crash or a power loss the target is either the old file
or the complete new one, never an empty or truncated file.

Temporary files carry a name pattern of our own, ``.NAME.swinir-PID-RANDOM.tmp``, so that a later run
can remove the ones a killed process left behind (:func:`remove_stale_temps`) without touching
anything else, nor the temporary file of a process that is still writing.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
from pathlib import Path

_TEMP_RE = re.compile(r"^\..*\.swinir-(?P<pid>\d+)-[A-Za-z0-9_]+\.tmp$")
# Errors that mean the disk (or the user's quota) is full: the run cannot go on writing.
_NO_SPACE = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


class WriteError(OSError):
    """A file that could not be written; ``str()`` is one line naming the file and the reason."""

    def __init__(self, path: str | os.PathLike[str], code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.path = Path(path)
        self.reason = reason

    @property
    def disk_full(self) -> bool:
        """True when the disk or quota is full, so every further write would fail too."""
        return self.errno in _NO_SPACE

    def __str__(self) -> str:
        from .paths import printable

        return f"{printable(self.path)}: {self.reason}"


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk or the quota is full."""
    return isinstance(exc, OSError) and exc.errno in _NO_SPACE


class atomic_path:
    """Context manager giving a temporary path next to ``path``; renamed onto it on success only.

    On success the file's data and the folder entry are synced to the disk before the block exits.
    A full disk inside the block, and any ``OSError`` while creating or finishing the file, becomes
    a :class:`WriteError` naming ``path`` ("No space left on device", "Permission denied", ...);
    other exceptions of the block pass unchanged. The temporary file is removed on every failure.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.tmp: Path | None = None

    def __enter__(self) -> Path:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=temp_prefix(self.path), suffix=".tmp", dir=self.path.parent)
        except OSError as exc:
            raise _write_error(self.path, exc) from None
        os.close(fd)
        self.tmp = Path(name)
        return self.tmp

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> bool:
        assert self.tmp is not None
        if exc is None:
            try:
                # mkstemp makes the file private (0600); give the result the permissions open() would.
                os.chmod(self.tmp, 0o666 & ~_current_umask())
                make_durable(self.tmp)
                os.replace(self.tmp, self.path)
                sync_folder(self.path.parent)
                return False
            except OSError as err:
                self.tmp.unlink(missing_ok=True)
                raise _write_error(self.path, err) from None
        self.tmp.unlink(missing_ok=True)
        if is_disk_full(exc) and not isinstance(exc, WriteError):
            # Other errors of the block (a network error while downloading, ...) pass unchanged.
            raise _write_error(self.path, exc) from None  # type: ignore[arg-type]
        return False


def temp_prefix(path: Path) -> str:
    """Start of the temporary file name for ``path`` (the name is cut so the result stays short)."""
    return f".{path.name[:100]}.swinir-{os.getpid()}-"


def make_durable(path: str | os.PathLike[str]) -> None:
    """Flush a written file's data to the disk (``fsync``)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_folder(folder: str | os.PathLike[str]) -> None:
    """Make renames and new entries in ``folder`` durable; a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # Windows cannot open folders; its renames are durable on NTFS anyway
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EBADF):  # file systems without folder sync
            raise
    finally:
        os.close(fd)


def remove_stale_temps(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files that dead swinir processes left in ``folder``; returns them.

    Only names of our pattern are touched, and only when the process that made them is gone
    (a run still writing into the same folder keeps its files). A missing folder is no error.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return removed
    for entry in entries:
        m = _TEMP_RE.match(entry.name)
        if m is None or _process_alive(int(m.group("pid"))):
            continue
        try:
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue  # gone already, or not ours to remove
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid() or os.name == "nt":  # on Windows os.kill would end the process
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's live process, or a PID we cannot check: leave the file
    return True


def _write_error(path: Path, exc: OSError) -> WriteError:
    if isinstance(exc, WriteError):
        return exc
    code = exc.errno or errno.EIO
    reason = (
        "No space left on device" if code == errno.ENOSPC else (exc.strerror or str(exc) or "write failed")
    )
    return WriteError(path, code, reason)


def _current_umask() -> int:
    mask = os.umask(0o022)  # the only portable way to read the umask is to set it and restore it
    os.umask(mask)
    return mask
