"""Frames from images, videos and folders; files are checked and named in every error."""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from .errors import InputError
from .preprocess import as_bgr

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


# ---------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------
# A JPEG marker: 0xFF (fill bytes allowed) then a byte that is not 0x00 (a stuffed 0xFF in
# entropy-coded data) nor RST0-7 (restart markers sit inside the data).
_JPEG_MARKER = re.compile(rb"\xff+([^\x00\xd0-\xd7\xff])")
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start-of-frame markers
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_REDUCED = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}
# EXIF orientation -> how to turn the stored pixels into what viewers show.
_ORIENT = {
    2: lambda im: cv2.flip(im, 1),
    3: lambda im: cv2.rotate(im, cv2.ROTATE_180),
    4: lambda im: cv2.flip(im, 0),
    5: cv2.transpose,
    6: lambda im: cv2.rotate(im, cv2.ROTATE_90_CLOCKWISE),
    7: lambda im: cv2.flip(cv2.transpose(im), -1),
    8: lambda im: cv2.rotate(im, cv2.ROTATE_90_COUNTERCLOCKWISE),
}


@dataclass(frozen=True)
class ImageHeader:
    """What a JPEG or PNG file says about itself before decoding.

    ``kind``: ``JPEG`` or ``PNG``; ``size_wh``: stored width, height (None if not found);
    ``orientation``: EXIF orientation 1-8; ``complete``: False when the file ends before
    the image data does (truncated download or copy).
    """

    kind: str
    size_wh: tuple[int, int] | None
    orientation: int = 1
    complete: bool = True

    @property
    def upright_wh(self) -> tuple[int, int] | None:
        """Width, height as viewers show the image (orientations 5-8 swap them)."""
        if self.size_wh is None:
            return None
        w, h = self.size_wh
        return (h, w) if self.orientation >= 5 else (w, h)


@dataclass(frozen=True)
class ReducedImage:
    """An image decoded at 1/``factor`` of its size; ``size_wh`` is the full upright size.

    Pixel (row i, column j) of ``image`` averages the full image's ``factor`` x ``factor``
    block whose centre is ``x = (j + 0.5) * factor - 0.5`` (see
    :func:`posecli.preprocess.from_reduced`).
    """

    image: np.ndarray
    size_wh: tuple[int, int]
    factor: int = 1


def read_header(data: bytes) -> ImageHeader | None:
    """Size, orientation and completeness of JPEG or PNG bytes; None for other formats."""
    if data[:3] == b"\xff\xd8\xff":
        return _jpeg_header(data)
    if data[:8] == _PNG_SIGNATURE:
        return _png_header(data)
    return None


def _jpeg_header(data: bytes) -> ImageHeader:
    """Walk the markers: size from the first SOF, orientation from Exif APP1, up to EOI."""
    size, orientation, pos, n = None, 1, 2, len(data)

    def header(complete: bool) -> ImageHeader:
        return ImageHeader("JPEG", size, orientation, complete)

    while True:
        m = _JPEG_MARKER.match(data, pos)
        if m is None:  # the data ran out, or bytes that are no marker (the decoder judges those)
            return header(complete=pos < n - 1)
        marker, pos = m.group(1)[0], m.end()
        if marker == 0xD9:  # EOI: anything after it (e.g. an appended video) is not ours
            return header(complete=True)
        if marker == 0x01:  # TEM has no length
            continue
        length = int.from_bytes(data[pos : pos + 2], "big")
        if pos + max(length, 2) > n:
            return header(complete=False)
        if marker in _JPEG_SOF and size is None and length >= 7:
            size = (int.from_bytes(data[pos + 5 : pos + 7], "big"), int.from_bytes(data[pos + 3 : pos + 5], "big"))
        elif marker == 0xE1 and data[pos + 2 : pos + 8] == b"Exif\x00\x00":
            orientation = _tiff_orientation(data[pos + 8 : pos + length])
        pos += max(length, 2)
        if marker == 0xDA:  # SOS: entropy-coded data runs up to the next marker
            if data[-2:] == b"\xff\xd9":  # the usual file: ends in EOI, no scan of the data needed
                return header(complete=True)
            m = _JPEG_MARKER.search(data, pos)
            if m is None:
                return header(complete=False)
            pos = m.start()


def _png_header(data: bytes) -> ImageHeader:
    """Walk the chunks: size from IHDR, orientation from eXIf, up to IEND."""
    size, orientation, pos, n = None, 1, 8, len(data)
    while pos + 8 <= n:
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind, body, end = data[pos + 4 : pos + 8], pos + 8, pos + 12 + length
        if end > n:
            break
        if kind == b"IHDR" and length >= 8:
            size = (int.from_bytes(data[body : body + 4], "big"), int.from_bytes(data[body + 4 : body + 8], "big"))
        elif kind == b"eXIf":
            orientation = _tiff_orientation(data[body : body + length])
        elif kind == b"IEND":
            return ImageHeader("PNG", size, orientation, True)
        pos = end
    return ImageHeader("PNG", size, orientation, False)


def _tiff_orientation(tiff: bytes) -> int:
    """The Orientation tag (0x0112) of IFD0 in EXIF (TIFF) bytes; 1 when absent or unreadable."""
    order = {b"II*\x00": "<", b"MM\x00*": ">"}.get(bytes(tiff[:4]))
    if order is None:
        return 1
    try:
        (ifd,) = struct.unpack_from(order + "I", tiff, 4)
        (count,) = struct.unpack_from(order + "H", tiff, ifd)
        for i in range(count):
            tag, kind, _, value = struct.unpack_from(order + "HHIH", tiff, ifd + 2 + 12 * i)
            if tag == 0x0112 and kind == 3:  # SHORT
                return value if 1 <= value <= 8 else 1
    except struct.error:
        pass
    return 1


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file to (H, W, 3) uint8 BGR, upright as viewers show it.

    Grayscale and 16-bit images are converted and alpha is composited over white
    (:func:`posecli.preprocess.as_bgr`). The EXIF orientation of JPEG and PNG files is
    applied here, the same with every OpenCV version. A truncated JPEG or PNG is an
    :class:`InputError`, never a partly grey picture.
    """
    return read_image_reduced(path, None).image


def read_image_reduced(path: str | Path, min_height: int | None) -> ReducedImage:
    """Like :func:`read_image`, but a JPEG at least twice ``min_height`` tall is decoded at
    1/2, 1/4 or 1/8 of its size (libjpeg's DCT scaling: fast, and memory stays small),
    keeping the decoded height >= ``min_height``. ``min_height=None``: full size.
    """
    p = check_file(path)
    try:
        data = p.read_bytes()  # works with any file name, unlike cv2.imread
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", path=p) from None
    header = read_header(data)
    if header is not None and not header.complete:
        raise InputError(f"truncated {header.kind} (the file ends before the image data does)", path=p)
    factor = 1
    if min_height and header is not None and header.kind == "JPEG" and header.size_wh:
        factor = next((f for f in (8, 4, 2) if header.upright_wh[1] // f >= min_height), 1)
    buf = np.frombuffer(data, dtype=np.uint8)
    if factor > 1:
        image = cv2.imdecode(buf, _REDUCED[factor] | cv2.IMREAD_IGNORE_ORIENTATION)
        w, h = header.size_wh
        if image is None or image.shape[:2] != (-(-h // factor), -(-w // factor)):
            factor = 1  # an unusual JPEG: decode it whole
    if factor == 1 and header is not None and header.kind == "JPEG":
        image = cv2.imdecode(buf, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)  # CMYK, gray -> BGR
    elif factor == 1:
        image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)  # keeps alpha and depth; ignores EXIF
    del buf, data
    if image is None or image.size == 0:
        if is_video(p):
            problem = f"not an image ('{p.suffix}' is a video extension: use 'posecli video')"
        elif header is not None:
            problem = f"corrupt {header.kind} data (cannot be decoded)"
        else:
            problem = "not a readable image (corrupt or unsupported format)"
        raise InputError(problem, path=p)
    image = as_bgr(image, str(p))
    orientation = header.orientation if header is not None else 1
    if orientation in _ORIENT:
        image = _ORIENT[orientation](image)
    if factor > 1:
        return ReducedImage(image, header.upright_wh, factor)
    return ReducedImage(image, (image.shape[1], image.shape[0]), 1)


# ---------------------------------------------------------------------------------------------
# Videos
# ---------------------------------------------------------------------------------------------
def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTS


def is_image(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTS


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
        cap = cv2.VideoCapture(str(self.path))
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
        if self.frame_count and self.start_frame >= self.frame_count:
            raise InputError(f"start {start} s is past the end of the video ({self.duration:.2f} s)", path=self.path)
        self.stopped_early = False
        self.error: str | None = None
        self.frames_read = 0
        self.last_index: int | None = None

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
        cap = cv2.VideoCapture(str(self.path))
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


# ---------------------------------------------------------------------------------------------
# Folders
# ---------------------------------------------------------------------------------------------
@dataclass
class Listing:
    """Inputs found in a folder: ``files`` (images and videos, sorted), ``skipped`` (other files)."""

    root: Path
    files: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)

    @property
    def images(self) -> list[Path]:
        return [p for p in self.files if is_image(p)]

    @property
    def videos(self) -> list[Path]:
        return [p for p in self.files if is_video(p)]


def list_inputs(directory: str | Path, recursive: bool = False, exclude: str | Path | None = None) -> Listing:
    """Images and videos in ``directory`` by extension, sorted by path.

    Hidden files and folders (name starting with '.') are ignored; files with other
    extensions are counted in ``skipped``. ``exclude``: a folder not to descend into
    (e.g. the output folder when it lies inside the input folder).
    """
    root = Path(directory)
    if not root.exists():
        raise InputError("no such folder", path=root)
    if not root.is_dir():
        raise InputError("not a folder", path=root)
    skip_dir = Path(exclude).resolve() if exclude is not None else None
    listing = Listing(root)
    pending = [root]
    while pending:
        folder = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            raise InputError(f"cannot list folder ({exc.strerror})", path=folder) from None
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            if entry.is_dir():
                if recursive and (skip_dir is None or path.resolve() != skip_dir):
                    pending.append(path)
            elif is_image(path) or is_video(path):
                listing.files.append(path)
            else:
                listing.skipped.append(path)
    listing.files.sort(key=lambda p: p.relative_to(root).parts)
    listing.skipped.sort()
    return listing
