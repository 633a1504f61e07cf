"""What a SOURCE string names: a video file, a camera, a stream URL or a folder/glob of frames.

:func:`parse_source` only reads the string (and whether a path exists); :func:`open_source`
opens it and returns an object with the interface of :class:`~posecli.io.video.VideoSource`
(``name``, ``fps``, ``size_wh``, ``expected_frames``, ``info()``, ``stopped_early``,
``error``, and iteration over ``(index, timestamp_s, image[, meta])``) plus ``live``:
True for cameras and streams, whose frames arrive at their own pace and never end by
themselves.

Rules, in order: ``N`` (digits) or ``/dev/videoN`` is a camera; ``scheme://...`` is a
stream (:data:`STREAM_SCHEMES`; any other scheme is refused); a path with ``*``, ``?`` or
``[`` is a glob of frames; an existing folder is a folder of frames; anything else is a
video file. Write ``./0`` for a video file named ``0``.
"""

from __future__ import annotations

import glob as globlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .paths import is_image
from .urls import redact, url_stem

STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp")
DEFAULT_FRAME_FPS = 25.0  # frame rate of a folder of frames when none is given

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_DEVICE = re.compile(r"^/dev/video(\d+)$")
_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class SourceSpec:
    """A parsed SOURCE: ``kind`` is ``file``, ``camera``, ``stream`` or ``frames``.

    ``text``: as given, with a stream URL's credentials hidden (:func:`~posecli.io.urls.redact`):
    the name every message, result and file name uses. ``camera``: index (``0``) or device path (``/dev/video0``).
    ``url``: the stream address, credentials included (to connect; never shown). ``path``: the file or folder. ``pattern``: the glob.
    """

    kind: str
    text: str
    camera: int | str | None = None
    url: str | None = None
    path: Path | None = None
    pattern: str | None = None

    @property
    def live(self) -> bool:
        """Cameras and streams: frames arrive in real time and may be dropped."""
        return self.kind in ("camera", "stream")

    @property
    def stem(self) -> str:
        """A short name for output files: ``clip``, ``camera0``, ``192.168.1.5_554_live``, ``frames``."""
        if self.kind == "file":
            return self.path.stem
        if self.kind == "frames":
            return (self.path.name if self.path is not None else Path(self.pattern).parent.name) or "frames"
        if self.kind == "camera":
            return f"camera{self.camera}" if isinstance(self.camera, int) else Path(self.camera).name
        return url_stem(self.url)


def parse_source(source: str | Path | int) -> SourceSpec:
    """Classify a SOURCE string (see the module docstring); :class:`InputError` for an
    unsupported scheme or an empty string."""
    if isinstance(source, int) and not isinstance(source, bool):
        source = str(source)
    text = str(source)
    if not text.strip():
        raise InputError("empty source (give a file, a camera number, a stream URL or a folder of frames)")
    if text.isdigit():
        return SourceSpec("camera", text, camera=int(text))
    if _DEVICE.match(text):
        return SourceSpec("camera", text, camera=text)
    m = _SCHEME.match(text)
    if m:
        scheme = m.group(1).lower()
        if scheme not in STREAM_SCHEMES:
            raise InputError(f"unsupported scheme '{scheme}://' (use {', '.join(s + '://' for s in STREAM_SCHEMES)})",
                             path=redact(text))
        host = text[m.end():].split("/", 1)[0].split("?", 1)[0]
        if not host:
            raise InputError("no host in the URL", path=redact(text))
        return SourceSpec("stream", redact(text), url=scheme + text[m.end() - 3:])
    if isinstance(source, str) and _GLOB_CHARS.search(text) and not Path(text).exists():
        return SourceSpec("frames", text, pattern=text)
    path = Path(text)
    if path.is_dir():
        return SourceSpec("frames", text, path=path)
    return SourceSpec("file", text, path=path)


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
    if fps is not None and (not np.isfinite(fps) or fps <= 0):
        raise InputError(f"fps must be a positive number, got {fps}")
    if fps is not None and spec.kind != "frames":
        raise InputError("fps is for folders of frames (videos, cameras and streams have their own)", path=spec.text)
    if spec.live:
        if start or end is not None or step != 1:
            raise InputError("start, end and step select parts of files; a live source has none "
                             "(stop it with a duration or a frame count)", path=spec.text)
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
