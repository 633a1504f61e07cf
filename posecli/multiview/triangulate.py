"""Robust triangulation of one person's keypoints seen by several calibrated cameras.

Shapes: C cameras, K keypoints. ``xy`` (C, K, 2) pixels as the videos show them (distorted),
NaN where a camera did not see the keypoint; ``conf`` (C, K) the 2D confidences.

Steps, vectorised over keypoints:

1. Each pixel is undistorted to normalised image coordinates (``cv2.undistortPoints``), so the
   linear system is well conditioned and lens distortion is out of it.
2. Confidence-weighted DLT: each view adds two rows ``w (u P3 - P1)``, ``w (v P3 - P2)`` with
   ``P = [R | t]``; the point is the smallest right singular vector (the eigenvector of
   ``A^T A`` with the smallest eigenvalue).
3. Consensus (RANSAC over pairs, exhaustive: C(C-1)/2 hypotheses, 6 for 4 cameras): every
   pair of usable views is triangulated and reprojected into all views; a view agrees with
   the pair when its error is under ``threshold_px``. Per keypoint, of the pairs that agree
   with themselves, the one with most views agreeing wins (ties: the smaller summed error), and
   the point is triangulated from those views (all usable views when no pair agrees). Least
   squares over all views cannot do this with 3 cameras: one bad view pulls the point until
   every view shares its error, and no view looks worse than the others.
4. Then the views kept are checked relative to each other: while a keypoint keeps more than
   ``min_views`` views and its worst view's error exceeds both ``threshold_px`` and ``ratio``
   times the median error of its other views, that view goes and the point is triangulated
   again. No fixed count of views is dropped; two views that disagree cannot be told apart,
   their point is kept with its error (``max_error_px`` drops it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .calibration import Camera, project_many

MAX_COORDINATE_M = 1e6  # a point farther than this came from (nearly) parallel rays: missing
MAX_ERROR_PX = 1e6  # reprojection errors are capped here (sums of them stay finite)


@dataclass(frozen=True)
class TriangulationConfig:
    """``min_confidence``: 2D keypoints below this are not used. ``threshold_px``: a view whose
    reprojection error is under this is never dropped (15, Pose2Sim's value: on the shared
    demo 20 kept more views but put the bone-held skeleton 12.2 px from the 2D, 15 px 11.7).
    ``ratio``: a view is dropped when its error is over ``ratio`` x the median of the other
    views' errors (and over ``threshold_px``).
    ``min_views``: views a point keeps at least (2). ``max_error_px``: a point whose mean error
    over its views stays above this is reported missing (None: kept)."""

    min_confidence: float = 0.3
    threshold_px: float = 15.0
    ratio: float = 3.0
    min_views: int = 2
    max_error_px: float | None = 100.0

    def __post_init__(self) -> None:
        for name in ("min_confidence", "threshold_px", "ratio"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"{name}={value!r}: expected a finite number >= 0")
        if self.min_views < 2:
            raise ValueError(f"min_views={self.min_views!r}: a point needs at least 2 views")
        if self.max_error_px is not None and not (np.isfinite(self.max_error_px) and self.max_error_px > 0):
            raise ValueError(f"max_error_px={self.max_error_px!r}: expected a finite number > 0 or None")


@dataclass
class Points3D:
    """One person's triangulation. ``xyz`` (K, 3) metres, NaN where missing; ``error_px`` (K,)
    mean reprojection error over the views used (NaN where missing); ``used`` (C, K) bool,
    the views each point kept; ``view_error_px`` (C, K) each view's error (NaN where unused)."""

    xyz: np.ndarray
    error_px: np.ndarray
    used: np.ndarray
    view_error_px: np.ndarray


def dlt(extrinsics: np.ndarray, uv: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted linear triangulation. ``extrinsics`` (C, 3, 4) ``[R|t]``; ``uv`` (C, K, 2)
    normalised coordinates; ``weights`` (C, K), 0 where a view is not used.
    Returns (K, 3); NaN where fewer than two views have weight."""
    uv = np.nan_to_num(uv)
    w = weights[..., None]  # (C, K, 1)
    p1, p2, p3 = (extrinsics[:, None, i, :] for i in range(3))  # (C, 1, 4)
    rows_u = w * (uv[..., 0:1] * p3 - p1)  # (C, K, 4)
    rows_v = w * (uv[..., 1:2] * p3 - p2)
    A = np.concatenate([rows_u, rows_v], axis=0).transpose(1, 0, 2)  # (K, 2C, 4)
    # the smallest right singular vector of A: the eigenvector of A^T A with the smallest eigenvalue
    _, vectors = np.linalg.eigh(np.einsum("kri,krj->kij", A, A))
    hom = vectors[:, :, 0]  # (K, 4)
    with np.errstate(divide="ignore", invalid="ignore"):
        xyz = hom[:, :3] / hom[:, 3:4]
    enough = (weights > 0).sum(axis=0) >= 2
    with np.errstate(invalid="ignore"):
        far = ~(np.abs(xyz) < MAX_COORDINATE_M).all(axis=1)  # parallel rays meet at infinity
    xyz[~enough | far] = np.nan
    return xyz


def reprojection_errors(cameras: Sequence[Camera], xyz: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """(C, K) pixel distance between each camera's projection of ``xyz`` (K, 3) and ``xy``
    (C, K, 2); inf where the point is behind the camera, NaN where either is missing."""
    tiled = np.broadcast_to(xyz, (len(cameras), *xyz.shape))
    with np.errstate(over="ignore", invalid="ignore"):  # a point on a camera's plane projects to infinity
        err = np.minimum(np.linalg.norm(project_many(cameras, tiled) - xy, axis=-1), MAX_ERROR_PX)
    depth = (np.einsum("cj,kj->ck", np.stack([c.R[2] for c in cameras]), xyz)
             + np.array([c.t[2] for c in cameras])[:, None])
    return np.where(depth > 0, err, np.where(np.isnan(depth), np.nan, np.inf))


def triangulate(cameras: Sequence[Camera], xy: np.ndarray, conf: np.ndarray,
                config: TriangulationConfig | None = None, uv: np.ndarray | None = None) -> Points3D:
    """One person's keypoints (see the module doc). ``uv``: the normalised coordinates of
    ``xy`` when the caller has them already (:func:`normalise`)."""
    config = config or TriangulationConfig()
    xy = np.asarray(xy, dtype=np.float64)
    conf = np.asarray(conf, dtype=np.float64)
    if uv is None:
        uv = normalise(cameras, xy)
    extrinsics = np.stack([cam.Rt for cam in cameras])
    usable = np.isfinite(uv).all(axis=-1) & (conf >= config.min_confidence) & (conf > 0)
    used = _consensus(cameras, extrinsics, uv, xy, np.where(usable, conf, 0.0), config.threshold_px)
    while True:
        xyz = dlt(extrinsics, uv, np.where(used, conf, 0.0))
        errors = np.where(used, reprojection_errors(cameras, xyz, xy), np.nan)
        drop = _worst_view_to_drop(errors, used, config)
        if drop is None:
            break
        view, points = drop
        used[view, points] = False
    n_views = used.sum(axis=0)
    with np.errstate(invalid="ignore"):
        mean_error = np.where(n_views >= 2,
                              np.nansum(np.where(used, errors, 0.0), axis=0) / np.maximum(n_views, 1),
                              np.nan)
    bad = ~np.isfinite(mean_error) | ~np.isfinite(xyz).all(axis=1)
    if config.max_error_px is not None:
        bad |= mean_error > config.max_error_px
    xyz[bad] = np.nan
    mean_error[bad] = np.nan
    used[:, bad] = False
    return Points3D(xyz, mean_error, used, np.where(used, errors, np.nan))


def _worst_view_to_drop(errors: np.ndarray, used: np.ndarray, config: TriangulationConfig):
    """``(view (P,), points (P,))``: for each point whose worst view should go, that view; None if none."""
    n_views = used.sum(axis=0)
    filled = np.where(used, np.nan_to_num(errors, nan=np.inf, posinf=1e12), -1.0)
    worst = filled.argmax(axis=0)  # (K,)
    k = np.arange(errors.shape[1])
    worst_err = filled[worst, k]
    others = np.where(used, np.nan_to_num(errors, nan=np.inf, posinf=1e12), np.inf)
    others[worst, k] = np.inf
    median_others = _median_finite(others)
    limit = np.maximum(config.threshold_px, config.ratio * median_others)
    points = np.flatnonzero((n_views > config.min_views) & (worst_err > limit))
    if not len(points):
        return None
    return worst[points], points


def _median_finite(values: np.ndarray) -> np.ndarray:
    """(K,) the median over axis 0 of the finite entries of (C, K) (inf marks absent); 0 where none."""
    ordered = np.sort(values, axis=0)
    n = np.isfinite(values).sum(axis=0)
    lo = np.take_along_axis(ordered, np.maximum((n - 1) // 2, 0)[None], axis=0)[0]
    hi = np.take_along_axis(ordered, np.maximum(n // 2, 0)[None], axis=0)[0]
    return np.where(n > 0, (lo + hi) / 2, 0.0)


def _consensus(cameras, extrinsics: np.ndarray, uv: np.ndarray, xy: np.ndarray, weights: np.ndarray,
               threshold_px: float) -> np.ndarray:
    """(C, K) bool: per keypoint, the views that agree with the best pair (see the module doc);
    every usable view where no pair agrees with itself."""
    usable = weights > 0
    n_cams, n_points = usable.shape
    best = usable.copy()
    best_count = np.zeros(n_points, dtype=int)
    best_cost = np.full(n_points, np.inf)
    if n_cams < 3:
        return best
    pairs = [(i, j) for i in range(n_cams) for j in range(i + 1, n_cams)]
    # every pair hypothesis at once: (P*K) points
    w = np.zeros((n_cams, len(pairs), n_points))
    for h, (i, j) in enumerate(pairs):
        w[[i, j], h] = weights[[i, j]]
    tiled_uv = np.repeat(uv[:, None], len(pairs), axis=1).reshape(n_cams, -1, 2)
    xyz = dlt(extrinsics, tiled_uv, w.reshape(n_cams, -1))
    tiled_xy = np.repeat(xy[:, None], len(pairs), axis=1).reshape(n_cams, -1, 2)
    err_all = reprojection_errors(cameras, xyz, tiled_xy).reshape(n_cams, len(pairs), n_points)
    for h, (i, j) in enumerate(pairs):
        err = err_all[:, h]
        agree = usable & (np.nan_to_num(err, nan=np.inf, posinf=np.inf) <= threshold_px)
        count = agree.sum(axis=0)
        cost = np.where(agree, np.nan_to_num(err, nan=0.0, posinf=0.0), 0.0).sum(axis=0)
        consistent = agree[i] & agree[j]  # the pair agrees with itself (epipolar consistency)
        better = consistent & ((count > best_count) | ((count == best_count) & (cost < best_cost)))
        best[:, better] = agree[:, better]
        best_count = np.where(better, count, best_count)
        best_cost = np.where(better, cost, best_cost)
    return best


def normalise(cameras: Sequence[Camera], xy: np.ndarray) -> np.ndarray:
    """(C, ..., 2) pixels -> normalised coordinates, camera by camera (NaN kept)."""
    return np.stack([cam.undistort(xy[c]) for c, cam in enumerate(cameras)])


def point_compliance(cameras: Sequence[Camera], xyz: np.ndarray, used: np.ndarray,
                     ridge: float = 1e-3) -> np.ndarray:
    """(K, 3, 3) the inverse of each point's information ``sum_c J_c^T J_c`` (J_c: the (2, 3)
    pixels-per-metre Jacobian of camera c's pinhole projection) over the views it ``used``
    (C, K): small across the views' rays, large along them. ``ridge`` x the trace keeps it
    invertible; NaN where a point is missing."""
    k = xyz.shape[0]
    info = np.zeros((k, 3, 3))
    for c, cam in enumerate(cameras):
        xc = xyz @ cam.R.T + cam.t  # (K, 3) camera coordinates
        z = xc[:, 2]
        ok = used[c] & np.isfinite(z) & (z > 1e-6)
        if not ok.any():
            continue
        x, y = xc[ok, 0] / z[ok], xc[ok, 1] / z[ok]
        j = np.zeros((ok.sum(), 2, 3))
        j[:, 0, 0], j[:, 0, 2] = cam.K[0, 0], -cam.K[0, 0] * x
        j[:, 1, 1], j[:, 1, 2] = cam.K[1, 1], -cam.K[1, 1] * y
        j = (j / z[ok, None, None]) @ cam.R  # d pixels / d world
        info[ok] += np.einsum("kai,kaj->kij", j, j)
    trace = np.trace(info, axis1=1, axis2=2)
    out = np.full((k, 3, 3), np.nan)
    ok = trace > 0
    out[ok] = np.linalg.inv(info[ok] + (ridge * trace[ok])[:, None, None] * np.eye(3))
    return out
