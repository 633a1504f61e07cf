"""2D people of every camera, frame by frame -> 3D people with ids, then made consistent over time.

:class:`Reconstructor` does one frame at a time (association across views, robust
triangulation, 3D ids); :func:`finish` runs over the whole sequence once it is known
(per track: smoothing and bone lengths, :mod:`posecli.multiview.limbs`), then reports the
reprojection error of the final points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..skeleton import Skeleton
from ..types import Person
from .associate import AssociationConfig, Tracker3D, Tracker3DConfig, group_views, undistort_views
from .calibration import Camera
from .limbs import LimbConfig, consistent_track
from .triangulate import TriangulationConfig, point_compliance, reprojection_errors, triangulate


@dataclass
class Person3D:
    """One person in 3D. ``xyz`` (K, 3) metres in the calibration's world frame, NaN where
    missing; ``error_px`` (K,) mean reprojection error over the views used; ``used`` (C, K)
    bool, the cameras each keypoint came from; ``members`` {camera index: 2D person index}."""

    id: int | None
    xyz: np.ndarray
    error_px: np.ndarray
    used: np.ndarray
    members: dict[int, int] = field(default_factory=dict)


@dataclass
class Frame3D:
    """The 3D people of one frame (``index`` of the reference camera, ``time`` seconds)."""

    index: int
    time: float
    people: list[Person3D]


@dataclass(frozen=True)
class ReconstructionConfig:
    """Every setting of the 3D stage, named once."""

    association: AssociationConfig = field(default_factory=AssociationConfig)
    triangulation: TriangulationConfig = field(default_factory=TriangulationConfig)
    tracking: Tracker3DConfig = field(default_factory=Tracker3DConfig)
    limbs: LimbConfig = field(default_factory=LimbConfig)
    duplicate_m: float = 0.25  # two 3D people closer than this (mean over common keypoints) are one


class Reconstructor:
    """Frame after frame: the 2D people of each camera -> :class:`Frame3D`."""

    def __init__(self, cameras: Sequence[Camera], skeleton: Skeleton,
                 config: ReconstructionConfig | None = None):
        self.cameras = list(cameras)
        self.skeleton = skeleton
        self.config = config or ReconstructionConfig()
        self.tracker = Tracker3D(self.config.tracking)

    def frame(self, views: Sequence[Sequence[Person]], index: int, time: float) -> Frame3D:
        """``views[c]``: camera c's people in this frame (an empty list when it has none)."""
        k = self.skeleton.num_parts
        n_cams = len(self.cameras)
        xy = [np.stack([p.xy for p in v]) if v else np.zeros((0, k, 2)) for v in views]
        conf = [np.stack([p.scores for p in v]) if v else np.zeros((0, k)) for v in views]
        uv = undistort_views(self.cameras, xy)  # once, for the association and the triangulation
        people = []
        for group in group_views(self.cameras, xy, conf, self.config.association, uv):
            gxy = np.full((n_cams, k, 2), np.nan)
            guv = np.full((n_cams, k, 2), np.nan)
            gconf = np.zeros((n_cams, k))
            for c, i in group.members.items():
                gxy[c], guv[c], gconf[c] = xy[c][i], uv[c][i], conf[c][i]
            pts = triangulate(self.cameras, gxy, gconf, self.config.triangulation, uv=guv)
            if np.isfinite(pts.xyz).any():
                people.append(Person3D(None, pts.xyz, pts.error_px, pts.used, group.members))
        people = _without_duplicates(people, self.config.duplicate_m)
        ids = self.tracker.update([p.xyz for p in people], time)
        for person, pid in zip(people, ids, strict=True):
            person.id = pid
        return Frame3D(index, time, people)


def _without_duplicates(people: list[Person3D], distance_m: float) -> list[Person3D]:
    """One 3D person per body: a camera that split someone in two gives a second, smaller group
    at the same place; the person seen by more cameras (then with the lower error) stays."""
    def rank(p: Person3D):
        return -len(p.members), float(np.nanmedian(p.error_px)) if np.isfinite(p.error_px).any() else np.inf

    def close(a: Person3D, b: Person3D) -> bool:
        d = np.linalg.norm(a.xyz - b.xyz, axis=1)
        d = d[np.isfinite(d)]
        return bool(len(d)) and float(np.mean(d)) < distance_m

    kept: list[Person3D] = []
    for person in sorted(people, key=rank):
        if not any(close(person, other) for other in kept):
            kept.append(person)
    return kept


def finish(frames: list[Frame3D], views_xy: dict[tuple[int, int, int], np.ndarray] | None,
           cameras: Sequence[Camera],
           skeleton: Skeleton, fps: float, config: LimbConfig | None = None) -> list[Frame3D]:
    """Each track smoothed and its bones held at their median length (in place, and returned).
    ``views_xy`` {(frame position, camera, 2D person): (K, 2) pixels}: when given, each
    adjusted point's reprojection error is measured again against the 2D it came from."""
    config = config or LimbConfig()
    tracks: dict[int, list[tuple[int, Person3D]]] = {}
    for t, frame in enumerate(frames):
        for person in frame.people:
            if person.id is not None:
                tracks.setdefault(person.id, []).append((t, person))
    k = skeleton.num_parts
    for members in tracks.values():
        span = members[-1][0] - members[0][0] + 1
        xyz = np.full((span, k, 3), np.nan)
        compliance = np.full((span, k, 3, 3), np.nan)
        first = members[0][0]
        for t, person in members:
            xyz[t - first] = person.xyz
            compliance[t - first] = point_compliance(cameras, person.xyz, person.used)
        out = consistent_track(xyz, compliance, skeleton, fps, config)
        for t, person in members:
            person.xyz = out[t - first]  # (a filled point keeps used all False: no views, no error)
            if views_xy is not None:
                person.error_px = _error_against_views(person, t, views_xy, cameras)
    return frames


def _error_against_views(person: Person3D, t: int, views_xy, cameras) -> np.ndarray:
    """(K,) mean reprojection error of ``person.xyz`` over the views each keypoint used."""
    n_cams, k = person.used.shape
    xy = np.full((n_cams, k, 2), np.nan)
    for c, i in person.members.items():
        xy[c] = views_xy[t, c, i]
    errors = np.where(person.used, reprojection_errors(cameras, person.xyz, xy), np.nan)
    n = person.used.sum(axis=0)
    with np.errstate(invalid="ignore"):
        out = np.where(n > 0, np.nansum(errors, axis=0) / np.maximum(n, 1), np.nan)
    out[~np.isfinite(person.xyz).all(axis=1)] = np.nan
    return out
