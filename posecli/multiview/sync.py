"""Per-camera frame offsets for videos that were not started together, estimated from the 2D.

With calibrated cameras the geometry says when two views show the same instant: a person of
camera 0 at frame t and the same person in camera c at frame t + lag triangulate consistently
(a small two-view reprojection error) only when the lag is right, as soon as people move. Per
frame the best-matching pair of the few tallest people of each view counts; for each camera the
lag with the lowest median over the frames they share wins (searched up to ``max_lag`` frames
either way, and at most a third of the shortest input, so that two thirds of the frames always
overlap). A correlation of keypoint speeds (Pose2Sim's way) needs long clips with a clear
movement: on the 100-frame shared demo it wandered (11,0,4,2 with correlations 0.3-0.5, and
other settings gave other lags). The geometry says 0,2,4,1 there (cam03's median two-view
error 16.2 -> 12.9 px); whether the demo's phones were a few frames apart is not known, so
``posecli 3d`` keeps frames aligned unless asked (``--offsets auto``).

Offsets come back as frames to skip at the start of each input (the smallest is 0), with each
camera's median error at the chosen lag and at lag 0, which say how much to trust it (a
still scene cannot be synchronised: every lag fits).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..types import Person
from .calibration import Camera
from .triangulate import dlt, reprojection_errors

MIN_CONFIDENCE = 0.3  # 2D keypoints used
MAX_PEOPLE = 3  # the tallest people of each frame that are compared
MIN_KEYPOINTS = 4  # keypoints two detections share to be compared
MIN_FRAMES = 5  # overlapping frames with a comparable pair for a lag to be judged


@dataclass(frozen=True)
class Offsets:
    """``frames``: frames to skip at the start of each input; ``error_px``: per input, the
    median two-view error with the first at the chosen lag; ``error_at_zero_px``: the same
    with no lag (0 for the first)."""

    frames: tuple[int, ...]
    error_px: tuple[float, ...]
    error_at_zero_px: tuple[float, ...]


def people_array(frames: Sequence[Sequence[Person]], num_parts: int) -> np.ndarray:
    """(T, P, K, 2) the pixels of the :data:`MAX_PEOPLE` tallest people of each frame, NaN where
    missing or unconfident."""
    out = np.full((len(frames), MAX_PEOPLE, num_parts, 2), np.nan)
    for t, people in enumerate(frames):
        for i, person in enumerate(sorted(people, key=_height, reverse=True)[:MAX_PEOPLE]):
            out[t, i] = np.where((person.scores >= MIN_CONFIDENCE)[:, None], person.xy, np.nan)
    return out


def _height(person: Person) -> float:
    box = person.bbox()
    return box[3] - box[1] if box else 0.0


def lag_error(cam_a: Camera, cam_b: Camera, a: np.ndarray, b: np.ndarray, lag: int,
              uv_a: np.ndarray | None = None, uv_b: np.ndarray | None = None) -> float:
    """Median over frames of the best-matching pair's two-view reprojection error (px; per
    pair the median over its keypoints) of ``a[t]`` (T, P, K, 2) with ``b[t + lag]``; inf when
    fewer than :data:`MIN_FRAMES` frames have a pair with :data:`MIN_KEYPOINTS` in common.
    ``uv_a``, ``uv_b``: the normalised coordinates of ``a`` and ``b`` when the caller has them
    already (every lag tried shares them)."""
    if uv_a is None:
        uv_a = cam_a.undistort(a)
    if uv_b is None:
        uv_b = cam_b.undistort(b)
    if lag >= 0:
        x, y = a[: max(len(a) - lag, 0)], b[lag:]
        u, v = uv_a[: max(len(a) - lag, 0)], uv_b[lag:]
    else:
        x, y = a[-lag:], b[: max(len(b) + lag, 0)]
        u, v = uv_a[-lag:], uv_b[: max(len(b) + lag, 0)]
    n = min(len(x), len(y))
    if n == 0:
        return float("inf")
    p, k = a.shape[1], a.shape[2]
    # every pair (person i of a, person j of b) of every overlapping frame: (n, P, P, K) points
    xa = np.broadcast_to(x[:n, :, None], (n, p, p, k, 2)).reshape(-1, 2)
    xb = np.broadcast_to(y[:n, None, :], (n, p, p, k, 2)).reshape(-1, 2)
    ua = np.broadcast_to(u[:n, :, None], (n, p, p, k, 2)).reshape(-1, 2)
    ub = np.broadcast_to(v[:n, None, :], (n, p, p, k, 2)).reshape(-1, 2)
    ok = np.isfinite(xa).all(axis=1) & np.isfinite(xb).all(axis=1)
    err = np.full(len(xa), np.inf)
    if ok.any():
        xy = np.stack([xa[ok], xb[ok]])
        uv = np.stack([ua[ok], ub[ok]])
        xyz = dlt(np.stack([cam_a.Rt, cam_b.Rt]), uv, np.ones(uv.shape[:2]))
        pair_err = reprojection_errors([cam_a, cam_b], xyz, xy).max(axis=0)
        err[ok] = np.nan_to_num(pair_err, nan=np.inf, posinf=np.inf)
    err = err.reshape(n, p * p, k)
    counted = np.isfinite(err).sum(axis=2) >= MIN_KEYPOINTS  # (n, P*P)
    per_pair = np.where(counted, np.median(np.where(np.isfinite(err), err, 1e9), axis=2), np.inf)
    per_frame = per_pair.min(axis=1)
    per_frame = per_frame[np.isfinite(per_frame)]
    return float(np.median(per_frame)) if len(per_frame) >= MIN_FRAMES else float("inf")


def estimate_offsets(cameras: Sequence[Camera], views: Sequence[Sequence[Sequence[Person]]],
                     num_parts: int, max_lag: int = 60) -> Offsets:
    """Offsets of every input from its people in all its frames (see the module doc)."""
    tracks = [people_array(v, num_parts) for v in views]
    uvs = [cam.undistort(t) for cam, t in zip(cameras, tracks, strict=True)]  # once, for every lag
    shortest = min(len(t) for t in tracks)
    max_lag = max(0, min(max_lag, shortest // 3))
    lags, errors, at_zero = [0], [0.0], [0.0]
    for c in range(1, len(cameras)):
        candidates = list(range(-max_lag, max_lag + 1))
        values = [lag_error(cameras[0], cameras[c], tracks[0], tracks[c], lag, uvs[0], uvs[c])
                  for lag in candidates]
        best = int(np.argmin(values))
        lags.append(candidates[best])
        errors.append(round(values[best], 2))
        at_zero.append(round(values[candidates.index(0)], 2))
    low = min(lags)
    return Offsets(tuple(lag - low for lag in lags), tuple(errors), tuple(at_zero))
