"""Input paths: which files are images or videos, and whether a file can be read."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InputError

IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".jp2", ".pgm", ".ppm", ".pbm"})
VIDEO_EXTS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"})


def check_file(path: str | Path) -> Path:
    """``path`` as a Path if it is a readable, non-empty file; else :class:`InputError`."""
    p = Path(path)
    if not p.exists():
        raise InputError("no such file", path=p)
    if p.is_dir():
        raise InputError("is a directory, not a file", path=p)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", path=p) from None
    if size == 0:
        raise InputError("file is empty (0 bytes)", path=p)
    if not os.access(p, os.R_OK):
        raise InputError("permission denied", path=p)
    return p


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTS


def is_image(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTS
