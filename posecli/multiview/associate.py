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


def pair_cost(cam_a: Camera, cam_b: Camera, xy_a: np.ndarray, xy_b: np.ndarray, uv_a: np.ndarray,
              uv_b: np.ndarray, ok_a: np.ndarray, ok_b: np.ndarray) -> np.ndarray:
    """(A, B) mean two-view reprojection error (px) between the A people of one camera and
    the B of another; inf where they share fewer than :data:`MIN_COMMON_KEYPOINTS` keypoints.
    ``xy_*`` (N, K, 2) pixels, ``uv_*`` normalised, ``ok_*`` (N, K) usable keypoints."""
    n_a, n_b = len(xy_a), len(xy_b)
    cost = np.full((n_a, n_b), np.inf)
    if not n_a or not n_b:
        return cost
    k = xy_a.shape[1]
    ext = np.stack([cam_a.Rt, cam_b.Rt])
    # every (a, b) pair at once: (A*B*K) points, two views
    ia, ib = np.meshgrid(np.arange(n_a), np.arange(n_b), indexing="ij")
    ia, ib = ia.reshape(-1), ib.reshape(-1)
    uv = np.stack([uv_a[ia].reshape(-1, 2), uv_b[ib].reshape(-1, 2)])
    both = (ok_a[ia] & ok_b[ib]).reshape(-1)
    xyz = dlt(ext, uv, np.where(both, 1.0, 0.0)[None].repeat(2, axis=0))
    xy = np.stack([xy_a[ia].reshape(-1, 2), xy_b[ib].reshape(-1, 2)])
    err = reprojection_errors([cam_a, cam_b], xyz, xy).max(axis=0)  # (A*B*K,)
    err = np.where(both, err, np.nan).reshape(n_a * n_b, k)
    common = np.isfinite(err).sum(axis=1) + np.isinf(err).sum(axis=1)
    with np.errstate(invalid="ignore"):
        mean = np.where(common >= MIN_COMMON_KEYPOINTS,
                        np.nansum(np.nan_to_num(err, posinf=1e9), axis=1) / np.maximum(common, 1), np.inf)
    cost[ia, ib] = mean
    return cost


def group_views(cameras: Sequence[Camera], xy: Sequence[np.ndarray], conf: Sequence[np.ndarray],
                config: AssociationConfig | None = None) -> list[Group]:
    """The 3D people of one frame. ``xy[c]`` (N_c, K, 2) pixels (NaN where missing),
    ``conf[c]`` (N_c, K). A group has people from at least two cameras."""
    config = config or AssociationConfig()
    n_cams = len(cameras)
    uv = [cam.undistort(p) if len(p) else p for cam, p in zip(cameras, xy, strict=True)]
    ok = [np.isfinite(p).all(axis=-1) & (s >= config.min_confidence) for p, s in zip(xy, conf, strict=True)]
    costs: dict[tuple[int, int], np.ndarray] = {}
    edges = []
    for a in range(n_cams):
        for b in range(a + 1, n_cams):
            c = pair_cost(cameras[a], cameras[b], xy[a], xy[b], uv[a], uv[b], ok[a], ok[b])
            costs[a, b] = c
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
