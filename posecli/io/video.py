"""Video files in: frames of a video file, upright, in exact ranges (annotated videos out:
:mod:`posecli.io.video_sink`)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from ..errors import InputError
from .paths import check_file, utf8_clean
from .video_resume import FfmpegTail, ends_early

#: OpenCV's FFmpeg log level while posecli decodes (-8: quiet); posecli reports decoding
#: problems itself. An OPENCV_FFMPEG_LOGLEVEL already in the environment (e.g. 32) wins.
FFMPEG_LOG_LEVEL = "-8"


def quiet_ffmpeg() -> None:
    """Keep FFmpeg's own log lines off stderr (see :data:`FFMPEG_LOG_LEVEL`)."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", FFMPEG_LOG_LEVEL)


@contextlib.contextmanager
def opencv_path(path: Path, directory: bool = False):
    """A name for ``path`` that OpenCV accepts: the path itself, or where it is not valid
    UTF-8 (OpenCV crashes on such names) ``/proc/self/fd/N`` of a descriptor opened here,
    else a temporary symbolic link with an ASCII name. ``directory``: ``path`` is a folder
    (the name is then one to create files in)."""
    text = str(path)
    if utf8_clean(text):
        yield text
        return
    try:
        fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    except OSError as exc:
        raise InputError(f"cannot open ({exc.strerror})", path=path) from None
    try:
        if os.path.isdir("/proc/self/fd"):
            yield f"/proc/self/fd/{fd}"
            return
    finally:
        os.close(fd)
    with tempfile.TemporaryDirectory(prefix="posecli-") as tmp:  # no /proc: a link with a plain name
        link = os.path.join(tmp, "dir" if directory else "input" + path.suffix.encode("ascii", "ignore").decode())
        os.symlink(os.path.abspath(path), link)
        yield link


class VideoSource:
    """Frames of one video file, from ``start`` to ``end`` seconds, every ``step``-th frame.

    The file is opened once here to check it and read its properties (an empty or
    unreadable file raises :class:`InputError`); each iteration opens its own capture and
    releases it in ``finally``. Iterating yields ``(index, timestamp_s, frame)`` with
    ``index`` the frame number in the whole video and ``frame`` (H, W, 3) uint8 BGR.

    Timestamps are the container's presentation times (variable frame rates keep each
    frame's own time); ``end`` compares against them, ``start`` seeks to frame
    ``round(start * fps)`` (the average rate).

    A truncated or corrupt video yields every frame it can decode, then stops without
    raising: ``stopped_early`` is True and ``error`` says where (check them after the loop).

    Frames come upright: a rotation in the container (phone videos) is applied, and
    ``size_wh`` is the upright size; ``rotation`` says by how much (degrees clockwise).

    ``decode_threads``: FFmpeg's decoding threads (None: its own choice, every core). One
    thread spends less CPU time per frame (no hand-over between threads); worth it where
    the cores are busy with the network anyway (see :func:`decode_threads_for`).
    """

    decode_threads: int | None = None

    def __init__(self, path: str | Path, start: float | None = None, end: float | None = None, step: int = 1,
                 *, first_frame: int | None = None, stop_frame: int | None = None):
        """``first_frame``/``stop_frame``: frames ``[first_frame, stop_frame)`` by index
        instead of ``start``/``end`` seconds (cutting a video into exact ranges)."""
        self.path = check_file(path)
        if first_frame is not None and first_frame < 0 or stop_frame is not None and stop_frame < 1:
            raise InputError(f"bad frame range [{first_frame}, {stop_frame})")
        if step < 1:
            raise InputError(f"step must be at least 1, got {step}")
        if start is not None and start < 0:
            raise InputError(f"start must be >= 0 seconds, got {start}")
        if end is not None and end <= (start or 0.0):
            raise InputError(f"end ({end} s) must be after start ({start or 0.0} s)")
        self.step = int(step)
        with opencv_path(self.path) as name:
            fps, count, first = self._probe(name)
        self.fps = fps if fps > 0 and np.isfinite(fps) else 0.0
        self.frame_count = max(count, 0)  # as the container says; 0 when unknown
        self.size_wh = (int(first.shape[1]), int(first.shape[0]))
        self.start_frame = int(round(start * self._rate)) if start else 0
        self.end = end  # frames from this time on are left out (by each frame's own time)
        self.end_frame = int(round(end * self._rate)) if end is not None else None  # for the count
        self.stop_frame = stop_frame  # frames from this index on are left out
        if first_frame is not None:
            self.start_frame = int(first_frame)
        if stop_frame is not None:
            self.end_frame = int(stop_frame) if self.end_frame is None else min(self.end_frame, int(stop_frame))
        if self.frame_count and self.start_frame >= self.frame_count and start and start < self.duration:
            self.start_frame = self.frame_count - 1  # inside the last frame (round() went past it)
        if self.frame_count and self.start_frame >= self.frame_count:
            raise InputError(f"start {start} s is past the end of the video ({self.duration:.2f} s)", path=self.path)
        self.stopped_early = False
        self.error: str | None = None
        self.frames_read = 0
        self.last_index: int | None = None

    def _probe(self, name: str) -> tuple[float, int, np.ndarray]:
        """Frame rate, frame count and first frame, from one short-lived capture."""
        cap = _open_capture(name)
        try:
            if not cap.isOpened():
                raise InputError("not a readable video (corrupt or unsupported format)", path=self.path)
            self.rotation = _rotation(cap)
            fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            ok, first = cap.read()
            if not ok or first is None or first.size == 0:
                raise InputError("video has no decodable frames", path=self.path)
        finally:
            cap.release()
        return fps, count, first

    @property
    def _rate(self) -> float:
        return self.fps or 25.0

    @property
    def duration(self) -> float:
        """Length in seconds according to the container (0 when unknown)."""
        return self.frame_count / self._rate if self.frame_count else 0.0

    @property
    def expected_frames(self) -> int | None:
        """How many frames iteration should yield (None when the frame count is unknown)."""
        stop = self.frame_count or None
        if self.end_frame is not None:
            stop = self.end_frame if stop is None else min(stop, self.end_frame)
        if stop is None:
            return None
        return max(0, -(-(stop - self.start_frame) // self.step))

    def info(self) -> dict:
        """Plain description for result headers (``rotation`` only for a rotated video)."""
        info = {"file": str(self.path), "width": self.size_wh[0], "height": self.size_wh[1],
                "fps": round(self.fps, 4), "frame_count": self.frame_count}
        if self.rotation:
            info["rotation"] = self.rotation
        return info

    def __iter__(self) -> Iterator[tuple[int, float, np.ndarray]]:
        self.stopped_early = False
        self.error = None
        self.frames_read = 0
        self.last_index = None
        with opencv_path(self.path) as name:
            yield from self._frames(_open_capture(name, self.decode_threads))

    def _frames(self, cap) -> Iterator[tuple[int, float, np.ndarray]]:
        try:
            if not cap.isOpened():
                raise InputError("not a readable video (corrupt or unsupported format)", path=self.path)
            index = self._seek(cap, self.start_frame)
            last_t: float | None = None  # time of the last frame decoded
            resumed = False
            while True:
                wanted = (index - self.start_frame) % self.step == 0
                if wanted:
                    ok, frame = cap.read()
                    ok = ok and frame is not None
                else:
                    ok = cap.grab()  # decode only, no conversion: a frame we skip
                if not ok:
                    if not resumed and self._ends_early(index, last_t):  # damage in the middle?
                        resumed = True
                        tail = FfmpegTail.start(self.path, index, self._rate, self.size_wh)
                        if tail is not None:  # FFmpeg goes on past it: the same frame again
                            cap.release()
                            cap = tail
                            continue
                    self._check_end(index, last_t)
                    return
                if self.stop_frame is not None and index >= self.stop_frame:
                    return
                t = last_t = self._timestamp(cap, index)
                if self.end is not None and t >= self.end - 1e-6:
                    return
                if wanted:
                    self.frames_read += 1
                    self.last_index = index
                    yield index, t, frame
                index += 1
        finally:
            cap.release()

    def _timestamp(self, cap, index: int) -> float:
        """Seconds of the frame just read: the container's own time (right for variable
        frame rates), else ``index / fps``."""
        ms = cap.get(cv2.CAP_PROP_POS_MSEC)
        if np.isfinite(ms) and ms >= 0 and (ms > 0 or index == 0):
            return ms / 1000.0
        return index / self._rate

    def _seek(self, cap, target: int) -> int:
        """Move ``cap`` to frame ``target``; returns the index of the next frame read."""
        if target <= 0:
            return 0
        if cap.set(cv2.CAP_PROP_POS_FRAMES, target) and int(cap.get(cv2.CAP_PROP_POS_FRAMES)) == target:
            return target
        cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        for i in range(target):  # seeking unsupported: decode our way there
            if not cap.grab():
                return i  # the next read fails too and records where it stopped
        return target

    def _ends_early(self, index: int, last_t: float | None) -> bool:
        """A stop before the container's end (by time: see :func:`ends_early`)."""
        stop = self.frame_count if self.end_frame is None else min(self.frame_count, self.end_frame)
        return ends_early(index, last_t, self.frame_count, stop, self._rate)

    def _check_end(self, index: int, last_t: float | None = None) -> None:
        """Record a stop before the end the container announced."""
        if self._ends_early(index, last_t):
            self.stopped_early = True
            self.error = (f"stopped at frame {index} of {self.frame_count}: "
                          f"the rest could not be decoded (truncated or corrupt)")


def _open_capture(name: str, threads: int | None = None):
    """A capture of ``name`` (see :func:`opencv_path`) that turns frames upright by the
    container's rotation (phone videos), as players do. OpenCV's FFmpeg backend does it by
    default; asked for explicitly here. ``threads``: decoding threads (None: FFmpeg's choice;
    ignored by a backend that cannot set them)."""
    cap = None
    if threads and hasattr(cv2, "CAP_PROP_N_THREADS"):
        cap = cv2.VideoCapture(name, cv2.CAP_ANY, [cv2.CAP_PROP_N_THREADS, int(threads)])
        if not cap.isOpened():
            cap = None  # a backend without the property refuses it: open without
    if cap is None:
        cap = cv2.VideoCapture(name)
    if hasattr(cv2, "CAP_PROP_ORIENTATION_AUTO"):
        cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    return cap


#: Frames up to this many pixels (1920x1088) decode on one thread while the network runs on
#: the CPU: 1280x720 mp4v took 0.93 ms of CPU per frame on one thread vs 1.51 ms on two,
#: H.264 1.79 vs 1.94 ms, and one thread still decodes several hundred such frames a second.
#: Larger frames keep FFmpeg's threads, lest decoding become the slowest stage.
ONE_THREAD_MAX_PIXELS = 1920 * 1088


def decode_threads_for(size_wh: tuple[int, int], network_on_cpu: bool) -> int | None:
    """FFmpeg decoding threads for frames of ``size_wh`` (see :data:`ONE_THREAD_MAX_PIXELS`)."""
    if network_on_cpu and size_wh[0] * size_wh[1] <= ONE_THREAD_MAX_PIXELS:
        return 1
    return None


def _rotation(cap) -> int:
    """Degrees (clockwise: 0, 90, 180, 270) the frames are turned to be upright."""
    if not hasattr(cv2, "CAP_PROP_ORIENTATION_META"):
        return 0
    value = cap.get(cv2.CAP_PROP_ORIENTATION_META)
    return round(value) % 360 if np.isfinite(value) and value > 0 else 0


def iter_video(path: str | Path, start: float | None = None, end: float | None = None,
               step: int = 1) -> Iterator[tuple[int, float, np.ndarray]]:
    """``(index, timestamp_s, frame)`` of a video; see :class:`VideoSource`."""
    return iter(VideoSource(path, start, end, step))
