"""Small record factories for tests: people from literal keypoint lists."""

from __future__ import annotations

import numpy as np

from posecli.skeleton import COCO18, Skeleton
from posecli.types import Frame, Person


def person(points: dict[str, tuple[float, float]], score: float = 0.9, skeleton: Skeleton = COCO18,
           kp_score: float = 0.8, track_id: int | None = None) -> Person:
    """A person with the named keypoints at the given x, y; every other keypoint missing."""
    xy = np.full((skeleton.num_parts, 2), np.nan)
    scores = np.zeros(skeleton.num_parts)
    for name, (x, y) in points.items():
        k = skeleton.index(name)
        xy[k] = (x, y)
        scores[k] = kp_score
    return Person(xy, scores, score, skeleton, track_id)


def frame(*people: Person, size_wh=(640, 480), source="photo.jpg", index=None, timestamp=None) -> Frame:
    return Frame(list(people), size_wh, source=source, index=index, timestamp=timestamp)
