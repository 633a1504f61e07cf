"""Frames from images, videos and folders; files are checked and named in every error."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from .errors import InputError

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


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file to (H, W, 3) uint8 BGR, upright as viewers show it.

    Grayscale, 16-bit and alpha images are converted; the EXIF orientation is applied.
    """
    p = check_file(path)
    try:
        data = np.fromfile(p, dtype=np.uint8)  # works with any file name, unlike cv2.imread
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", path=p) from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise InputError("not a readable image (corrupt or unsupported format)", path=p)
    return image
