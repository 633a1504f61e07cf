"""Scene cuts: a frame whose whole picture differs from the one before ends every track.

Each frame is reduced to a 64x36 thumbnail. Its change from the previous frame is the
geometric mean of two cues that fail differently: the Bhattacharyya distance of the
hue-saturation histograms (colours; blind to motion, fooled by lighting changes) and the
mean absolute difference of the grey thumbnails, each normalised to zero mean and unit
contrast (layout; blind to lighting, fooled by fast pans). A cut needs both, and a change
well above the frame's recent ones (a steady pan is not a cut).

Measured on 40 of the shared COCO photos (780 pairs): the change between two different
photos is above 0.30 for 99 % of pairs; within one photo shifted by up to 60 px, its
light scaled by 0.8-1.4 or both, at most 0.275 (99 % below 0.24).
"""

from __future__ import annotations

from collections import deque

import cv2
import numpy as np

THUMB_WH = (64, 36)
_HIST_BINS = (16, 8)
_RECENT = 8  # frames whose changes set the recent level
_ABOVE_RECENT = 2.0  # a cut's change is at least this many times the recent median
_CONTRAST_FLOOR = 8.0  # grey levels added to the thumbnail's contrast (flat frames stay calm)
_GREY_SCALE = 4.0  # mean difference of normalised thumbnails that counts as 1


def frame_change(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """Change (0..1) between two frames' :func:`signature`."""
    hist = float(cv2.compareHist(a[0], b[0], cv2.HISTCMP_BHATTACHARYYA))
    grey = float(np.abs(a[1] - b[1]).mean()) / _GREY_SCALE
    return float(np.sqrt(max(hist, 0.0) * grey))


def signature(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hue-saturation histogram, grey thumbnail) of a BGR ``image`` (H, W, 3) uint8."""
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    # every step-th pixel first (a 1280x720 frame: 256x144), then the area average: the same
    # thumbnail to within a grey level or two, at a fifth of the cost of averaging every pixel
    step = max(1, min(image.shape[0] // (4 * THUMB_WH[1]), image.shape[1] // (4 * THUMB_WH[0])))
    source = np.ascontiguousarray(image[::step, ::step, :3])
    small = cv2.resize(source, THUMB_WH, interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, list(_HIST_BINS), [0, 180, 0, 256])
    hist /= max(float(hist.sum()), 1.0)
    grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.float32)
    grey = (grey - grey.mean()) / (grey.std() + _CONTRAST_FLOOR)
    return hist, grey


class SceneCutDetector:
    """Call with each frame in order; True when the frame starts a new scene.

    ``threshold``: the change (0..1, see :func:`frame_change`) above which a frame may be a cut.
    A frame of another size than the one before is always a cut.
    """

    def __init__(self, threshold: float = 0.28):
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold={threshold!r}: must be in [0, 1]")
        self.threshold = float(threshold)
        self._prev: tuple[np.ndarray, np.ndarray] | None = None
        self._recent: deque[float] = deque(maxlen=_RECENT)
        self._shape: tuple[int, ...] | None = None
        self.last_change = 0.0

    def __call__(self, image: np.ndarray) -> bool:
        sig = signature(image)
        prev, self._prev = self._prev, sig
        shape, self._shape = self._shape, image.shape
        if prev is None:
            return False
        if shape != image.shape:
            self._recent.clear()
            return True
        change = self.last_change = frame_change(prev, sig)
        level = float(np.median(self._recent)) if self._recent else 0.0
        cut = change > self.threshold and change > _ABOVE_RECENT * level
        if cut:
            self._recent.clear()
        else:
            self._recent.append(change)
        return cut
