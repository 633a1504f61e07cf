"""Drawing people on a copy of a frame, in OpenPose's colours, or alone on a plain background."""

from __future__ import annotations

import colorsys
import re
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import InputError
from ..types import Person

BGR = tuple[int, int, int]

_NAMED = {"black": (0, 0, 0), "white": (255, 255, 255), "gray": (128, 128, 128), "grey": (128, 128, 128),
          "red": (0, 0, 255), "green": (0, 255, 0), "blue": (255, 0, 0)}


def parse_color(text: str) -> BGR:
    """``black``, ``white``, ``gray``, ``red``, ``green``, ``blue``, ``#RRGGBB`` or ``R,G,B``
    (0-255) -> a BGR tuple; :class:`InputError` otherwise."""
    value = str(text).strip().lower()
    if value in _NAMED:
        return _NAMED[value]
    m = re.fullmatch(r"#?([0-9a-f]{6})", value)
    if m:
        r, g, b = (int(m.group(1)[i:i + 2], 16) for i in (0, 2, 4))
        return (b, g, r)
    parts = value.split(",")
    if len(parts) == 3 and all(p.strip().isdigit() and int(p) <= 255 for p in parts):
        r, g, b = (int(p) for p in parts)
        return (b, g, r)
    raise InputError(f"colour {text!r}: use a name ({', '.join(_NAMED)}), #RRGGBB or R,G,B with 0-255")


def id_color(track_id: int) -> BGR:
    """A bright colour for a track id, the same in every frame (golden-ratio hue steps, so
    consecutive ids differ clearly)."""
    hue = (int(track_id) * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return (int(b * 255), int(g * 255), int(r * 255))


@dataclass(frozen=True)
class Renderer:
    """Draws skeletons; settings live here, the frame is never modified.

    ``thickness``/``radius``: line and dot sizes in pixels (None: scaled to the image, 2 and
    3 px per 400 px of the image's geometric mean side).
    ``limbs``: which limb indices to draw (None: the skeleton's ``drawn_limbs``); when
    given, only the keypoints of those limbs are drawn too.
    ``min_score``: keypoints scoring below it are not drawn, nor the limbs that end at them.
    ``show_ids``: write track ids; ``show_boxes``: a box around each person. Both in the
    person's id colour (:func:`id_color`, stable across frames), white without an id.
    ``background``: a BGR colour to draw the skeletons alone on (None: on the image).
    ``alpha``: opacity of the drawing over the image (1 on a plain background).
    A BGRA image keeps its alpha channel, made opaque where something is drawn.
    """

    thickness: int | None = None
    radius: int | None = None
    limbs: Sequence[int] | None = None
    min_score: float = 0.0
    show_ids: bool = True
    show_boxes: bool = False
    background: BGR | None = None
    alpha: float = 0.6

    def __post_init__(self) -> None:
        for name in ("thickness", "radius"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 1 <= v <= 1000):
                raise InputError(f"{name}={v!r}: must be a whole number of pixels from 1 to 1000 (or None)")
        if not (isinstance(self.min_score, (int, float)) and np.isfinite(self.min_score)):
            raise InputError(f"min_score={self.min_score!r}: must be a finite number")
        if not (isinstance(self.alpha, (int, float)) and 0.0 <= self.alpha <= 1.0):
            raise InputError(f"alpha={self.alpha!r}: must be between 0 and 1")
        if self.background is not None:
            bg = tuple(self.background)
            if len(bg) != 3 or not all(isinstance(c, (int, np.integer)) and 0 <= c <= 255 for c in bg):
                raise InputError(f"background={self.background!r}: must be a BGR triple of 0-255 integers")

    def sizes(self, image_hw: tuple[int, int]) -> tuple[int, int, float]:
        """``(thickness, radius, scale)`` for an image of ``image_hw``."""
        h, w = image_hw
        size = max(1.0, (h * w) ** 0.5 / 400)
        thick = self.thickness or max(1, round(2 * size))
        radius = self.radius or max(2, round(3 * size))
        return thick, radius, size

    def __call__(self, image: np.ndarray, people: Sequence[Person]) -> np.ndarray:
        """A copy of the BGR (or BGRA) ``image`` with ``people`` drawn on it."""
        alpha_channel = image[:, :, 3] if image.ndim == 3 and image.shape[2] == 4 else None
        if self.background is not None:
            canvas = np.empty(image.shape[:2] + (3,), np.uint8)
            canvas[:] = self.background
        else:
            canvas = np.ascontiguousarray(image[:, :, :3]) if alpha_channel is not None else image.copy()
        if not people:
            return self._with_alpha(canvas, alpha_channel, None)
        before = canvas.copy() if alpha_channel is not None else None
        h, w = canvas.shape[:2]
        thick, radius, size = self.sizes((h, w))
        opacity = 1.0 if self.background is not None else self.alpha
        # Draw on a copy of just the region the people cover and blend that region back:
        # blending the whole frame costs more than the drawing on large video frames.
        boxes = [b for b in (p.bbox() for p in people) if b is not None]
        if not boxes:
            return self._with_alpha(canvas, alpha_channel, None)
        pad = radius + thick + 2
        x0 = max(0, int(min(b[0] for b in boxes)) - pad)
        y0 = max(0, int(min(b[1] for b in boxes)) - pad)
        x1 = min(w, int(max(b[2] for b in boxes)) + pad + 1)
        y1 = min(h, int(max(b[3] for b in boxes)) + pad + 1)
        if x1 > x0 and y1 > y0:
            region = canvas[y0:y1, x0:x1]
            overlay = region.copy()
            self._draw_skeletons(overlay, people, np.array([x0, y0]), thick, radius)
            if opacity >= 1.0:
                region[:] = overlay
            else:
                cv2.addWeighted(overlay, opacity, region, 1 - opacity, 0, dst=region)
        self._draw_labels(canvas, people, thick, size)
        return self._with_alpha(canvas, alpha_channel, before)

    def _draw_skeletons(self, overlay: np.ndarray, people, offset: np.ndarray, thick: int, radius: int) -> None:
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

    def _draw_labels(self, canvas: np.ndarray, people, thick: int, size: float) -> None:
        """Boxes and ids, opaque, in each person's id colour."""
        if not (self.show_ids or self.show_boxes):
            return
        for person in people:
            box = person.bbox()
            if box is None:
                continue
            color = id_color(person.track_id) if person.track_id is not None else (255, 255, 255)
            if self.show_boxes:
                cv2.rectangle(canvas, (int(box[0]), int(box[1])), (round(box[2]), round(box[3])),
                              color, max(1, thick // 2), cv2.LINE_8)
            if self.show_ids and person.track_id is not None:
                org = (int(box[0]), max(12, int(box[1]) - 6))
                cv2.putText(canvas, str(person.track_id), org, cv2.FONT_HERSHEY_SIMPLEX,
                            0.5 * size, color, max(1, thick // 2), cv2.LINE_AA)

    @staticmethod
    def _with_alpha(canvas: np.ndarray, alpha: np.ndarray | None, before: np.ndarray | None) -> np.ndarray:
        """BGRA with the original alpha (opaque where the drawing changed a pixel), or BGR as is."""
        if alpha is None:
            return canvas
        out_alpha = alpha.copy()
        if before is not None:
            out_alpha[(canvas != before).any(axis=2)] = 255
        return np.dstack([canvas, out_alpha])


def draw(image: np.ndarray, people: Sequence[Person], **settings) -> np.ndarray:
    """A copy of ``image`` with ``people`` drawn; ``settings`` are :class:`Renderer` fields."""
    return Renderer(**settings)(image, people)
