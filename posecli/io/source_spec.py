"""What a SOURCE string names: a video file, a camera, a stream URL or a folder/glob of frames.

This module only reads the string (and whether a path exists); :func:`posecli.io.sources.open_source`
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

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .urls import redact, url_stem

STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp")

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
