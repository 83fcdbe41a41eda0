"""What a path is when it is not a plain readable file, and paths made safe to print.

Inputs come from users and from folders nobody checked: FIFOs (opening one blocks forever), links
to devices (``/dev/zero`` never ends), dangling links, folders without read permission, and names
holding newlines or terminal escapes. These helpers name each case in words and escape what a
terminal or a log would otherwise interpret.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def printable(path: str | os.PathLike[str]) -> str:
    r"""``path`` as text safe for a terminal and a one-line log: control characters escaped.

    A newline becomes ``\n``, an escape ``\x1b``, undecodable bytes ``\xNN``; other text is kept.
    """
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
    if text.isprintable():
        return text
    out: list[str] = []
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, kept by surrogateescape
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(repr(ch)[1:-1])  # \n, \t, \x1b, \u2028, ...
    return "".join(out)


def file_problem(path: str | os.PathLike[str], what: str = "file") -> str | None:
    """Why ``path`` is not a regular file that can be opened, in words; None when it is one.

    ``what`` names the expected thing in the folder case ("is a directory, not an image").
    Reading permission is left to the caller's ``open`` (root may read anything).
    """
    p = os.fspath(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        if os.path.islink(p):
            return f"broken symbolic link (it points to {printable(os.readlink(p))}, which does not exist)"
        return "no such file"
    except PermissionError:
        return "permission denied (a folder on the way cannot be entered)"
    except NotADirectoryError:
        return "no such file (a part of the path is not a folder)"
    except OSError as exc:
        return f"cannot be reached ({exc.strerror or exc})"
    if stat.S_ISDIR(st.st_mode):
        return f"is a directory, not {'an' if what[:1] in 'aeiou' else 'a'} {what}"
    if stat.S_ISREG(st.st_mode):
        return None
    kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
    if os.path.islink(p):
        target = printable(os.path.realpath(p))
        return f"not a regular file: a symbolic link to {target}, {kind}"
    return f"not a regular file: {kind}"


def folder_problem(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` is not a folder whose entries can be listed; None when it is one."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        return "no such folder" if not os.path.islink(p) else "broken symbolic link"
    except PermissionError:
        return "permission denied (a folder on the way cannot be entered)"
    except OSError as exc:
        return f"cannot be reached ({exc.strerror or exc})"
    if not stat.S_ISDIR(st.st_mode):
        return "not a folder"
    try:
        with os.scandir(p):
            pass
    except PermissionError:
        return "permission denied (cannot list the folder)"
    except OSError as exc:
        return f"cannot list the folder ({exc.strerror or exc})"
    return None
