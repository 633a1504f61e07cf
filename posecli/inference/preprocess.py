"""Resize keeping the aspect ratio, pad to the stride, and the one inverse mapping back.

Pixel-centre convention throughout: pixel (row i, column j) has its centre at x = j, y = i.
Resizing an image of width W to width w (as ``cv2.resize`` does) maps image x to network
input ``x_in = (x + 0.5) * w / W - 0.5``; :meth:`Letterbox.to_image` is its inverse.
Padding goes to the right and bottom, so it never shifts coordinates.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import InputError
from ..network.metadata import ModelInfo
from ..types import Frame, Person


@dataclass(frozen=True)
class Letterbox:
    """How an image of ``image_wh`` became a network input of ``input_wh``.

    ``resized_wh`` is the size of the resized image before padding; ``scale_xy`` the
    per-axis ratios ``resized / image`` (equal up to rounding).
    """

    image_wh: tuple[int, int]
    resized_wh: tuple[int, int]
    input_wh: tuple[int, int]

    @property
    def scale_xy(self) -> tuple[float, float]:
        return (self.resized_wh[0] / self.image_wh[0], self.resized_wh[1] / self.image_wh[1])

    def to_image(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) network-input x, y -> original image x, y (NaN stays NaN)."""
        sx, sy = self.scale_xy
        xy = np.asarray(xy, dtype=np.float64)
        return (xy + 0.5) / np.array([sx, sy]) - 0.5

    def to_input(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) original image x, y -> network-input x, y."""
        sx, sy = self.scale_xy
        xy = np.asarray(xy, dtype=np.float64)
        return (xy + 0.5) * np.array([sx, sy]) - 0.5


# The widest network input, in multiples of its height: a panorama or a strip a few pixels
# tall (3000x1) is scaled to fit this width instead, not blown up to gigabytes.
MAX_ASPECT = 16


def fit_size(image_wh: tuple[int, int], height: int, stride: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """``(resized_wh, input_wh)`` for an image scaled to ``height``, padded to ``stride``.

    Images wider than :data:`MAX_ASPECT` times their height are scaled to that width
    instead (less tall than ``height``; the padding fills the rest).
    """
    w, h = image_wh
    if w < 1 or h < 1:
        raise InputError(f"image has no pixels ({w}x{h})")
    scale = min(height / h, MAX_ASPECT * height / w)
    rw = max(1, int(round(w * scale)))
    rh = max(1, min(int(height), int(round(h * scale))))
    pw = -(-rw // stride) * stride
    ph = -(-rh // stride) * stride
    return (rw, rh), (pw, ph)


def letterbox(image: np.ndarray, height: int, stride: int, pad_value=(0, 0, 0)) -> tuple[np.ndarray, Letterbox]:
    """Resize an (H, W, 3) uint8 image to ``height`` keeping aspect, pad right/bottom.

    Returns the padded (h, w, 3) uint8 image (h, w multiples of ``stride``) and the
    :class:`Letterbox` that maps points back.
    """
    ih, iw = image.shape[:2]
    (rw, rh), (pw, ph) = fit_size((iw, ih), height, stride)
    # Cubic both ways, as OpenPose does: INTER_AREA's box filter blurs the limbs the network
    # was trained to see sharp (AP 0.596 -> 0.652 on the mini set, default parser).
    interp = cv2.INTER_CUBIC
    resized = cv2.resize(image, (rw, rh), interpolation=interp)
    if (pw, ph) != (rw, rh):
        pad = [int(round(v)) for v in pad_value]
        resized = cv2.copyMakeBorder(resized, 0, ph - rh, 0, pw - rw, cv2.BORDER_CONSTANT, value=pad)
    return resized, Letterbox((iw, ih), (rw, rh), (pw, ph))


def to_tensor(images: list[np.ndarray] | np.ndarray, info: ModelInfo) -> np.ndarray:
    """BGR uint8 (h, w, 3) image(s) of one size -> normalised (N, 3, h, w) float32."""
    if isinstance(images, np.ndarray) and images.ndim == 3:
        images = images[None]
    images = np.asarray(images)
    if info.color == "rgb":
        images = images[..., ::-1]
    # Planar first, on the uint8 pixels (a quarter of the bytes), then one conversion.
    x = np.ascontiguousarray(images.transpose(0, 3, 1, 2)).astype(np.float32)
    mean = np.asarray(info.mean, np.float32).reshape(1, 3, 1, 1)
    scale = np.asarray(info.scale, np.float32).reshape(1, 3, 1, 1)
    if mean.any():
        x -= mean
    if (scale != 1).any():
        x *= scale
    return x


def clip_to_image(xy: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """(..., 2) x, y kept inside the image: x in [0, W - 1], y in [0, H - 1] (the centres of
    the edge pixels); a peak found in the padding or past the edge lands on the edge. NaN stays."""
    return np.clip(xy, 0.0, [max(size_wh[0] - 1, 0), max(size_wh[1] - 1, 0)])


def from_reduced(xy: np.ndarray, factor: int) -> np.ndarray:
    """(..., 2) x, y in an image decoded at 1/``factor`` size -> x, y in the full image.

    Decoded pixel j averages full pixels ``j * factor .. j * factor + factor - 1``, whose
    centre is ``(j + 0.5) * factor - 0.5`` (same pixel-centre convention as :class:`Letterbox`).
    """
    return (np.asarray(xy, dtype=np.float64) + 0.5) * factor - 0.5


def frame_from_reduced(frame: Frame, size_wh: tuple[int, int], factor: int) -> Frame:
    """People found in a reduced decode (:func:`posecli.io.images.read_image_reduced`), in the
    full image's pixels, with ``size_wh`` the full size."""
    if factor == 1:
        return frame
    people = [Person(clip_to_image(from_reduced(p.xy, factor), size_wh), p.scores, p.score, p.skeleton, p.track_id)
              for p in frame.people]
    extra = dict(frame.extra)
    if "part_candidates" in extra:  # (M, 3) x, y, score per part: the same mapping for x, y
        extra["part_candidates"] = {
            name: np.concatenate([clip_to_image(from_reduced(c[:, :2], factor), size_wh), c[:, 2:]], axis=1)
            for name, c in extra["part_candidates"].items()
        }
    return dataclasses.replace(frame, people=people, size_wh=tuple(size_wh), extra=extra)
