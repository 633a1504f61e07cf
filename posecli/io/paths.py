"""Input paths: which files are images or videos, and whether a file can be read."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from ..errors import InputError

IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".jp2", ".pgm", ".ppm", ".pbm"})
VIDEO_EXTS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"})


def check_file(path: str | Path, *, stream_ok: bool = False) -> Path:
    """``path`` as a Path if it is a readable, non-empty file; else :class:`InputError`.

    ``stream_ok``: a FIFO or a character device (``/dev/stdin`` fed by a pipe) is accepted
    too, to be read to its end; otherwise it is refused as not a regular file.
    """
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise InputError("no such file", path=p) from None
    except OSError as exc:
        problem = "symbolic link loop" if exc.errno == errno.ELOOP else f"cannot read ({exc.strerror})"
        raise InputError(problem, path=p) from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError("is a directory, not a file", path=p)
    if not stat.S_ISREG(st.st_mode):
        if stream_ok and (stat.S_ISFIFO(st.st_mode) or stat.S_ISCHR(st.st_mode)):
            return p
        raise InputError(not_regular(st.st_mode), path=p)
    if st.st_size == 0:
        raise InputError("file is empty (0 bytes)", path=p)
    if not os.access(p, os.R_OK):
        raise InputError("permission denied", path=p)
    return p


def not_regular(mode: int) -> str:
    """What a file of ``mode`` (``st_mode``, not a regular file) is, as a problem to report."""
    kind = {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a device", stat.S_IFBLK: "a block device",
            stat.S_IFSOCK: "a socket"}.get(stat.S_IFMT(mode), "not a regular file")
    return f"is {kind}, not a regular file"


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTS


def is_image(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTS


def utf8_clean(text: str) -> bool:
    """True when ``text`` (a file name) is valid UTF-8, as native libraries need."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
