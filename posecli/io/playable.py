"""Videos written sanely: a frame rate an encoder takes, and a finished file that plays.

Check a finished video before it replaces anything: it opens and its first frame decodes.

FFmpeg can exit 0 after a full disk cost it the index (an MP4 without its ``moov`` atom), and
OpenCV's writer never reports a failed write: the file is read back before it is renamed
into place, so that a broken file never replaces a good one.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2


def unplayable(path: Path, frames_written: int) -> str | None:
    """Why the video at ``path`` (``frames_written`` frames sent to the encoder) does not play,
    or None when it opens and, if frames were written, its first frame decodes."""
    from .video import opencv_path

    try:
        with opencv_path(path) as name:
            capture = cv2.VideoCapture(name, cv2.CAP_FFMPEG)
            try:
                if not capture.isOpened():
                    return "the finished file cannot be opened (is the disk full?)"
                if frames_written and not capture.read()[0]:
                    return "the finished file holds no frame that decodes (is the disk full?)"
            finally:
                capture.release()
    except Exception as exc:  # noqa: BLE001 - any failure to read it back means it is not playable
        return f"the finished file cannot be read back ({exc})"
    return None


#: Frame rates an annotated video may be written at; a source declaring another (an AVI
#: saying 1e-9 or 1e9 fps) is written at DEFAULT_WRITE_FPS, with a note.
WRITE_FPS_RANGE = (0.1, 1000.0)
DEFAULT_WRITE_FPS = 25.0


def writable_fps(fps: float | None, notes: list[str]) -> float:
    """``fps`` when an encoder can take it, else :data:`DEFAULT_WRITE_FPS` (a line added to
    ``notes`` when the source declared a rate out of :data:`WRITE_FPS_RANGE`)."""
    low, high = WRITE_FPS_RANGE
    if fps is None or not math.isfinite(fps) or fps <= 0:
        return DEFAULT_WRITE_FPS  # unknown: the usual default, nothing to say
    if low <= fps <= high:
        return float(fps)
    notes.append(f"the source declares {fps:g} frames per second, outside {low:g}-{high:g}: "
                 f"the annotated video is written at {DEFAULT_WRITE_FPS:g}")
    return DEFAULT_WRITE_FPS
