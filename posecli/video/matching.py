"""Matching people by keypoint similarity: OKS and the optimal one-to-one assignment.

Shared by the tracker (a person against each track's predicted pose) and the Ray
engine's stitching (ids of two runs over the same frames). COCO's object keypoint
similarity of two poses is ``mean_k exp(-d_k^2 / (2 area (2 sigma_k)^2))`` over the
keypoints both have; :func:`assign` picks the pairing with the highest total similarity
(:func:`scipy.optimize.linear_sum_assignment`) and refuses weak pairs.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..skeleton import Skeleton

# COCO's per-keypoint OKS sigmas, by part name without side; parts COCO lacks borrow the
# nearest COCO part's value (neck ~ shoulders, mid hip ~ hips, feet ~ ankles).
_SIGMAS = {
    "nose": 0.026, "eye": 0.025, "ear": 0.035, "neck": 0.079, "shoulder": 0.079,
    "elbow": 0.072, "wrist": 0.062, "hip": 0.107, "mid_hip": 0.107, "knee": 0.087,
    "ankle": 0.089, "big_toe": 0.089, "small_toe": 0.089, "heel": 0.089,
}
_DEFAULT_SIGMA = 0.08


def keypoint_sigmas(skeleton: Skeleton) -> np.ndarray:
    """(K,) OKS sigma of each keypoint of ``skeleton`` (COCO values where the name is known)."""
    out = []
    for name in skeleton.parts:
        base = name.lower()
        for prefix in ("l_", "r_", "left_", "right_"):
            if base.startswith(prefix):
                base = base[len(prefix):]
                break
        out.append(_SIGMAS.get(base, _DEFAULT_SIGMA))
    return np.asarray(out)


def keypoint_area(xy: np.ndarray) -> float:
    """Bounding-box area of the finite points of (K, 2) ``xy`` (0 when fewer than two)."""
    pts = xy[np.isfinite(xy).all(axis=1)]
    if len(pts) < 2:
        return 0.0
    w, h = pts.max(axis=0) - pts.min(axis=0)
    return float(w * h)


def oks(a: np.ndarray, b: np.ndarray, area: float, sigmas: np.ndarray) -> float:
    """Object keypoint similarity of two (K, 2) poses over the keypoints both have.

    ``area``: the person's scale squared (pixels^2). 0 when they share no keypoint.
    """
    both = np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1)
    if not both.any():
        return 0.0
    d2 = ((a[both] - b[both]) ** 2).sum(axis=1)
    k2 = (2.0 * sigmas[both]) ** 2
    return float(np.exp(-d2 / (2.0 * area * k2)).mean())


def oks_matrix(a: np.ndarray, b: np.ndarray, area: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """(N, M) OKS of (N, K, 2) poses ``a`` against (M, K, 2) poses ``b`` with (N, M) ``area``.

    As :func:`oks` for every pair at once; 0 for pairs that share no keypoint.
    """
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    d2 = ((a[:, None] - b[None]) ** 2).sum(axis=-1)  # (N, M, K), NaN where either misses
    both = np.isfinite(d2)
    k2 = (2.0 * sigmas) ** 2
    e = np.exp(-np.where(both, d2, 0.0) / (2.0 * area[..., None] * k2)) * both
    n = both.sum(axis=-1)
    return np.where(n > 0, e.sum(axis=-1) / np.maximum(n, 1), 0.0)


def assign(similarity: np.ndarray, min_similarity: float) -> list[tuple[int, int]]:
    """``(row, column)`` pairs of the one-to-one assignment with the highest total
    ``similarity`` (an (A, B) matrix), keeping pairs at or above ``min_similarity`` and
    above 0 (two poses with nothing in common are never a pair)."""
    if not similarity.size:
        return []
    rows, cols = linear_sum_assignment(similarity, maximize=True)
    return [(int(i), int(j)) for i, j in zip(rows, cols)
            if similarity[i, j] >= min_similarity and similarity[i, j] > 0]
