"""Calibrated cameras: the :class:`Camera` record, readers for the formats people have, a TOML writer.

Formats read (:func:`load_calibration` picks by the path):

* ``.toml``: the layout of Pose2Sim and anipose, one table per camera with ``name``, ``size``
  ``[width, height]``, ``matrix`` (3x3), ``distortions`` (k1, k2, p1, p2[, k3...]), ``rotation``
  (a Rodrigues vector, world -> camera) and ``translation`` (metres). Other tables
  (``[metadata]``) are ignored.
* a folder of OpenPose camera parameter files, or several such files: one OpenCV FileStorage XML
  per camera (``CameraMatrix`` 3x4 extrinsics ``[R|t]`` in metres, ``Intrinsics`` 3x3,
  ``Distortion`` up to 8 coefficients); the camera is named after the file.
* ``*.qca.txt``: a Qualisys calibration (:mod:`posecli.multiview.qualisys`).

Every camera is checked once (:func:`check_camera`): finite numbers, an invertible K, a proper
rotation, a positive size; a whole rig by :func:`check_rig` (distinct names, at least two cameras).
A bad file raises one :class:`~posecli.errors.InputError` naming it, before any work.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tomllib

from ..errors import InputError

ROTATION_TOLERANCE = 1e-3  # |R R^T - I| and |det R - 1| above this: not a rotation
MAX_DISTORTION = 8  # OpenCV's rational model: k1 k2 p1 p2 k3 k4 k5 k6
# encoders pad frames to 16: a 1080-wide video of a 1088-wide calibration is the same camera
SIZE_SLACK_PX = 16


@dataclass(frozen=True)
class Camera:
    """One calibrated camera.

    ``size_wh``: image (width, height) in pixels; ``K``: (3, 3) intrinsics; ``dist``: (D,)
    OpenCV distortion coefficients (D in 0, 4, 5, 8); ``R``: (3, 3) rotation and ``t``: (3,)
    translation, world -> camera (``x_cam = R @ X + t``), world units metres.
    """

    name: str
    size_wh: tuple[int, int]
    K: np.ndarray
    dist: np.ndarray
    R: np.ndarray
    t: np.ndarray

    @property
    def P(self) -> np.ndarray:
        """(3, 4) projection matrix ``K [R | t]`` (for undistorted pixels)."""
        return self.K @ np.hstack([self.R, self.t[:, None]])

    @property
    def Rt(self) -> np.ndarray:
        """(3, 4) extrinsics ``[R | t]`` (for normalised coordinates)."""
        return np.hstack([self.R, self.t[:, None]])

    @property
    def center(self) -> np.ndarray:
        """(3,) the camera's centre in world coordinates."""
        return -self.R.T @ self.t

    def project(self, xyz: np.ndarray) -> np.ndarray:
        """(..., 3) world points -> (..., 2) pixels with distortion; NaN in, NaN out."""
        return project_many([self], xyz[None])[0]

    def undistort(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) pixels -> (..., 2) normalised image coordinates (distortion removed, K divided out)."""
        import cv2

        xy = np.asarray(xy, dtype=np.float64)
        flat = xy.reshape(-1, 2)
        out = np.full_like(flat, np.nan)
        ok = np.isfinite(flat).all(axis=1)
        if ok.any():
            und = cv2.undistortPoints(flat[ok].reshape(-1, 1, 2), self.K, self.dist)
            out[ok] = und.reshape(-1, 2)
        return out.reshape(xy.shape)

    def depth(self, xyz: np.ndarray) -> np.ndarray:
        """(..., 3) world points -> (...,) depth along the optical axis (positive in front)."""
        return np.asarray(xyz, dtype=np.float64) @ self.R[2] + self.t[2]


def project_many(cameras: Sequence[Camera], xyz: np.ndarray) -> np.ndarray:
    """(C, N, 3) world points, a row per camera -> (C, N, 2) pixels with distortion (OpenCV's
    model: k1 k2 p1 p2 [k3 [k4 k5 k6]]), every camera in one pass; NaN in, NaN out."""
    xyz = np.asarray(xyz, dtype=np.float64)
    shape = xyz.shape
    pts = xyz.reshape(len(cameras), -1, 3)
    R = np.stack([c.R for c in cameras])
    t = np.stack([c.t for c in cameras])
    dist = np.zeros((len(cameras), 8))
    for i, c in enumerate(cameras):
        dist[i, : min(c.dist.size, 8)] = c.dist[:8]
    K = np.stack([c.K for c in cameras])
    xc = np.einsum("cij,cnj->cni", R, pts) + t[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        x, y = xc[..., 0] / xc[..., 2], xc[..., 1] / xc[..., 2]
    k1, k2, p1, p2, k3, k4, k5, k6 = (dist[:, i, None] for i in range(8))
    r2 = x * x + y * y
    radial = (1 + r2 * (k1 + r2 * (k2 + r2 * k3))) / (1 + r2 * (k4 + r2 * (k5 + r2 * k6)))
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    u = K[:, 0, 0, None] * xd + K[:, 0, 1, None] * yd + K[:, 0, 2, None]
    v = K[:, 1, 1, None] * yd + K[:, 1, 2, None]
    return np.stack([u, v], axis=-1).reshape(*shape[:-1], 2)


def make_camera(name: str, size_wh, K, dist, R, t, path: str | Path | None = None) -> Camera:
    """A checked :class:`Camera` from array-likes; ``R`` may be a (3,) Rodrigues vector."""
    try:
        K = np.asarray(K, dtype=np.float64)
        dist = np.asarray(dist if dist is not None else [], dtype=np.float64).reshape(-1)
        R = np.asarray(R, dtype=np.float64)
        t = np.asarray(t, dtype=np.float64).reshape(-1)
        w, h = (float(v) for v in size_wh)
    except (TypeError, ValueError) as exc:
        raise InputError(f"camera '{name}': not numbers ({exc})", path=path) from None
    if R.shape == (3,) or R.shape == (3, 1) or R.shape == (1, 3):
        R = _rodrigues(R.reshape(3), name, path)
    camera = Camera(str(name), (_size(w, name, path), _size(h, name, path)), K, dist, R, t)
    check_camera(camera, path)
    return camera


def _size(value: float, name: str, path) -> int:
    if not math.isfinite(value) or value < 1 or value != int(value) or value > 1e6:
        raise InputError(f"camera '{name}': size {value} is not a positive whole number of pixels", path=path)
    return int(value)


def _rodrigues(rvec: np.ndarray, name: str, path) -> np.ndarray:
    import cv2

    if not np.isfinite(rvec).all():
        raise InputError(f"camera '{name}': rotation has non-finite values", path=path)
    return cv2.Rodrigues(rvec)[0]


def check_camera(camera: Camera, path: str | Path | None = None) -> None:
    """Raise :class:`InputError` unless ``camera`` is usable: shapes, finite values,
    an invertible K with positive focal lengths, a proper rotation, a known distortion length."""
    where = f"camera '{camera.name}'"
    shapes = {"matrix": (camera.K, (3, 3)), "rotation": (camera.R, (3, 3)), "translation": (camera.t, (3,))}
    for label, (arr, shape) in shapes.items():
        if arr.shape != shape:
            raise InputError(f"{where}: {label} must be {shape}, got {arr.shape}", path=path)
    if camera.dist.size not in (0, 4, 5, 8) and camera.dist.size <= MAX_DISTORTION:
        # OpenCV accepts 4, 5, 8 (and 12, 14 we do not read): pad the in-between lengths with zeros
        object.__setattr__(camera, "dist", np.concatenate([camera.dist, np.zeros(8 - camera.dist.size)]))
    if camera.dist.size > MAX_DISTORTION:
        raise InputError(f"{where}: {camera.dist.size} distortion coefficients (at most {MAX_DISTORTION})",
                         path=path)
    for label, arr in (("matrix", camera.K), ("distortions", camera.dist), ("rotation", camera.R),
                       ("translation", camera.t)):
        if not np.isfinite(arr).all():
            raise InputError(f"{where}: {label} has non-finite values", path=path)
    K = camera.K
    if K[0, 0] <= 0 or K[1, 1] <= 0 or abs(np.linalg.det(K)) < 1e-9 or not np.allclose(K[2], [0, 0, 1]):
        raise InputError(f"{where}: matrix is not an intrinsic matrix "
                         "(positive focal lengths, last row 0 0 1)",
                         path=path)
    R = camera.R
    if (np.abs(R @ R.T - np.eye(3)).max() > ROTATION_TOLERANCE
            or abs(np.linalg.det(R) - 1) > ROTATION_TOLERANCE):
        raise InputError(f"{where}: rotation is not a rotation matrix (orthonormal, determinant 1)",
                         path=path)


def check_rig(cameras: Sequence[Camera], path: str | Path | None = None) -> None:
    """At least two cameras with distinct names (:class:`InputError`)."""
    if len(cameras) < 2:
        raise InputError(f"{len(cameras)} camera(s): triangulation needs at least 2", path=path)
    names = [c.name for c in cameras]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"camera name(s) used twice: {', '.join(dupes)}", path=path)


def check_sizes(cameras: Sequence[Camera], sizes_wh: Sequence[tuple[int, int]], names: Sequence[str],
                path: str | Path | None = None) -> None:
    """Each camera's size against its video's (``names``: the videos, for the message); a
    difference up to :data:`SIZE_SLACK_PX` is encoder padding. A swapped size says rotation."""
    if len(cameras) != len(sizes_wh):
        raise InputError(f"{len(cameras)} cameras in the calibration for {len(sizes_wh)} videos", path=path)
    for cam, (w, h), name in zip(cameras, sizes_wh, names, strict=True):
        cw, ch = cam.size_wh
        if abs(cw - w) <= SIZE_SLACK_PX and abs(ch - h) <= SIZE_SLACK_PX:
            continue
        hint = (" (rotated by 90 degrees: portrait against landscape)"
                if abs(cw - h) <= SIZE_SLACK_PX and abs(ch - w) <= SIZE_SLACK_PX else "")
        raise InputError(f"camera '{cam.name}' is {cw}x{ch} but {name} is {w}x{h}{hint}", path=path)


# ---------------------------------------------------------------------------------------------
# Readers and writer
# ---------------------------------------------------------------------------------------------

def load_calibration(paths: str | Path | Sequence[str | Path]) -> list[Camera]:
    """Cameras from a TOML file, a folder of OpenPose XML files, or several XML files."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    if not paths:
        raise InputError("no calibration given", param="calibration")
    if len(paths) == 1 and paths[0].is_dir():
        files = sorted(p for p in paths[0].iterdir() if p.suffix.lower() in (".xml", ".yml", ".yaml"))
        if not files:
            raise InputError("no OpenPose camera files (.xml) in this folder", path=paths[0])
        cameras = [read_opencv_camera(p) for p in files]
        check_rig(cameras, paths[0])
        return cameras
    if len(paths) == 1 and paths[0].suffix.lower() == ".toml":
        return read_toml(paths[0])
    if len(paths) == 1 and paths[0].name.lower().endswith(".qca.txt"):
        from .qualisys import read_qca

        return read_qca(paths[0])
    for p in paths:
        if p.suffix.lower() == ".toml":
            raise InputError("give one TOML calibration, or several OpenPose XML files", path=p)
    cameras = [read_opencv_camera(p) for p in paths]
    check_rig(cameras, paths[0])
    return cameras


def read_toml(path: str | Path) -> list[Camera]:
    """Cameras of a Pose2Sim/anipose TOML calibration, in the file's order."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("no such file", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read ({exc})", path=path) from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"not valid TOML ({exc})", path=path) from None
    cameras = []
    for key, table in doc.items():
        if not isinstance(table, dict) or key == "metadata" or "matrix" not in table:
            continue
        missing = [f for f in ("size", "matrix", "rotation", "translation") if f not in table]
        if missing:
            raise InputError(f"camera '{key}': missing {', '.join(missing)}", path=path)
        if table.get("fisheye"):
            raise InputError(f"camera '{key}': fisheye calibrations are not supported", path=path)
        size = table["size"]
        if not isinstance(size, list) or len(size) != 2:
            raise InputError(f"camera '{key}': size must be [width, height]", path=path)
        cameras.append(make_camera(str(table.get("name", key)), size, table["matrix"],
                                   table.get("distortions"),
                                   table["rotation"], table["translation"], path))
    check_rig(cameras, path)
    return cameras


def write_toml(cameras: Sequence[Camera], path: str | Path) -> None:
    """The Pose2Sim/anipose TOML layout (atomically), readable by :func:`read_toml` and by Pose2Sim."""
    import cv2

    from ..io.atomic import AtomicFile

    def row(values) -> str:
        return "[ " + ", ".join(repr(float(v)) for v in values) + "]"

    lines = []
    for cam in cameras:
        rvec = cv2.Rodrigues(cam.R)[0].reshape(3)
        lines += [f"[{cam.name}]", f'name = "{cam.name}"', f"size = {row(cam.size_wh)}",
                  "matrix = [ " + ", ".join(row(r) for r in cam.K) + "]",
                  f"distortions = {row(cam.dist)}", f"rotation = {row(rvec)}",
                  f"translation = {row(cam.t)}", "fisheye = false", ""]
    lines += ["[metadata]", "adjusted = false", "error = 0.0", ""]
    with AtomicFile(path) as f:
        f.write("\n".join(lines))


def read_opencv_camera(path: str | Path) -> Camera:
    """One OpenPose camera parameter file (OpenCV FileStorage XML): ``CameraMatrix`` (3x4
    ``[R|t]``, metres), ``Intrinsics`` (3x3), ``Distortion`` (up to 8). The size is not in
    the file: (0, 0) until :func:`with_sizes` sets it from the videos."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path=path)
    try:
        fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    except (cv2.error, SystemError):  # OpenCV's parser raises through a SystemError on junk
        raise InputError("not an OpenCV FileStorage file (an OpenPose camera .xml)", path=path) from None
    try:
        mats = {key: fs.getNode(key).mat() for key in ("CameraMatrix", "Intrinsics", "Distortion")}
    finally:
        fs.release()
    missing = [k for k, v in mats.items() if v is None and k != "Distortion"]
    if missing:
        raise InputError(f"missing {', '.join(missing)} (an OpenPose camera file has CameraMatrix, "
                         "Intrinsics, Distortion)", path=path)
    ext = np.asarray(mats["CameraMatrix"], dtype=np.float64)
    if ext.shape != (3, 4):
        raise InputError(f"CameraMatrix must be 3x4 [R|t], got {ext.shape}", path=path)
    dist = mats["Distortion"]
    camera = Camera(path.stem, (0, 0), np.asarray(mats["Intrinsics"], dtype=np.float64),
                    np.zeros(0) if dist is None else np.asarray(dist, dtype=np.float64).reshape(-1),
                    ext[:, :3].copy(), ext[:, 3].copy())
    check_camera(camera, path)
    return camera


def with_sizes(cameras: Sequence[Camera], sizes_wh: Sequence[tuple[int, int]]) -> list[Camera]:
    """Cameras whose size is unknown (0, 0: OpenPose XML files) take their video's size."""
    return [Camera(c.name, tuple(int(v) for v in s), c.K, c.dist, c.R, c.t) if c.size_wh == (0, 0) else c
            for c, s in zip(cameras, sizes_wh, strict=True)]
