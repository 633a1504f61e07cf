"""Opening a SOURCE (see :mod:`posecli.io.source_spec` for what the string names): a video
file, a camera, a stream URL or a folder/glob of frames.
"""

from __future__ import annotations

import glob as globlib
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputError
from .paths import is_image
from .source_spec import SourceSpec, parse_source

DEFAULT_FRAME_FPS = 25.0  # frame rate of a folder of frames when none is given


def check_selection(spec: SourceSpec, *, fps: float | None = None, start: float | None = None,
                    end: float | None = None, step: int = 1) -> None:
    """:class:`ConfigError` unless ``fps`` (folders of frames only) and ``start``/``end``/``step``
    (files and folders only) suit the source ``spec``."""
    if fps is not None and (not np.isfinite(fps) or fps <= 0):
        raise ConfigError(f"fps must be a positive number, got {fps}", param="fps")
    if fps is not None and spec.kind != "frames":
        raise ConfigError(f"fps={fps} is for folders of frames (videos, cameras and streams have their own rate)",
                          path=spec.text, param="fps")
    if spec.live and (start or end is not None or step != 1):
        raise ConfigError("start, end and step select parts of files; a live source has none "
                          "(stop it with duration or max_frames)", path=spec.text, param="start")


def open_source(source: str | Path | int | SourceSpec, *, fps: float | None = None, start: float | None = None,
                end: float | None = None, step: int = 1, reconnect: int = 3, timeout_s: float = 10.0,
                on_note=None):
    """Open a SOURCE for reading frames; :class:`InputError` when it cannot be opened.

    ``fps``: frame rate of a folder of frames (default :data:`DEFAULT_FRAME_FPS`; refused
    for other kinds, which know their own). ``start``/``end``/``step``: a part of a file or
    folder (refused for live sources). ``reconnect``: attempts after a live source fails;
    ``timeout_s``: how long opening or reading a live source may wait; ``on_note``: called
    with a line of text at each reconnection attempt.
    """
    spec = source if isinstance(source, SourceSpec) else parse_source(source)
    check_selection(spec, fps=fps, start=start, end=end, step=step)
    if spec.live:
        from .live import LiveCapture

        return LiveCapture(spec, reconnect=reconnect, timeout_s=timeout_s, on_note=on_note)
    if spec.kind == "frames":
        return FrameFolder(spec, fps=fps or DEFAULT_FRAME_FPS, start=start, end=end, step=step)
    from .video import VideoSource

    return VideoSource(spec.path, start, end, step)


def natural_key(name: str) -> tuple:
    """Sort key putting ``frame_2`` before ``frame_10`` (digit runs compared as numbers)."""
    parts = re.split(r"(\d+)", name)
    return tuple((0, int(p), p) if p.isdigit() else (1, 0, p.lower()) for p in parts)


class FrameFolder:
    """The images of a folder (or matching a glob), in natural order, as video frames.

    Frame ``i`` of the sorted list has timestamp ``i / fps``. Files that are not images
    (by extension) and hidden files are left out (``skipped``). An image that cannot be
    decoded is left out too and listed in ``unreadable`` as ``(path, message)`` (the other
    frames keep their index). Frames keep their own size: results are in each image's own
    pixels, so a folder may mix sizes.

    Iteration yields ``(index, timestamp_s, image, {"source": path})``.
    """

    live = False

    def __init__(self, spec: SourceSpec, fps: float = DEFAULT_FRAME_FPS, start: float | None = None,
                 end: float | None = None, step: int = 1):
        if step < 1:
            raise InputError(f"step must be at least 1, got {step}")
        if end is not None and end <= (start or 0.0):
            raise InputError(f"end ({end} s) must be after start ({start or 0.0} s)")
        self.spec = spec
        self.fps = float(fps)
        self.step = int(step)
        if spec.pattern is not None:
            found = [Path(p) for p in globlib.glob(spec.pattern, recursive=True)]
            where = spec.pattern
            if not found:
                raise InputError("no files match this pattern", path=where)
        else:
            if not spec.path.is_dir():
                raise InputError("no such folder", path=spec.path)
            try:
                found = list(spec.path.iterdir())
            except OSError as exc:
                raise InputError(f"cannot list folder ({exc.strerror})", path=spec.path) from None
            where = str(spec.path)
        files = [p for p in found if p.is_file() and not p.name.startswith(".")]
        self.files = sorted((p for p in files if is_image(p)), key=lambda p: natural_key(str(p)))
        self.skipped = sorted(p for p in files if not is_image(p))
        if not self.files:
            raise InputError("no image files (frames) here", path=where)
        self.first = round(start * self.fps) if start else 0
        self.stop = len(self.files) if end is None else min(len(self.files), round(end * self.fps))
        if self.first >= len(self.files):
            raise InputError(f"start {start} s is past the last frame ({len(self.files)} frames at {self.fps:g} fps)",
                             path=where)
        self.name = where
        self.unreadable: list[tuple[Path, str]] = []
        self.size_wh = self._first_size()
        self.stopped_early = False
        self.error: str | None = None

    def _first_size(self) -> tuple[int, int]:
        from .images import read_image

        for path in self.files[self.first:self.stop]:
            try:
                image = read_image(path)
            except InputError:
                continue
            return int(image.shape[1]), int(image.shape[0])
        raise InputError("none of the image files could be decoded", path=self.name)

    @property
    def expected_frames(self) -> int:
        return max(0, -(-(self.stop - self.first) // self.step))

    def info(self) -> dict:
        return {"file": self.name, "kind": "frames", "width": self.size_wh[0], "height": self.size_wh[1],
                "fps": round(self.fps, 4), "frame_count": len(self.files)}

    def __iter__(self) -> Iterator[tuple[int, float, np.ndarray, dict]]:
        from .images import read_image

        self.unreadable = []
        for index in range(self.first, self.stop, self.step):
            path = self.files[index]
            try:
                image = read_image(path)
            except InputError as exc:
                self.unreadable.append((path, exc.message))
                continue
            yield index, index / self.fps, image, {"source": str(path)}
