"""Qualisys Track Manager calibrations (``.qca.txt``, XML), as Pose2Sim's demos ship them.

Per ``cameras/camera`` (``serial`` is the name): ``fov_video`` (left, top, right, bottom
pixels: the image), ``intrinsic`` (focal lengths and principal point in sensor units of 1/64
pixel, Brown distortion ``radialDistortion1..3``, ``tangentalDistortion1..2``) and ``transform``
(the camera's position in millimetres and its orientation ``r11..r33``, rows = the camera's
axes in the world, looking along its -z with y up). OpenCV's camera is that one turned by 180
degrees about its x axis: ``R = diag(1, -1, -1) @ M``, ``t = -R @ position``.

Distortion: Pose2Sim divides the Qualisys coefficients by 64 like the focal lengths (its TOML
of the shared demo has k1 = -0.00072 for a file that says -0.046); ``distortion_scale`` keeps
that reading by default so that both give the same cameras. Read as is (``1.0``) instead, the
shared demo's 3D did not change (reprojection median 8.6 px, limbs 0.057 -> 0.059): its people
stand near the image centres, where the two readings differ least.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from ..errors import InputError
from .calibration import Camera, check_rig, make_camera

SENSOR_UNITS = 64.0  # Qualisys sensor units per pixel
FLIP = np.diag([1.0, -1.0, -1.0])  # Qualisys camera (looks along -z, y up) -> OpenCV's


def read_qca(path: str | Path, distortion_scale: float = 1 / SENSOR_UNITS) -> list[Camera]:
    """The cameras of a Qualisys ``.qca.txt`` file, sorted by name (see the module doc)."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise InputError("no such file", path=path) from None
    except (ET.ParseError, OSError) as exc:
        raise InputError(f"not a Qualisys calibration (XML: {exc})", path=path) from None
    cameras = []
    for tag in root.findall("cameras/camera"):
        name = tag.get("serial") or f"cam{len(cameras) + 1}"
        fov, intr, pose = tag.find("fov_video"), tag.find("intrinsic"), tag.find("transform")
        if fov is None or intr is None or pose is None:
            raise InputError(f"camera '{name}': missing fov_video, intrinsic or transform", path=path)
        try:
            left, top = float(fov.get("left")), float(fov.get("top"))
            size = (float(fov.get("right")) - left + 1, float(fov.get("bottom")) - top + 1)
            fu, fv = (float(intr.get(k)) / SENSOR_UNITS for k in ("focalLengthU", "focalLengthV"))
            cu = float(intr.get("centerPointU")) / SENSOR_UNITS - left
            cv = float(intr.get("centerPointV")) / SENSOR_UNITS - top
            k1, k2, k3 = (float(intr.get(f"radialDistortion{i}", 0.0)) * distortion_scale for i in (1, 2, 3))
            p1, p2 = (float(intr.get(f"tangentalDistortion{i}", 0.0)) * distortion_scale for i in (1, 2))
            M = np.array([[float(pose.get(f"r{i}{j}")) for j in (1, 2, 3)] for i in (1, 2, 3)])
            position = np.array([float(pose.get(k)) for k in ("x", "y", "z")]) / 1000.0
        except (TypeError, ValueError) as exc:
            raise InputError(f"camera '{name}': unreadable numbers ({exc})", path=path) from None
        R = FLIP @ M
        K = [[fu, 0.0, cu], [0.0, fv, cv], [0.0, 0.0, 1.0]]
        cameras.append(make_camera(name, size, K, [k1, k2, p1, p2, k3], R, -R @ position, path))
    cameras.sort(key=lambda c: c.name)
    check_rig(cameras, path)
    return cameras
