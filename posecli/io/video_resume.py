"""Going on past damage in the middle of a video file, as FFmpeg does.

OpenCV's capture gives up for good at a run of packets that do not decode (a damaged middle:
every later read fails, and seeking decodes through the damage again), while FFmpeg conceals
the damage and goes on. When a video stops before its container's end, :class:`FfmpegTail`
decodes the rest with the FFmpeg program, at the container's frame rate from the frame that
failed, behind the few capture calls :class:`~posecli.io.video.VideoSource` makes.

:func:`ends_early` says whether a stop is before the container's end: by the time of the
last frame read, not by the frame count alone, which Matroska and other containers without
an index only estimate (duration x rate; a variable frame rate gives fewer frames).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np

from .ffmpeg import find_ffmpeg

#: A stop within this many frame periods (plus END_SLACK_S) of the container's duration is
#: its end, not a truncation.
END_SLACK_FRAMES = 2
END_SLACK_S = 0.1


def ends_early(index: int, last_t: float | None, frame_count: int, stop: int, rate: float) -> bool:
    """True when reading stopped at frame ``index`` (the last frame read at ``last_t``
    seconds, None when none) before frame ``stop`` of ``frame_count`` the container
    announced at ``rate`` frames per second, and before its duration (see the module doc)."""
    if not frame_count or index >= stop:
        return False
    if last_t is None:
        return True
    slack = END_SLACK_FRAMES / rate + END_SLACK_S
    return last_t + slack < stop / rate


class FfmpegTail:
    """Frames ``first`` on of the video at ``path``, decoded by FFmpeg at ``rate`` frames per
    second (constant: frame k is at ``(first + k) / rate`` s), ``size_wh`` upright, with
    OpenCV's capture calls (``isOpened``, ``read``, ``grab``, ``get(CAP_PROP_POS_MSEC)``,
    ``release``). None from :meth:`start` when there is no FFmpeg."""

    def __init__(self, proc: subprocess.Popen, first: int, rate: float, size_wh: tuple[int, int]):
        self._proc, self._next, self._rate, self._size_wh = proc, first, rate, size_wh
        self._ms = 0.0

    @classmethod
    def start(cls, path: Path, first: int, rate: float, size_wh: tuple[int, int]) -> FfmpegTail | None:
        ffmpeg = find_ffmpeg()
        if ffmpeg is None:
            return None
        w, h = size_wh
        cmd = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "quiet", "-ss", f"{first / rate:.6f}", "-i", str(path),
               "-map", "0:v:0", "-vf", f"scale={w}:{h}", "-vsync", "cfr", "-r", f"{rate:.6f}",
               "-f", "rawvideo", "-pix_fmt", "bgr24", "pipe:1"]
        try:  # its own session: Ctrl-C reaches posecli, which stops it
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
        except OSError:
            return None
        return cls(proc, first, rate, size_wh)

    def isOpened(self) -> bool:  # OpenCV's name
        return True

    def read(self) -> tuple[bool, np.ndarray | None]:
        w, h = self._size_wh
        data = self._proc.stdout.read(w * h * 3)
        if len(data) < w * h * 3:
            return False, None
        self._ms = self._next / self._rate * 1000.0
        self._next += 1
        return True, np.frombuffer(data, np.uint8).reshape(h, w, 3).copy()

    def grab(self) -> bool:
        return self.read()[0]

    def get(self, prop: int) -> float:
        return self._ms if prop == cv2.CAP_PROP_POS_MSEC else 0.0

    def release(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.stdout.close()
        self._proc.wait()
