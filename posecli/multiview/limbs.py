"""One person's 3D keypoints over time: zero-phase smoothing, and bones that keep their length.

Shapes: T frames, K keypoints; ``xyz`` (T, K, 3) metres, NaN where missing.

* :func:`smooth`: a Butterworth low-pass run forwards and backwards (no lag) over each stretch
  of frames where a keypoint is present; stretches too short to filter are left as they are.
* :func:`bone_lengths`: each bone's length as the median over the frames that have both ends.
* :func:`keep_lengths`: every frame moved to those lengths by a few rounds of constraint
  projection: each bone's two ends pulled or pushed by the smallest step weighted by how well
  their cameras pin them (a point moves along the rays of its views, where the pixels barely
  change, rather than across them), which keeps each frame on its 2D while the skeleton
  stops stretching.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..skeleton import Skeleton

# The arm and leg segments the limb-length figures are about (COCO names).
ARM_LEG_BONES: tuple[tuple[str, str], ...] = (
    ("r_shoulder", "r_elbow"), ("r_elbow", "r_wrist"), ("l_shoulder", "l_elbow"), ("l_elbow", "l_wrist"),
    ("r_hip", "r_knee"), ("r_knee", "r_ankle"), ("l_hip", "l_knee"), ("l_knee", "l_ankle"),
)


@dataclass(frozen=True)
class LimbConfig:
    """``cutoff_hz``: the low-pass cutoff (None: no smoothing, the default: on the shared demo a
    6 Hz low-pass at 60 fps moved the median reprojection from 10 to 15 px and barely
    steadied the bones); ``order``: the Butterworth order;
    ``iterations``: rounds of length projection (0: lengths left as triangulated);
    ``tolerance``: a bone within this fraction of its median length is left as it is, one
    outside is brought to the edge of that band (0: every bone exactly at its median);
    ``min_frames``: a bone measured in fewer frames keeps its lengths free; ``bones``: which
    bones keep their length (:func:`bones_of`); ``max_gap_frames``: a keypoint missing for at
    most this many frames is filled by linear interpolation (Pose2Sim's default, 10; 0: never),
    reported with no views and no reprojection error."""

    cutoff_hz: float | None = None
    order: int = 2
    iterations: int = 20
    tolerance: float = 0.03
    min_frames: int = 5
    bones: str = "limbs"
    max_gap_frames: int = 10

    def __post_init__(self) -> None:
        if self.cutoff_hz is not None and not (np.isfinite(self.cutoff_hz) and self.cutoff_hz > 0):
            raise ValueError(f"cutoff_hz={self.cutoff_hz!r}: expected a finite number > 0 or None")
        if not 1 <= self.order <= 8:
            raise ValueError(f"order={self.order!r}: expected 1 to 8")
        if self.bones not in ("limbs", "all"):
            raise ValueError(f"bones={self.bones!r}: expected 'limbs' or 'all'")
        if not (np.isfinite(self.tolerance) and 0 <= self.tolerance < 1):
            raise ValueError(f"tolerance={self.tolerance!r}: expected a fraction in [0, 1)")
        if self.iterations < 0 or self.min_frames < 1 or self.max_gap_frames < 0:
            raise ValueError("iterations must be >= 0 and min_frames >= 1")


def bones_of(skeleton: Skeleton, which: str = "limbs") -> list[tuple[int, int]]:
    """The (parent, child) keypoint pairs whose lengths are kept: ``limbs``, the arm and leg
    segments (:data:`ARM_LEG_BONES`); ``all``, every drawn limb of the skeleton (the face too)."""
    if which == "all":
        return [skeleton.limbs[i] for i in skeleton.drawn_limbs]
    return [(skeleton.index(a), skeleton.index(b)) for a, b in ARM_LEG_BONES
            if a in skeleton.parts and b in skeleton.parts]


def smooth(xyz: np.ndarray, fps: float, cutoff_hz: float, order: int = 2) -> np.ndarray:
    """(T, K, 3) low-passed without lag (see the module doc); a new array."""
    from scipy.signal import butter, filtfilt

    out = np.array(xyz, dtype=np.float64)
    nyquist = fps / 2
    if cutoff_hz >= nyquist:
        return out
    b, a = butter(order, cutoff_hz / nyquist)
    pad = 3 * max(len(a), len(b))
    present = np.isfinite(out).all(axis=2)  # (T, K)
    for k in range(out.shape[1]):
        for start, stop in _runs(present[:, k]):
            if stop - start > pad:
                out[start:stop, k] = filtfilt(b, a, out[start:stop, k], axis=0)
    return out


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` of each run of True in a 1D bool array."""
    edges = np.diff(np.concatenate([[0], mask.astype(int), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def bone_lengths(xyz: np.ndarray, bones: list[tuple[int, int]], min_frames: int = 5) -> np.ndarray:
    """(B,) the median length of each bone over T frames (NaN where measured in fewer than ``min_frames``)."""
    out = np.full(len(bones), np.nan)
    for i, (p, c) in enumerate(bones):
        d = np.linalg.norm(xyz[:, c] - xyz[:, p], axis=-1)
        d = d[np.isfinite(d)]
        if len(d) >= min_frames:
            out[i] = float(np.median(d))
    return out


def keep_lengths(xyz: np.ndarray, bones: list[tuple[int, int]], lengths: np.ndarray,
                 compliance: np.ndarray | None = None, iterations: int = 20,
                 tolerance: float = 0.0) -> np.ndarray:
    """(T, K, 3) with each bone moved to ``lengths`` (B,) (see the module doc).

    ``compliance``: how each keypoint may move, (T, K) (a scale: the larger moves more) or
    (T, K, 3, 3) (an inverse information matrix: a point moves most where its views see least,
    along their rays; :func:`~posecli.multiview.triangulate.point_compliance`); None: equally.
    Each round moves the two ends of every bone by the smallest weighted step that brings it
    to its band (position-based constraint projection). ``tolerance``: lengths within this
    fraction of their target are left alone."""
    out = np.array(xyz, dtype=np.float64)
    t, k = out.shape[:2]
    if compliance is None:
        compliance = np.ones((t, k))
    compliance = np.nan_to_num(np.asarray(compliance, dtype=np.float64), nan=0.0)
    if compliance.ndim == 2:
        compliance = compliance[..., None, None] * np.eye(3)
    for _ in range(iterations):
        for (p, c), length in zip(bones, lengths, strict=True):
            if not np.isfinite(length):
                continue
            d = out[:, c] - out[:, p]  # (T, 3)
            norm = np.linalg.norm(d, axis=-1)
            ok = np.isfinite(norm) & (norm > 1e-9)
            if not ok.any():
                continue
            n = d[ok] / norm[ok, None]  # (T', 3) unit bone direction
            target = np.clip(norm[ok], length * (1 - tolerance), length * (1 + tolerance))
            violation = norm[ok] - target  # > 0: too long
            mp = np.einsum("tij,tj->ti", compliance[ok, p], n)
            mc = np.einsum("tij,tj->ti", compliance[ok, c], n)
            weight = np.einsum("ti,ti->t", n, mp) + np.einsum("ti,ti->t", n, mc)
            lam = np.where(weight > 1e-18, violation / np.maximum(weight, 1e-18), 0.0)[:, None]
            out[ok, p] += lam * mp
            out[ok, c] -= lam * mc
    return out


def consistent_track(xyz: np.ndarray, compliance: np.ndarray | None, skeleton: Skeleton, fps: float,
                     config: LimbConfig | None = None) -> np.ndarray:
    """One track's (T, K, 3): short gaps filled, smoothed, then bones held at their median
    lengths (``compliance``: see :func:`keep_lengths`)."""
    config = config or LimbConfig()
    out, filled = fill_gaps(np.asarray(xyz, dtype=np.float64), config.max_gap_frames)
    if compliance is not None and filled.any() and np.asarray(compliance).ndim == 4:
        compliance = np.array(compliance, dtype=np.float64)
        known = np.isfinite(compliance).all(axis=(2, 3))
        if known.any():  # a filled point is a guess: it moves freely (10x a measured point's give)
            compliance[filled] = 10 * np.mean(compliance[known], axis=0)
    if config.cutoff_hz is not None and fps > 0:
        out = smooth(out, fps, config.cutoff_hz, config.order)
    if config.iterations:
        bones = bones_of(skeleton, config.bones)
        lengths = bone_lengths(out, bones, config.min_frames)
        out = keep_lengths(out, bones, lengths, compliance, config.iterations, config.tolerance)
    return out


def fill_gaps(xyz: np.ndarray, max_gap: int) -> tuple[np.ndarray, np.ndarray]:
    """(T, K, 3) with each keypoint's gaps of at most ``max_gap`` frames, between two frames
    that have it, filled by linear interpolation; and the (T, K) bool mask of filled points."""
    out = np.array(xyz, dtype=np.float64)
    filled = np.zeros(out.shape[:2], dtype=bool)
    if max_gap < 1:
        return out, filled
    frames = np.arange(len(out))
    for k in range(out.shape[1]):
        seen = np.isfinite(out[:, k]).all(axis=1)
        for start, stop in _runs(~seen):
            if start == 0 or stop == len(out) or stop - start > max_gap:
                continue
            for axis in range(3):
                out[start:stop, k, axis] = np.interp(frames[start:stop], frames[seen], out[seen, k, axis])
            filled[start:stop, k] = True
    return out, filled


def length_spread(xyz: np.ndarray, skeleton: Skeleton, off_by: float = 0.2) -> tuple[float, float]:
    """The two limb figures of the 8 arm and leg bones over (T, K, 3): the median over bones of
    IQR/median of the length, and the fraction of (bone, frame) lengths off their bone's
    median by more than ``off_by``."""
    spreads, off, total = [], 0, 0
    for a, b in ARM_LEG_BONES:
        d = np.linalg.norm(xyz[:, skeleton.index(b)] - xyz[:, skeleton.index(a)], axis=-1)
        d = d[np.isfinite(d)]
        if len(d) < 2:
            continue
        med = np.median(d)
        q1, q3 = np.percentile(d, [25, 75])
        spreads.append((q3 - q1) / med)
        off += int((np.abs(d - med) > off_by * med).sum())
        total += len(d)
    if not spreads:
        return float("nan"), float("nan")
    return float(np.median(spreads)), off / total
