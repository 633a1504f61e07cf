"""Drawing people on a copy of a frame, in OpenPose's colours."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from ..types import Person


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
        # Draw on a copy of just the region the people cover and blend that region back:
        # blending the whole frame costs more than the drawing on large video frames.
        boxes = [b for b in (p.bbox() for p in people) if b is not None]
        if not boxes:
            return canvas
        pad = radius + thick + 2
        x0 = max(0, int(min(b[0] for b in boxes)) - pad)
        y0 = max(0, int(min(b[1] for b in boxes)) - pad)
        x1 = min(w, int(max(b[2] for b in boxes)) + pad + 1)
        y1 = min(h, int(max(b[3] for b in boxes)) + pad + 1)
        if x1 <= x0 or y1 <= y0:
            return canvas
        region = canvas[y0:y1, x0:x1]
        overlay = region.copy()
        offset = np.array([x0, y0])
        for person in people:
            sk = person.skeleton
            ok = person.visible & (person.scores >= self.min_score)
            colors = [tuple(int(v) for v in reversed(c)) for c in sk.colors] or [(0, 255, 0)] * sk.num_parts
            limbs = self.limbs if self.limbs is not None else sk.drawn_limbs
            if self.limbs is not None:
                ok = ok & np.isin(np.arange(sk.num_parts), [p for li in limbs for p in sk.limbs[li]])
            pts = np.round(np.nan_to_num(person.xy) - offset).astype(int)
            for li in limbs:
                a, b = sk.limbs[li]
                if ok[a] and ok[b]:
                    cv2.line(overlay, tuple(pts[a]), tuple(pts[b]), colors[b], thick, cv2.LINE_AA)
            for k in np.flatnonzero(ok):
                cv2.circle(overlay, tuple(pts[k]), radius, colors[k], -1, cv2.LINE_AA)
        cv2.addWeighted(overlay, self.alpha, region, 1 - self.alpha, 0, dst=region)
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
