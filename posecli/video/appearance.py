"""A cheap appearance cue for tracking: the colours of each person's torso.

The torso is the box around the shoulders and hips (shoulders alone: a box as tall as
they are wide), shrunk a little so the background at its edges counts less. Its colours
go into a hue-saturation histogram with a separate bin row for dark, unsaturated pixels
(black and grey clothes have no reliable hue). Two torsos are compared by the
Bhattacharyya coefficient of their histograms: 1 for the same colours, 0 for disjoint.

People crossing at a similar size and place are told apart by their clothes where
keypoint similarity alone is ambiguous (``python -m bench tracking`` measures it).
"""

from __future__ import annotations

import cv2
import numpy as np

_H_BINS, _S_BINS = 12, 3
SIZE = _H_BINS * _S_BINS + 4  # + 4 grey levels for pixels without a reliable hue
_MIN_SIDE = 4  # pixels: smaller torsos have no histogram
_SHRINK = 0.15  # fraction of the box cut from each side


def _torso_box(person, size_wh) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) pixel box of the person's torso, None when it cannot be placed."""
    sk = person.skeleton
    names = ("r_shoulder", "l_shoulder", "r_hip", "l_hip")
    if not all(n in sk.parts for n in names):
        return None
    pts = np.array([person.xy[sk.index(n)] for n in names])
    ok = np.isfinite(pts).all(axis=1)
    if not (ok[0] and ok[1]):
        return None
    shoulders = pts[:2]
    x0, y0 = shoulders.min(axis=0)
    x1, y1 = shoulders.max(axis=0)
    if ok[2:].any():
        hips = pts[2:][ok[2:]]
        x0, x1 = min(x0, hips[:, 0].min()), max(x1, hips[:, 0].max())
        y1 = max(y1, hips[:, 1].max())
    else:
        y1 = y0 + (x1 - x0)
    dx, dy = _SHRINK * (x1 - x0), _SHRINK * (y1 - y0)
    box = (int(x0 + dx), int(y0 + dy), int(np.ceil(x1 - dx)), int(np.ceil(y1 - dy)))
    w, h = size_wh
    box = (max(0, box[0]), max(0, box[1]), min(w, box[2]), min(h, box[3]))
    if box[2] - box[0] < _MIN_SIDE or box[3] - box[1] < _MIN_SIDE:
        return None
    return box


def torso_histograms(people, image: np.ndarray) -> np.ndarray:
    """(N, SIZE) colour histograms (sum 1) of the people's torsos in BGR ``image``; a row of
    NaN where a person's torso is not visible enough."""
    out = np.full((len(people), SIZE), np.nan, np.float32)
    if image is None or image.ndim != 3 or not len(people):
        return out
    h, w = image.shape[:2]
    for i, person in enumerate(people):
        box = _torso_box(person, (w, h))
        if box is None:
            continue
        x0, y0, x1, y1 = box
        patch = image[y0:y1, x0:x1, :3]
        if patch.shape[0] > 48 or patch.shape[1] > 48:  # enough pixels for a histogram
            patch = cv2.resize(patch, (min(48, patch.shape[1]), min(48, patch.shape[0])), interpolation=cv2.INTER_AREA)
        hsv = cv2.cvtColor(np.ascontiguousarray(patch), cv2.COLOR_BGR2HSV).reshape(-1, 3).astype(np.int32)
        hue_ok = (hsv[:, 1] >= 40) & (hsv[:, 2] >= 40)
        bins = np.where(hue_ok, (hsv[:, 0] * _H_BINS // 180) * _S_BINS + ((hsv[:, 1] - 40) * _S_BINS // 216),
                        _H_BINS * _S_BINS + np.minimum(hsv[:, 2] * 4 // 256, 3))
        hist = np.bincount(bins, minlength=SIZE).astype(np.float32)
        out[i] = hist / max(float(hist.sum()), 1.0)
    return out


def histogram_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) Bhattacharyya coefficients of (N, SIZE) and (M, SIZE) histograms; NaN where
    either histogram is missing."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    return np.sqrt(np.clip(a, 0, None)) @ np.sqrt(np.clip(b, 0, None)).T
