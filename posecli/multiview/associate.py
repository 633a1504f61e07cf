"""People across views and across frames.

:func:`group_views`: which 2D person in each camera is which 3D person, in one frame. Every pair
of people in two different cameras is scored by triangulating their common keypoints from those
two views and measuring the reprojection error (pixels; for two views this is the distance to
the epipolar geometry, and a point behind either camera is inconsistent). Pairs under
``gate_px`` are joined greedily, best first, into groups of at most one person per camera; two
groups merge only when the mean score over all their cross pairs stays under the gate
(average linkage: one lucky pair cannot glue two people together).

:class:`Tracker3D`: 3D ids that last: each new person is matched to the tracks by the distance
of their 3D centroids (an optimal assignment, as :mod:`posecli.video.track` does in 2D), gated
in metres per second of gap; the tracks seen most recently choose first; a track unseen for
``max_gap_s`` ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..video.matching import assign
from .calibration import Camera
from .triangulate import dlt, reprojection_errors

MIN_COMMON_KEYPOINTS = 3  # fewer keypoints in common: two detections cannot be compared


@dataclass(frozen=True)
class AssociationConfig:
    """``gate_px``: the largest mean two-view reprojection error of one person seen twice;
    ``min_confidence``: 2D keypoints used for scoring; ``max_people``: groups kept per frame
    (the most views first, then the lowest error; None: all)."""

    gate_px: float = 60.0
    min_confidence: float = 0.3
    max_people: int | None = None

    def __post_init__(self) -> None:
        if not (np.isfinite(self.gate_px) and self.gate_px > 0):
            raise ValueError(f"gate_px={self.gate_px!r}: expected a finite number > 0")
        if not (np.isfinite(self.min_confidence) and 0 <= self.min_confidence <= 1):
            raise ValueError(f"min_confidence={self.min_confidence!r}: expected a number in [0, 1]")
        if self.max_people is not None and self.max_people < 1:
            raise ValueError(f"max_people={self.max_people!r}: expected None or >= 1")


@dataclass
class Group:
    """One 3D person in one frame: ``members`` {camera index: person index in that camera}."""

    members: dict[int, int]
    cost_px: float = 0.0


def pair_costs(cameras: Sequence[Camera], xy: Sequence[np.ndarray], uv: Sequence[np.ndarray],
               ok: Sequence[np.ndarray]) -> dict[tuple[int, int], np.ndarray]:
    """{(a, b): (N_a, N_b)} for every camera pair a < b: the mean two-view reprojection error
    (px) of each person of camera a with each of camera b; inf where they share fewer than
    :data:`MIN_COMMON_KEYPOINTS` keypoints. ``xy[c]`` (N_c, K, 2) pixels, ``uv[c]``
    normalised, ``ok[c]`` (N_c, K) usable keypoints. Every candidate of the frame is
    triangulated in one pass (two views each)."""
    n_cams = len(cameras)
    k = next((p.shape[1] for p in xy if len(p)), 0)
    costs = {(a, b): np.full((len(xy[a]), len(xy[b])), np.inf)
             for a in range(n_cams) for b in range(a + 1, n_cams)}
    items = [(a, b, i, j) for (a, b), c in costs.items()
             for i in range(c.shape[0]) for j in range(c.shape[1])]
    if not items or not k:
        return costs
    m = len(items)
    uv_all = np.full((n_cams, m, k, 2), np.nan)
    xy_all = np.full((n_cams, m, k, 2), np.nan)
    weights = np.zeros((n_cams, m, k))
    for n, (a, b, i, j) in enumerate(items):
        both = ok[a][i] & ok[b][j]
        for cam, person in ((a, i), (b, j)):
            uv_all[cam, n], xy_all[cam, n] = uv[cam][person], xy[cam][person]
            weights[cam, n] = both
    xyz = dlt(np.stack([c.Rt for c in cameras]), uv_all.reshape(n_cams, -1, 2), weights.reshape(n_cams, -1))
    err = reprojection_errors(cameras, xyz, xy_all.reshape(n_cams, -1, 2))  # (C, M*K)
    err = np.where(weights.reshape(n_cams, -1) > 0, err, -1.0).max(axis=0).reshape(m, k)  # worse of the two
    used = err >= 0
    common = used.sum(axis=1)
    total = np.where(used, np.nan_to_num(err, posinf=1e9, nan=1e9), 0.0).sum(axis=1)
    mean = np.where(common >= MIN_COMMON_KEYPOINTS, total / np.maximum(common, 1), np.inf)
    for n, (a, b, i, j) in enumerate(items):
        costs[a, b][i, j] = mean[n]
    return costs


def group_views(cameras: Sequence[Camera], xy: Sequence[np.ndarray], conf: Sequence[np.ndarray],
                config: AssociationConfig | None = None,
                uv: Sequence[np.ndarray] | None = None) -> list[Group]:
    """The 3D people of one frame. ``xy[c]`` (N_c, K, 2) pixels (NaN where missing),
    ``conf[c]`` (N_c, K). A group has people from at least two cameras. ``uv``: the normalised
    coordinates of ``xy`` when the caller has them already (:func:`undistort_views`)."""
    config = config or AssociationConfig()
    if uv is None:
        uv = undistort_views(cameras, xy)
    ok = [np.isfinite(p).all(axis=-1) & (s >= config.min_confidence) for p, s in zip(xy, conf, strict=True)]
    costs = pair_costs(cameras, xy, uv, ok)
    edges = []
    for (a, b), c in costs.items():
        for i, j in zip(*np.nonzero(c <= config.gate_px), strict=True):
            edges.append((float(c[i, j]), (a, int(i)), (b, int(j))))
    # greedy average-linkage merging, best pair first
    cluster_of: dict[tuple[int, int], int] = {}
    clusters: dict[int, dict[int, int]] = {}
    for n, (_, u, v) in enumerate(sorted(edges)):
        cu, cv = cluster_of.get(u), cluster_of.get(v)
        if cu is not None and cu == cv:
            continue
        A = clusters[cu] if cu is not None else {u[0]: u[1]}
        B = clusters[cv] if cv is not None else {v[0]: v[1]}
        if set(A) & set(B):
            continue  # one person per camera
        if _link_cost(A, B, costs, config.gate_px) > config.gate_px:
            continue
        merged = {**A, **B}
        new = n  # a fresh key: the edge's rank
        for key in (cu, cv):
            if key is not None:
                clusters.pop(key)
        clusters[new] = merged
        for cam, person in merged.items():
            cluster_of[cam, person] = new
    groups = [Group(dict(sorted(m.items())), _group_cost(m, costs)) for m in clusters.values()]
    groups.sort(key=lambda g: (-len(g.members), g.cost_px))
    return groups[: config.max_people] if config.max_people else groups


def undistort_views(cameras: Sequence[Camera], xy: Sequence[np.ndarray]) -> list[np.ndarray]:
    """``xy[c]`` (N_c, K, 2) pixels -> normalised coordinates, camera by camera (NaN kept)."""
    return [cam.undistort(p) if len(p) else p for cam, p in zip(cameras, xy, strict=True)]


def _cost(costs, a: tuple[int, int], b: tuple[int, int]) -> float:
    (ca, pa), (cb, pb) = sorted([a, b])
    return float(costs[ca, cb][pa, pb])


def _link_cost(A: dict[int, int], B: dict[int, int], costs, gate: float) -> float:
    """Mean score over the cross pairs of two groups (a pair without common keypoints counts as the gate)."""
    values = [min(_cost(costs, (ca, pa), (cb, pb)), gate) for ca, pa in A.items() for cb, pb in B.items()]
    return float(np.mean(values))


def _group_cost(members: dict[int, int], costs) -> float:
    items = list(members.items())
    values = [_cost(costs, items[i], items[j]) for i in range(len(items)) for j in range(i + 1, len(items))]
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("inf")


# ---------------------------------------------------------------------------------------------
# 3D ids across frames
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Tracker3DConfig:
    """``gate_m``: the largest centroid jump between consecutive frames (metres), growing by
    ``speed_mps`` per second of gap; ``max_gap_s``: a track unseen this long ends."""

    gate_m: float = 0.5
    speed_mps: float = 3.0
    max_gap_s: float = 1.0


@dataclass
class _Track:
    id: int
    centroid: np.ndarray
    time: float


class Tracker3D:
    """Ids for 3D people frame after frame (see the module doc)."""

    def __init__(self, config: Tracker3DConfig | None = None):
        self.config = config or Tracker3DConfig()
        self._tracks: list[_Track] = []
        self._next_id = 0

    def update(self, people_xyz: Sequence[np.ndarray], time: float) -> list[int | None]:
        """``people_xyz``: each person's (K, 3) points (NaN where missing) at ``time`` seconds.
        Returns each person's id (None for a person with no point)."""
        self._tracks = [t for t in self._tracks if time - t.time <= self.config.max_gap_s]
        centroids = [np.nanmean(p, axis=0) if np.isfinite(p).any() else None for p in people_xyz]
        ids: list[int | None] = [None] * len(people_xyz)
        # the tracks seen most recently choose first (a stale track's wider gate must not win)
        for age in sorted({t.time for t in self._tracks}, reverse=True):
            tracks = [t for t in self._tracks if t.time == age]
            live = [i for i, c in enumerate(centroids) if c is not None and ids[i] is None]
            gate = self.config.gate_m + self.config.speed_mps * max(time - age, 0.0)
            sim = np.zeros((len(tracks), len(live)))
            for r, track in enumerate(tracks):
                for col, i in enumerate(live):
                    dist = float(np.linalg.norm(centroids[i] - track.centroid))
                    sim[r, col] = 1.0 - dist / gate if dist < gate else 0.0
            for r, col in assign(sim, 1e-9):
                track, i = tracks[r], live[col]
                track.centroid, track.time = centroids[i], time
                ids[i] = track.id
        live = [i for i, c in enumerate(centroids) if c is not None]
        for col, i in enumerate(live):
            if ids[i] is None:
                self._tracks.append(_Track(self._next_id, centroids[i], time))
                ids[i] = self._next_id
                self._next_id += 1
        return ids
