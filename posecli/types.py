"""Result records: one :class:`Person`, the people of one :class:`Frame`.

Coordinates are pixels of the original image, x right and y down, pixel centres at
integers: pixel (row i, column j) has its centre at ``x = j, y = i``, as OpenCV draws. A missing keypoint has ``xy = (nan, nan)`` and
score 0: never a real coordinate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .skeleton import Skeleton


@dataclass
class Person:
    """One detected person.

    ``xy``: (K, 2) float64 x, y in image pixels, NaN where the keypoint is missing.
    ``scores``: (K,) float64 per-keypoint confidence in [0, 1] (0 where missing).
    ``score``: the person's overall score, OpenPose's: (sum of its keypoint scores + sum of
    its limb scores) / number of keypoints (0 to about 2; written as is in every format).
    ``track_id``: a stable id across video frames, None for still images.
    """

    xy: np.ndarray
    scores: np.ndarray
    score: float
    skeleton: Skeleton
    track_id: int | None = None

    def __post_init__(self) -> None:
        self.xy = np.asarray(self.xy, dtype=np.float64)
        self.scores = np.asarray(self.scores, dtype=np.float64)
        k = self.skeleton.num_parts
        if self.xy.shape != (k, 2):
            raise ValueError(f"xy must be ({k}, 2), got {self.xy.shape}")
        if self.scores.shape != (k,):
            raise ValueError(f"scores must be ({k},), got {self.scores.shape}")
        missing = ~np.isfinite(self.xy).all(axis=1)
        if missing.any():  # new arrays: the caller's are never written to
            self.xy = np.where(missing[:, None], np.nan, self.xy)
            self.scores = np.where(missing, 0.0, self.scores)
        self.score = float(self.score)

    @property
    def visible(self) -> np.ndarray:
        """(K,) bool, True where the keypoint was found."""
        return np.isfinite(self.xy[:, 0])

    @property
    def num_visible(self) -> int:
        return int(self.visible.sum())

    @property
    def names(self) -> tuple[str, ...]:
        return self.skeleton.parts

    def keypoint(self, name: str) -> tuple[float, float, float] | None:
        """``(x, y, score)`` of a keypoint by name, or None when it is missing."""
        k = self.skeleton.index(name)
        if not self.visible[k]:
            return None
        return float(self.xy[k, 0]), float(self.xy[k, 1]), float(self.scores[k])

    def to_array(self) -> np.ndarray:
        """(K, 3) x, y, score; NaN x, y where missing."""
        return np.concatenate([self.xy, self.scores[:, None]], axis=1)

    def bbox(self) -> tuple[float, float, float, float] | None:
        """``(x0, y0, x1, y1)`` around the visible keypoints, None if there are none."""
        if not self.visible.any():
            return None
        pts = self.xy[self.visible]
        x0, y0 = pts.min(axis=0)
        x1, y1 = pts.max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)

    def to_coco17(self) -> np.ndarray:
        """(17, 3) x, y, score in COCO-17 order; NaN x, y where missing or absent."""
        order = self.skeleton.coco17
        if order is None:
            raise ValueError(f"skeleton '{self.skeleton.name}' has no COCO-17 mapping")
        return self.to_array()[list(order)]

    def to_openpose(self) -> list[float]:
        """OpenPose's flat ``x0, y0, c0, x1, ...`` list, 0, 0, 0 for missing keypoints."""
        arr = np.nan_to_num(self.to_array(), nan=0.0)
        return [float(v) for v in arr.reshape(-1)]


def strongest(people: list[Person], n: int | None) -> list[Person]:
    """The ``n`` highest-scoring people, strongest first (equal scores keep their order);
    all of them, in their order, when ``n`` is None."""
    return list(people) if n is None else sorted(people, key=lambda p: -p.score)[:n]


@dataclass
class Frame:
    """The people found in one image or video frame.

    ``size_wh``: the original image's (width, height) in pixels.
    ``index`` and ``timestamp`` (seconds) are set for video frames.
    """

    people: list[Person]
    size_wh: tuple[int, int]
    source: str = ""
    index: int | None = None
    timestamp: float | None = None
    extra: dict = field(default_factory=dict)

    def to_array(self, num_parts: int | None = None) -> np.ndarray:
        """(N, K, 3) x, y, score for the N people; (0, K, 3) when there are none."""
        if self.people:
            return np.stack([p.to_array() for p in self.people])
        k = num_parts if num_parts is not None else 0
        return np.zeros((0, k, 3))
