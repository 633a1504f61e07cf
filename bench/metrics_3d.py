"""3D figures measured from the files alone (NumPy and the standard library; no posecli import).

The bench (:mod:`bench.bench_3d`) and the tests share these, and they measure posecli 3d and
Pose2Sim the same way, from what each writes:

* limb consistency: for the 8 arm and leg segments, IQR over frames / median length, and the share
  of frames where a segment is more than 20% off its median length;
* reprojection: the 3D projected into each camera (its calibration, lens distortion included)
  against that camera's own 2D keypoints of confidence >= 0.3, in pixels.

Shapes: F frames, K keypoints (posecli's COCO-18 names), C cameras. ``xyz`` is (F, K, 3) metres in
the calibration's world frame (Z up), NaN where a keypoint is missing; ``kp2d`` is (F, P, K, 3)
x, y, confidence per camera, P people, NaN where absent.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

# The 8 segments whose length must not change: upper arm, forearm, thigh, shank, both sides.
SEGMENTS = (
    ("r_upper_arm", "r_shoulder", "r_elbow"), ("r_forearm", "r_elbow", "r_wrist"),
    ("l_upper_arm", "l_shoulder", "l_elbow"), ("l_forearm", "l_elbow", "l_wrist"),
    ("r_thigh", "r_hip", "r_knee"), ("r_shank", "r_knee", "r_ankle"),
    ("l_thigh", "l_hip", "l_knee"), ("l_shank", "l_knee", "l_ankle"),
)
OFF_MEDIAN = 0.20  # a segment more than this fraction off its median length is "off"
MIN_CONFIDENCE = 0.3  # 2D keypoints below this are not compared
# Pose2Sim / OpenSim marker names -> posecli's COCO-18 names.
TRC_NAMES = {
    "Nose": "nose", "Neck": "neck", "RShoulder": "r_shoulder", "RElbow": "r_elbow", "RWrist": "r_wrist",
    "LShoulder": "l_shoulder", "LElbow": "l_elbow", "LWrist": "l_wrist", "RHip": "r_hip", "RKnee": "r_knee",
    "RAnkle": "r_ankle", "LHip": "l_hip", "LKnee": "l_knee", "LAnkle": "l_ankle", "REye": "r_eye",
    "LEye": "l_eye", "REar": "r_ear", "LEar": "l_ear",
}
COCO18 = ("nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist", "r_hip",
          "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "r_eye", "l_eye", "r_ear", "l_ear")


# ---------------------------------------------------------------------------------------------
# Cameras
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Camera:
    """One calibrated camera: x_cam = R @ x_world + t, pixels = K @ distort(x_cam / z)."""

    name: str
    size_wh: tuple[float, float]
    K: np.ndarray  # (3, 3)
    dist: np.ndarray  # (4..8,) k1, k2, p1, p2[, k3]
    R: np.ndarray  # (3, 3)
    t: np.ndarray  # (3,)


def rodrigues(rvec) -> np.ndarray:
    """(3, 3) rotation of a Rodrigues vector (axis * angle in radians)."""
    r = np.asarray(rvec, float)
    theta = float(np.linalg.norm(r))
    if theta < 1e-12:
        return np.eye(3)
    k = r / theta
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(theta) * kx + (1 - math.cos(theta)) * kx @ kx


def read_cameras(path: Path) -> list[Camera]:
    """The cameras of a Pose2Sim/anipose TOML calibration, in file order."""
    data = tomllib.loads(Path(path).read_text())
    cams = []
    for key, c in data.items():
        if not isinstance(c, dict) or "matrix" not in c:
            continue  # [metadata] and friends
        cams.append(Camera(str(c.get("name", key)), tuple(c["size"]), np.asarray(c["matrix"], float),
                           np.asarray(c.get("distortions", [0, 0, 0, 0]), float),
                           rodrigues(c["rotation"]), np.asarray(c["translation"], float)))
    return cams


def write_cameras(cams: list[Camera], path: Path) -> None:
    """A TOML calibration of ``cams`` (for the held-out check: three of the four)."""
    lines = []
    for c in cams:
        rvec = _rvec(c.R)
        lines += [f"[{c.name}]", f'name = "{c.name}"', f"size = {list(map(float, c.size_wh))}",
                  f"matrix = {c.K.tolist()}", f"distortions = {c.dist.tolist()}",
                  f"rotation = {rvec.tolist()}", f"translation = {c.t.tolist()}", "fisheye = false", ""]
    Path(path).write_text("\n".join(lines))


def _rvec(R: np.ndarray) -> np.ndarray:
    """The Rodrigues vector of a rotation matrix (inverse of :func:`rodrigues`)."""
    cos = np.clip((np.trace(R) - 1) / 2, -1.0, 1.0)
    theta = math.acos(cos)
    if theta < 1e-12:
        return np.zeros(3)
    if math.pi - theta < 1e-6:  # half turn: axis from R + I
        axis = np.sqrt(np.clip((np.diag(R) + 1) / 2, 0, None))
        i = int(np.argmax(axis))
        axis = (R[:, i] + np.eye(3)[i]) / (2 * axis[i])
        return axis / np.linalg.norm(axis) * theta
    w = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]]) / (2 * math.sin(theta))
    return w * theta


def project(cam: Camera, xyz: np.ndarray) -> np.ndarray:
    """(..., 2) pixels of (..., 3) world points, lens distortion applied (NaN stays NaN)."""
    pc = xyz @ cam.R.T + cam.t
    z = pc[..., 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        x, y = pc[..., 0] / z, pc[..., 1] / z
    d = np.zeros(5)
    d[:min(5, cam.dist.size)] = cam.dist[:5]
    k1, k2, p1, p2, k3 = d
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2 ** 2 + k3 * r2 ** 3
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    u = cam.K[0, 0] * xd + cam.K[0, 1] * yd + cam.K[0, 2]
    v = cam.K[1, 1] * yd + cam.K[1, 2]
    out = np.stack([u, v], axis=-1)
    out[z <= 0] = np.nan  # behind the camera
    return out


# ---------------------------------------------------------------------------------------------
# Readers
# ---------------------------------------------------------------------------------------------
def read_trc(path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(marker names as written, (F,) times, (F, M, 3) in the TRC's axes; NaN for empty cells)."""
    lines = Path(path).read_text().splitlines()
    names = [n for n in lines[3].split("\t")[2:] if n.strip()]
    rows = [ln.split("\t") for ln in lines[5:] if ln.strip()]
    times = np.array([float(r[1]) for r in rows])
    vals = np.full((len(rows), 3 * len(names)), np.nan)
    for i, r in enumerate(rows):
        cells = r[2:2 + 3 * len(names)]
        vals[i, :len(cells)] = [float(c) if c.strip() else np.nan for c in cells]
    return names, times, vals.reshape(len(rows), len(names), 3)


def trc_to_world(xyz_trc: np.ndarray) -> np.ndarray:
    """Pose2Sim's TRC axes (Y up: X=world y, Y=world z, Z=world x) back to the world frame (Z up)."""
    return xyz_trc[..., [2, 0, 1]]


def trc_keypoints(path: Path, names=COCO18) -> np.ndarray:
    """(F, K, 3) world metres of a Pose2Sim-style TRC in posecli's keypoint order (NaN if absent)."""
    markers, _, xyz = read_trc(path)
    world = trc_to_world(xyz)
    out = np.full((xyz.shape[0], len(names), 3), np.nan)
    for m, marker in enumerate(markers):
        name = TRC_NAMES.get(marker, marker)
        if name in names:
            out[:, names.index(name)] = world[:, m]
    return out


def posecli_3d_keypoints(path: Path, names=COCO18, person_id=None) -> tuple[np.ndarray, np.ndarray]:
    """((F, K, 3) world metres, (F, K) reprojection px) of one person of posecli 3d's JSON.

    The person is ``person_id``, or the id seen in most frames (the demo's subject).
    """
    data = json.loads(Path(path).read_text())
    frames = data["frames"]
    if person_id is None:
        counts: dict = {}
        for fr in frames:
            for p in fr.get("people", []):
                counts[p.get("id")] = counts.get(p.get("id"), 0) + 1
        person_id = max(counts, key=counts.get) if counts else None
    xyz = np.full((len(frames), len(names), 3), np.nan)
    err = np.full((len(frames), len(names)), np.nan)
    for f, fr in enumerate(frames):
        for p in fr.get("people", []):
            if p.get("id") != person_id:
                continue
            for k, name in enumerate(names):
                v = p["keypoints"].get(name)
                if v is not None:
                    xyz[f, k] = v[:3]
                    err[f, k] = v[3] if len(v) > 3 and v[3] is not None else np.nan
    return xyz, err


def posecli_2d_people(path: Path, names=COCO18) -> np.ndarray:
    """(F, P, K, 3) x, y, confidence of every person of a posecli 2D JSON (NaN pads)."""
    frames = json.loads(Path(path).read_text())["frames"]
    most = max((len(fr.get("people", [])) for fr in frames), default=0)
    out = np.full((len(frames), max(most, 1), len(names), 3), np.nan)
    for f, fr in enumerate(frames):
        for p, person in enumerate(fr.get("people", [])):
            for k, name in enumerate(names):
                v = person["keypoints"].get(name)
                if v is not None:
                    out[f, p, k] = v[:3]
    return out


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------
def segment_lengths(xyz: np.ndarray, names=COCO18) -> dict[str, np.ndarray]:
    """Segment name -> (F,) length in metres (NaN where an end is missing)."""
    return {seg: np.linalg.norm(xyz[:, names.index(a)] - xyz[:, names.index(b)], axis=-1)
            for seg, a, b in SEGMENTS}


def limb_consistency(xyz: np.ndarray, names=COCO18) -> dict:
    """IQR/median per segment and its median over segments; share of frames > 20% off the median."""
    rows, off_all = [], []
    for seg, lengths in segment_lengths(xyz, names).items():
        ok = lengths[np.isfinite(lengths)]
        if ok.size < 2:
            rows.append({"segment": seg, "frames": int(ok.size), "median_m": None, "iqr_over_median": None,
                         "off_20pct": None})
            continue
        med = float(np.median(ok))
        q1, q3 = np.percentile(ok, [25, 75])
        off = np.abs(ok / med - 1) > OFF_MEDIAN
        off_all.append(off)
        rows.append({"segment": seg, "frames": int(ok.size), "median_m": round(med, 4),
                     "iqr_over_median": round(float((q3 - q1) / med), 4),
                     "off_20pct": round(float(off.mean()), 4)})
    ratios = [r["iqr_over_median"] for r in rows if r["iqr_over_median"] is not None]
    pooled = np.concatenate(off_all) if off_all else np.array([])
    return {
        "iqr_over_median": round(float(np.median(ratios)), 4) if ratios else None,
        "off_20pct": round(float(pooled.mean()), 4) if pooled.size else None,
        "worst_segment": max(rows, key=lambda r: r["iqr_over_median"] or 0)["segment"] if ratios else None,
        "segments": rows,
    }


def match_people(projected: np.ndarray, people: np.ndarray) -> np.ndarray:
    """(F, K, 3) for each frame the 2D person nearest the projected skeleton (median over keypoints).

    ``projected`` (F, K, 2); ``people`` (F, P, K, 3). NaN where no person shares a keypoint.
    """
    n = min(projected.shape[0], people.shape[0])
    out = np.full((projected.shape[0], people.shape[2], 3), np.nan)
    for f in range(n):
        d = np.linalg.norm(people[f, :, :, :2] - projected[f][None], axis=-1)  # (P, K)
        with np.errstate(all="ignore"):
            score = np.array([np.nanmedian(row) if np.isfinite(row).any() else np.inf for row in d])
        if np.isfinite(score).any():
            out[f] = people[f, int(np.argmin(score))]
    return out


def reprojection(xyz: np.ndarray, cams: list[Camera], people_2d: list[np.ndarray]) -> dict:
    """Distance (px) from the 3D projected into each camera to that camera's own 2D (conf >= 0.3)."""
    per_cam, pooled = [], []
    for cam, people in zip(cams, people_2d):
        d, keep = _distances(xyz, cam, people)
        per_cam.append({"camera": cam.name, "points": int(keep.sum()), **_stats(d[keep])})
        pooled.append(d[keep])
    allv = np.concatenate(pooled) if pooled else np.array([])
    return {**_stats(allv), "points": int(allv.size), "cameras": per_cam}


def per_keypoint_distance(xyz: np.ndarray, cam: Camera, people: np.ndarray, names=COCO18) -> list[dict]:
    """Median distance (px) per keypoint from the 3D projected into ``cam`` to its own 2D."""
    d, keep = _distances(xyz, cam, people)
    return [{"keypoint": name, "points": int(keep[:, k].sum()), **_stats(d[keep[:, k], k])}
            for k, name in enumerate(names) if keep[:, k].any()]


def _distances(xyz: np.ndarray, cam: Camera, people: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(F, K) distance (px) from ``xyz`` projected into ``cam`` to the nearest 2D person there, and
    (F, K) where it counts (both ends present, 2D confidence >= MIN_CONFIDENCE)."""
    proj = project(cam, xyz)
    own = match_people(proj, people)
    d = np.linalg.norm(proj - own[..., :2], axis=-1)
    return d, np.isfinite(d) & (own[..., 2] >= MIN_CONFIDENCE)


def _stats(v: np.ndarray) -> dict:
    if v.size == 0:
        return {"median_px": None, "p90_px": None, "mean_px": None}
    return {"median_px": round(float(np.median(v)), 2), "p90_px": round(float(np.percentile(v, 90)), 2),
            "mean_px": round(float(np.mean(v)), 2)}


def coverage(xyz: np.ndarray, names=COCO18) -> float:
    """Share of frames with all 8 segments' ends present (a method must not win by dropping frames)."""
    ends = sorted({names.index(n) for _, a, b in SEGMENTS for n in (a, b)})
    ok = np.isfinite(xyz[:, ends]).all(axis=(1, 2))
    return round(float(ok.mean()), 4) if len(ok) else 0.0
