"""Keeping one subject in a video: the largest person, the one nearest the centre, or an id.

:class:`Follow` wraps a :class:`~posecli.video.track.Tracker`: every frame goes through the
tracker (ids for everybody), then only the followed person is kept. The subject is chosen
by the rule on the first frame with people and kept by its track id while the tracker
still knows it (through gaps of up to ``TrackerConfig.max_age`` frames); once the tracker
has forgotten it, the rule chooses again. With an id, only that id is ever kept.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import ConfigError
from ..types import Frame, Person
from .matching import keypoint_area
from .track import Tracker

RULES = ("largest", "center")


def parse_follow(value: str | int) -> str | int:
    """``largest``, ``center`` (``centre``) or a track id (a whole number >= 0)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        if value < 0:
            raise ConfigError(f"follow={value!r}: a track id is a whole number >= 0", param="follow")
        return int(value)
    text = str(value).strip().lower()
    if text == "centre":
        text = "center"
    if text in RULES:
        return text
    if text.isdigit():
        return int(text)
    raise ConfigError(f"follow={value!r}: use 'largest', 'center' or a track id (a whole number >= 0)", param="follow")


def _box_area(person: Person) -> float:
    return keypoint_area(person.xy)


def _centre_distance(person: Person, size_wh: tuple[int, int]) -> float:
    box = person.bbox()
    if box is None:
        return np.inf
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return float(np.hypot(cx - size_wh[0] / 2, cy - size_wh[1] / 2))


class Follow:
    """A tracker that keeps only one person per frame (see the module docstring).

    ``rule``: ``largest`` (bounding box area of the keypoints), ``center`` (box centre
    nearest the frame's centre) or an int track id. ``target`` is the id followed now.
    """

    def __init__(self, rule: str | int, tracker: Tracker | None = None):
        self.rule = parse_follow(rule)
        self.tracker = tracker or Tracker()
        self.target: int | None = self.rule if isinstance(self.rule, int) else None

    def __call__(self, frame: Frame, image=None) -> Frame:
        return self._keep(self.tracker(frame, image))

    def push(self, frame: Frame, image=None) -> list:
        """As the wrapped tracker's ``push``: ``(frame, image)`` pairs ready, followed person only."""
        return [(self._keep(f), im) for f, im in self.tracker.push(frame, image)]

    def flush(self) -> list:
        return [(self._keep(f), im) for f, im in self.tracker.flush()]

    def _keep(self, frame: Frame) -> Frame:
        if not isinstance(self.rule, int) and (self.target is None or not self._known(frame)):
            self.target = self._choose(frame)
        kept = [p for p in frame.people if self.target is not None and p.track_id == self.target]
        return dataclasses.replace(frame, people=kept)

    def _known(self, frame: Frame) -> bool:
        """Whether the tracker still holds the target (the offline tracker: it is in the frame)."""
        live = getattr(self.tracker, "live_ids", None)
        if live is not None:
            return self.target in live
        return any(p.track_id == self.target for p in frame.people)

    def _choose(self, frame: Frame) -> int | None:
        people = [p for p in frame.people if p.track_id is not None]  # confirmed tracks only
        if not people:
            return None
        if self.rule == "largest":
            best = max(people, key=_box_area)
        else:
            best = min(people, key=lambda p: _centre_distance(p, frame.size_wh))
        return best.track_id
