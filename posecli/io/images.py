"""Still images: JPEG/PNG headers and EXIF orientation read from the bytes, decoding to BGR; files are
checked and named in every error."""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from .paths import check_file, is_video
from .streams import read_whole

# A JPEG marker: 0xFF (fill bytes allowed) then a byte that is not 0x00 (a stuffed 0xFF in
# entropy-coded data) nor RST0-7 (restart markers sit inside the data).
_JPEG_MARKER = re.compile(rb"\xff+([^\x00\xd0-\xd7\xff])")
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start-of-frame markers
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Largest image posecli decodes, in pixels, as its header declares it (checked before
#: decoding, so a small file claiming 40000 x 40000 is refused at once): 2**28, about
#: 16384 x 16384 (0.8 GB as BGR).
MAX_IMAGE_PIXELS = 1 << 28
#: Largest image file posecli reads, in bytes (1 GiB).
MAX_IMAGE_BYTES = 1 << 30
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
    :func:`posecli.inference.preprocess.from_reduced`).
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
    (:func:`posecli.io.images.as_bgr`). The EXIF orientation of JPEG and PNG files is
    applied here, the same with every OpenCV version. A truncated JPEG or PNG is an
    :class:`InputError`, never a partly grey picture.
    """
    return read_image_reduced(path, None).image


def read_image_reduced(path: str | Path, min_height: int | None) -> ReducedImage:
    """Like :func:`read_image`, but a JPEG at least twice ``min_height`` tall is decoded at
    1/2, 1/4 or 1/8 of its size (libjpeg's DCT scaling: fast, and memory stays small),
    keeping the decoded height >= ``min_height``. ``min_height=None``: full size.
    """
    p = check_file(path, stream_ok=True)
    data = _read_bytes(p)
    header = read_header(data)
    if header is not None and not header.complete:
        raise InputError(f"truncated {header.kind} (the file ends before the image data does)", path=p)
    if header is not None and header.size_wh:
        w, h = header.size_wh
        if w * h > MAX_IMAGE_PIXELS:
            raise InputError(f"{header.kind} declares {w} x {h} pixels ({w * h / 1e6:.0f} megapixels), over the "
                             f"limit of {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels", path=p)
    factor = 1
    if min_height and header is not None and header.kind == "JPEG" and header.size_wh:
        factor = next((f for f in (8, 4, 2) if header.upright_wh[1] // f >= min_height), 1)
    buf = np.frombuffer(data, dtype=np.uint8)
    try:
        image, factor = _decode(buf, factor, header)
    except cv2.error as exc:  # OpenCV's own limits (pixels, memory) and decoder failures
        lines = [line for line in str(exc).splitlines() if line.strip()]
        detail = lines[-1].split(") ")[-1].strip()[:120] if lines else "decoder error"
        raise InputError(f"cannot be decoded (OpenCV: {detail})", path=p) from None
    del buf, data
    if image is None or image.size == 0:
        if is_video(p):
            problem = f"not an image ('{p.suffix}' is a video extension: use iter_video_poses())"
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


def _read_bytes(p: Path) -> bytes:
    """The whole file (or stream: never hanging, see :mod:`posecli.io.streams`), refused past
    :data:`MAX_IMAGE_BYTES`."""
    data = read_whole(p, MAX_IMAGE_BYTES, "an image")  # works with any file name, unlike cv2.imread
    if not data:
        raise InputError("file is empty (0 bytes)", path=p)
    return data


def _decode(buf: np.ndarray, factor: int, header: ImageHeader | None) -> tuple[np.ndarray | None, int]:
    """OpenCV's decoding at 1/``factor`` (JPEG only, falling back to full size); returns the
    image (None when OpenCV cannot decode it) and the factor used."""
    image = None
    if factor > 1:
        image = cv2.imdecode(buf, _REDUCED[factor] | cv2.IMREAD_IGNORE_ORIENTATION)
        w, h = header.size_wh
        if image is None or image.shape[:2] != (-(-h // factor), -(-w // factor)):
            factor = 1  # an unusual JPEG: decode it whole
    if factor == 1 and header is not None and header.kind == "JPEG":
        image = cv2.imdecode(buf, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)  # CMYK, gray -> BGR
    elif factor == 1:
        image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)  # keeps alpha and depth; ignores EXIF
    return image, factor


def read_alpha(path: str | Path) -> np.ndarray | None:
    """(H, W) uint8 alpha channel of an image file, upright like :func:`read_image`; None when
    the image has no alpha (JPEGs, opaque PNGs without one)."""
    p = check_file(path)
    data = _read_bytes(p)
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.ndim != 3 or image.shape[2] != 4:
        return None
    alpha = image[:, :, 3]
    alpha = (alpha >> 8).astype(np.uint8) if alpha.dtype == np.uint16 else as_bgr(alpha[:, :, None])[:, :, 0]
    header = read_header(data)
    orientation = header.orientation if header is not None else 1
    return _ORIENT[orientation](alpha) if orientation in _ORIENT else np.ascontiguousarray(alpha)


def as_bgr(image: np.ndarray, path: str = "") -> np.ndarray:
    """Any decoded image (gray, BGR, BGRA; 8 or 16 bit) -> (H, W, 3) uint8 BGR.

    Transparent pixels become white, as most viewers show them: the colour stored under
    alpha 0 is arbitrary (often black or leftovers of a cut-out) and must not reach the network.
    """
    if image is None or image.size == 0:
        raise InputError("image has no pixels", path=path or None)
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        lo, hi = float(np.nanmin(image)), float(np.nanmax(image))
        span = hi - lo if hi > lo else 1.0
        image = np.clip((image - lo) * (255.0 / span), 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return _over_white(image)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise InputError(f"unsupported image layout {image.shape}", path=path or None)


def _over_white(bgra: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8 BGRA composited over a white background -> (H, W, 3) uint8 BGR."""
    bgr, alpha = bgra[:, :, :3], bgra[:, :, 3:]
    if alpha.min() == 255:
        return np.ascontiguousarray(bgr)
    a = alpha.astype(np.float32) * (1 / 255)
    return (bgr * a + 255.0 * (1 - a) + 0.5).astype(np.uint8)
