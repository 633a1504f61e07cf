"""Drawing people on a copy of a frame, in OpenPose's colours."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from .types import Person


@dataclass(frozen=True)
class Renderer:
    """Draws skeletons; settings live here, the frame is never modified.

    ``thickness``/``radius``: line and dot sizes in pixels (None: scaled to the image).
    ``limbs``: which limb indices to draw (None: the skeleton's ``drawn_limbs``); when
    given, only the keypoints of those limbs are drawn too.
    ``min_score``: keypoints below it are not drawn. ``show_ids``: write track ids.
    """

    thickness: int | None = None
    radius: int | None = None
    limbs: Sequence[int] | None = None
    min_score: float = 0.0
    show_ids: bool = True
    alpha: float = 0.6

    def __call__(self, image: np.ndarray, people: Sequence[Person]) -> np.ndarray:
        """A copy of the BGR ``image`` with ``people`` drawn on it."""
        canvas = image.copy()
        if not people:
            return canvas
        h, w = image.shape[:2]
        size = max(1.0, (h * w) ** 0.5 / 400)
        thick = self.thickness or max(1, int(round(2 * size)))
        radius = self.radius or max(2, int(round(3 * size)))
        overlay = canvas.copy()
        for person in people:
            sk = person.skeleton
            ok = person.visible & (person.scores >= self.min_score)
            colors = [tuple(int(v) for v in reversed(c)) for c in sk.colors] or [(0, 255, 0)] * sk.num_parts
            limbs = self.limbs if self.limbs is not None else sk.drawn_limbs
            if self.limbs is not None:
                ok = ok & np.isin(np.arange(sk.num_parts), [p for li in limbs for p in sk.limbs[li]])
            for li in limbs:
                a, b = sk.limbs[li]
                if ok[a] and ok[b]:
                    pa = tuple(int(round(v)) for v in person.xy[a])
                    pb = tuple(int(round(v)) for v in person.xy[b])
                    cv2.line(overlay, pa, pb, colors[b], thick, cv2.LINE_AA)
            for k in np.flatnonzero(ok):
                pt = tuple(int(round(v)) for v in person.xy[k])
                cv2.circle(overlay, pt, radius, colors[k], -1, cv2.LINE_AA)
        cv2.addWeighted(overlay, self.alpha, canvas, 1 - self.alpha, 0, dst=canvas)
        if self.show_ids:
            for person in people:
                box = person.bbox()
                if person.track_id is None or box is None:
                    continue
                org = (int(box[0]), max(12, int(box[1]) - 6))
                cv2.putText(canvas, str(person.track_id), org, cv2.FONT_HERSHEY_SIMPLEX,
                            0.5 * size, (255, 255, 255), max(1, thick // 2), cv2.LINE_AA)
        return canvas


def draw(image: np.ndarray, people: Sequence[Person], **settings) -> np.ndarray:
    """A copy of ``image`` with ``people`` drawn; ``settings`` are :class:`Renderer` fields."""
    return Renderer(**settings)(image, people)
