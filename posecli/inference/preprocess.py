"""Keypoints back in the image: kept inside it, and mapped from a reduced decode to full size.

The letterbox and the pixel-centre convention live in :mod:`posecli.maps`; the input tensor
in :mod:`posecli.network.tensor`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..maps import rescale
from ..types import Frame, Person


def clip_to_image(xy: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """(..., 2) x, y kept inside the image: x in [0, W - 1], y in [0, H - 1] (the centres of
    the edge pixels); a peak found in the padding or past the edge lands on the edge. NaN stays."""
    return np.clip(xy, 0.0, [max(size_wh[0] - 1, 0), max(size_wh[1] - 1, 0)])


def from_reduced(xy: np.ndarray, factor: int) -> np.ndarray:
    """(..., 2) x, y in an image decoded at 1/``factor`` size -> x, y in the full image.

    Decoded pixel j averages full pixels ``j * factor .. j * factor + factor - 1``, whose
    centre is ``(j + 0.5) * factor - 0.5`` (:func:`posecli.maps.rescale`).
    """
    return rescale(xy, factor)


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
