"""Atomic writes: all or nothing, with ordinary file permissions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from swinir.atomic import atomic_path


def test_success_renames_with_umask_permissions(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.bin"
    old = os.umask(0o022)
    try:
        with atomic_path(target) as tmp:
            assert tmp.parent == target.parent and not target.exists()
            tmp.write_bytes(b"data")
    finally:
        os.umask(old)
    assert target.read_bytes() == b"data"
    assert target.stat().st_mode & 0o777 == 0o644
    assert list(target.parent.iterdir()) == [target]


def test_failure_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [target]
