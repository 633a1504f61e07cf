"""Video files in and out: frames of a video file, annotated video files."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from ..errors import InputError, OutputError
from .atomic import _PENDING
from .outputs import stream_target, sweep_stale, temp_path, utf8_clean
from .paths import check_file


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
    """

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
        cap = cv2.VideoCapture(name)
        try:
            if not cap.isOpened():
                raise InputError("not a readable video (corrupt or unsupported format)", path=self.path)
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
        """Plain description for result headers."""
        return {"file": str(self.path), "width": self.size_wh[0], "height": self.size_wh[1],
                "fps": round(self.fps, 4), "frame_count": self.frame_count}

    def __iter__(self) -> Iterator[tuple[int, float, np.ndarray]]:
        self.stopped_early = False
        self.error = None
        self.frames_read = 0
        self.last_index = None
        with opencv_path(self.path) as name:
            yield from self._frames(cv2.VideoCapture(name))

    def _frames(self, cap) -> Iterator[tuple[int, float, np.ndarray]]:
        try:
            if not cap.isOpened():
                raise InputError("not a readable video (corrupt or unsupported format)", path=self.path)
            index = self._seek(cap, self.start_frame)
            while True:
                wanted = (index - self.start_frame) % self.step == 0
                if wanted:
                    ok, frame = cap.read()
                    ok = ok and frame is not None
                else:
                    ok = cap.grab()  # decode only, no conversion: a frame we skip
                if not ok:
                    self._check_end(index)
                    return
                if self.stop_frame is not None and index >= self.stop_frame:
                    return
                t = self._timestamp(cap, index)
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

    def _check_end(self, index: int) -> None:
        """Record a stop before the frame count the container announced."""
        expected_stop = self.frame_count if self.end_frame is None else min(self.frame_count, self.end_frame)
        if self.frame_count and index < expected_stop:
            self.stopped_early = True
            self.error = (f"stopped at frame {index} of {self.frame_count}: "
                          f"the rest could not be decoded (truncated or corrupt)")


def iter_video(path: str | Path, start: float | None = None, end: float | None = None,
               step: int = 1) -> Iterator[tuple[int, float, np.ndarray]]:
    """``(index, timestamp_s, frame)`` of a video; see :class:`VideoSource`."""
    return iter(VideoSource(path, start, end, step))


_CONTAINERS = {  # extension -> FOURCC codes to try, best first
    ".mp4": ("mp4v",), ".m4v": ("mp4v",), ".mov": ("mp4v",), ".avi": ("MJPG", "XVID"), ".mkv": ("mp4v", "MJPG"),
}


class VideoSink:
    """An annotated video written beside ``path`` and renamed into place on :meth:`close`.

    Frames must be ``size_wh`` (others are resized). When OpenCV cannot write ``path``'s
    container, MJPG in ``.avi`` is tried and ``note`` says so; when nothing works,
    :class:`OutputError`. ``path`` is the file actually written.
    """

    def __init__(self, path: str | Path, fps: float, size_wh: tuple[int, int]):
        wanted = Path(path)
        ext = wanted.suffix.lower()
        if ext not in _CONTAINERS:
            raise OutputError(f"cannot write video as '{ext or 'no extension'}' (use .mp4 or .avi)", path=wanted)
        if not wanted.parent.is_dir():
            raise OutputError("output directory does not exist", path=wanted.parent)
        if stream_target(wanted):
            raise OutputError("is a device or pipe; annotated videos are written to files", path=wanted)
        self.size_wh = (int(size_wh[0]), int(size_wh[1]))
        self.fps = float(fps) if fps and fps > 0 else 25.0
        self.note: str | None = None
        tries = [(code, wanted) for code in _CONTAINERS[ext]]
        if ext != ".avi":
            tries.append(("MJPG", wanted.with_suffix(".avi")))
        for code, target in tries:
            sweep_stale(target)
            tmp = temp_path(target, target.suffix)
            with opencv_path(tmp.parent, directory=True) as folder:
                writer = cv2.VideoWriter(os.path.join(folder, tmp.name), cv2.VideoWriter_fourcc(*code), self.fps,
                                         self.size_wh)
            if writer.isOpened():
                _PENDING.add(tmp)
                self.path, self._tmp, self._writer, self.fourcc = target, tmp, writer, code
                if target != wanted:
                    self.note = f"OpenCV cannot write {ext} here; wrote {target.name} ({code} in AVI) instead"
                return
            writer.release()
            _unlink(tmp)
        raise OutputError(f"OpenCV cannot write video here (tried {', '.join(c for c, _ in tries)})", path=wanted)

    def write(self, image: np.ndarray) -> None:
        if (image.shape[1], image.shape[0]) != self.size_wh:
            image = cv2.resize(image, self.size_wh, interpolation=cv2.INTER_AREA)
        self._writer.write(image)

    def close(self, commit: bool = True) -> None:
        """Finish the file; rename it into place (``commit``) or delete it."""
        if self._writer is None:
            return
        self._writer.release()
        self._writer = None
        _PENDING.discard(self._tmp)
        if commit:
            try:
                os.replace(self._tmp, self.path)
            except OSError as exc:
                _unlink(self._tmp)
                raise OutputError(f"cannot write video ({exc.strerror})", path=self.path) from None
        else:
            _unlink(self._tmp)


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass
