"""Atomic file writes: a reader never sees a half-written output or checkpoint."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class atomic_path:
    """Context manager giving a temporary path next to ``path``; renamed onto it on success only."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.tmp: Path | None = None

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        os.close(fd)
        self.tmp = Path(name)
        return self.tmp

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        assert self.tmp is not None
        if exc_type is None:
            # mkstemp makes the file private (0600); give the result the permissions a plain open() would.
            os.chmod(self.tmp, 0o666 & ~_current_umask())
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


def _current_umask() -> int:
    mask = os.umask(0o022)  # the only portable way to read the umask is to set it and restore it
    os.umask(mask)
    return mask
