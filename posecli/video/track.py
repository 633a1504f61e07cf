"""Person ids across video frames: keypoint similarity (OKS) + optimal assignment.

Each frame, every live track predicts where its person is now (last keypoints moved by
the track's velocity), the similarity of every detected person to every prediction is
scored with COCO's object keypoint similarity, and :func:`scipy.optimize.linear_sum_assignment`
picks the pairing with the highest total similarity. Pairs below ``min_similarity`` are
refused; people left over start new tracks with new ids; tracks left over wait up to
``max_age`` frames for their person to come back (short occlusions keep their id).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..skeleton import Skeleton
from ..types import Frame, Person
from .matching import keypoint_area, keypoint_sigmas, oks
from .smooth import OneEuroConfig, OneEuroFilter


@dataclass(frozen=True)
class TrackerConfig:
    """Tracking settings.

    ``max_age``: frames (of those processed) a track may go unseen and still get its
    person back. ``min_similarity``: the lowest OKS (0..1) at which a person may continue
    a track. ``min_area``: floor of the person scale in OKS, pixels squared (keeps small or
    partial people from needing pixel-exact matches). ``momentum``: weight of the newest
    motion in the track's velocity estimate (0: no motion model).
    """

    max_age: int = 30
    min_similarity: float = 0.2
    min_area: float = 32.0 * 32.0
    momentum: float = 0.5

    def __post_init__(self) -> None:
        if self.max_age < 0:
            raise ValueError("max_age must be >= 0")
        if not 0.0 <= self.min_similarity <= 1.0:
            raise ValueError("min_similarity must be in [0, 1]")
        if not 0.0 <= self.momentum <= 1.0:
            raise ValueError("momentum must be in [0, 1]")


@dataclass
class _Track:
    id: int
    xy: np.ndarray  # (K, 2) last known keypoints (NaN where never or long unseen)
    seen: np.ndarray  # (K,) update count at which each keypoint was last observed
    last: int  # update count at which the person was last matched
    velocity: np.ndarray  # (2,) pixels per processed frame
    area: float
    smoother: OneEuroFilter | None = None

    def predicted(self, now: int) -> np.ndarray:
        return self.xy + self.velocity * (now - self.last)


class Tracker:
    """Gives each person a ``track_id`` that stays the same across frames.

    Call :meth:`update` with each frame's people in order (or the tracker itself on a
    :class:`Frame`); it returns copies carrying ids (and smoothed keypoints when
    ``smoothing`` is a :class:`OneEuroConfig`). Ids start at 0 and are never reused.
    """

    def __init__(self, config: TrackerConfig | None = None, smoothing: OneEuroConfig | None = None):
        self.config = config or TrackerConfig()
        self.smoothing = smoothing
        self._tracks: list[_Track] = []
        self._next_id = 0
        self._now = 0
        self._sigmas: dict[str, np.ndarray] = {}

    @property
    def live_ids(self) -> list[int]:
        return [t.id for t in self._tracks]

    def __call__(self, frame: Frame) -> Frame:
        people = self.update(frame.people, frame.timestamp)
        return dataclasses.replace(frame, people=people)

    def update(self, people: list[Person], timestamp: float | None = None) -> list[Person]:
        """People of the next frame -> the same people with ids (input is not modified)."""
        self._now += 1
        now, cfg = self._now, self.config
        if timestamp is None and self.smoothing is not None:
            timestamp = now / self.smoothing.default_fps
        # 1. Forget tracks unseen for too long.
        self._tracks = [t for t in self._tracks if now - t.last <= cfg.max_age + 1]
        # 2. Similarity of every person to every live track's predicted pose.
        sim = np.zeros((len(people), len(self._tracks)))
        for j, track in enumerate(self._tracks):
            pred = track.predicted(now)
            for i, person in enumerate(people):
                sigmas = self._sigmas_of(person.skeleton)
                if len(sigmas) != len(pred):
                    continue
                area = max(cfg.min_area, track.area, keypoint_area(person.xy))
                sim[i, j] = oks(person.xy, pred, area, sigmas)
        # 3. Optimal one-to-one assignment; weak pairs refused.
        match: dict[int, _Track] = {}
        if sim.size:
            rows, cols = linear_sum_assignment(sim, maximize=True)
            for i, j in zip(rows, cols):
                if sim[i, j] >= cfg.min_similarity and sim[i, j] > 0:
                    match[i] = self._tracks[j]
        # 4. Update matched tracks, start new ones, hand out ids.
        out = []
        for i, person in enumerate(people):
            track = match.get(i)
            if track is None:
                track = self._new_track(person, now)
            else:
                self._advance(track, person, now)
            xy = person.xy
            if track.smoother is not None:
                xy = track.smoother(person.xy, float(timestamp))
            out.append(dataclasses.replace(person, xy=xy, scores=person.scores.copy(), track_id=track.id))
        return out

    # -- helpers ----------------------------------------------------------------------------------
    def _sigmas_of(self, skeleton: Skeleton) -> np.ndarray:
        s = self._sigmas.get(skeleton.name)
        if s is None:
            s = self._sigmas[skeleton.name] = keypoint_sigmas(skeleton)
        return s

    def _new_track(self, person: Person, now: int) -> _Track:
        smoother = OneEuroFilter(self.smoothing) if self.smoothing is not None else None
        track = _Track(self._next_id, person.xy.copy(), np.where(person.visible, now, -1), now,
                       np.zeros(2), keypoint_area(person.xy), smoother)
        self._next_id += 1
        self._tracks.append(track)
        return track

    def _advance(self, track: _Track, person: Person, now: int) -> None:
        """Move ``track`` to ``person``: velocity, keypoints, scale."""
        cfg = self.config
        gap = now - track.last
        vis = person.visible
        common = vis & np.isfinite(track.xy).all(axis=1)
        if common.any():
            step = (person.xy[common] - track.xy[common]).mean(axis=0) / gap
        else:
            step = track.velocity
        track.velocity = cfg.momentum * step + (1 - cfg.momentum) * track.velocity
        # Keypoints not seen now move with the body; long-unseen ones are dropped.
        moved = track.xy + step * gap
        track.xy = np.where(vis[:, None], person.xy, moved)
        track.seen = np.where(vis, now, track.seen)
        track.xy[now - track.seen > cfg.max_age] = np.nan
        area = keypoint_area(person.xy)
        if area > 0:
            track.area = area if track.area == 0 else 0.5 * (track.area + area)
        track.last = now
