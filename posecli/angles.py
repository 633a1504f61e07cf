"""2D joint and segment angles, as Sports2D defines them (its ``angle_dict``, Pose2Sim's common.py).

Angles are measured in image pixels (x right, y down) for a person seen from their right side,
which is what Sports2D computes when it cannot tell the side (its ``visible_side`` ``auto``
without feet keypoints, or ``right``), in degrees:

* a segment angle (two points a, b): the angle of the vector b -> a to the image's horizontal,
  ``atan2(dy, dx)``, clockwise on screen because y points down;
* a joint angle (three points a, b, c): the angle from b -> c to b -> a (``-atan2(u x v, u . v)``
  with u = a - b, v = c - b);
* between two segments (four points a, b, c, d): the same with u = b - a, v = d - c;

then Sports2D's offset and sign, ``(angle + offset) * sign``, wrapped to [-180, 180) ([-90, 90)
for the pelvis and shoulders lines). An angle whose points are not all found is NaN; an angle
whose points the skeleton cannot have (the ankles and feet need BigToe and Heel, which COCO-18
has not; the wrists and hands need an Index keypoint; the head needs Head) is left out.
"Hip" is the middle of the two hips, "Neck" the middle of the shoulders when the model has none.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .skeleton import Skeleton
from .types import Person

# Sports2D's angle table: name -> (points, offset in degrees, sign). Points use Sports2D's marker names.
ANGLES: dict[str, tuple[tuple[str, ...], float, float]] = {
    # joint angles
    "right ankle": (("RKnee", "RAnkle", "RBigToe", "RHeel"), 90, 1),
    "left ankle": (("LKnee", "LAnkle", "LBigToe", "LHeel"), 90, 1),
    "right knee": (("RAnkle", "RKnee", "RHip"), -180, 1),
    "left knee": (("LAnkle", "LKnee", "LHip"), -180, 1),
    "right hip": (("RKnee", "RHip", "Hip", "Neck"), 0, -1),
    "left hip": (("LKnee", "LHip", "Hip", "Neck"), 0, -1),
    "right shoulder": (("RElbow", "RShoulder", "Hip", "Neck"), 0, -1),
    "left shoulder": (("LElbow", "LShoulder", "Hip", "Neck"), 0, -1),
    "right elbow": (("RWrist", "RElbow", "RShoulder"), 180, -1),
    "left elbow": (("LWrist", "LElbow", "LShoulder"), 180, -1),
    "right wrist": (("RElbow", "RWrist", "RIndex"), -180, 1),
    "left wrist": (("LElbow", "LIndex", "LWrist"), -180, 1),
    # segment angles
    "right foot": (("RBigToe", "RHeel"), 0, -1),
    "left foot": (("LBigToe", "LHeel"), 0, -1),
    "right shank": (("RAnkle", "RKnee"), 0, -1),
    "left shank": (("LAnkle", "LKnee"), 0, -1),
    "right thigh": (("RKnee", "RHip"), 0, -1),
    "left thigh": (("LKnee", "LHip"), 0, -1),
    "pelvis": (("LHip", "RHip"), 0, -1),
    "trunk": (("Neck", "Hip"), 0, -1),
    "shoulders": (("LShoulder", "RShoulder"), 0, -1),
    "head": (("Head", "Neck"), 0, -1),
    "right arm": (("RElbow", "RShoulder"), 0, -1),
    "left arm": (("LElbow", "LShoulder"), 0, -1),
    "right forearm": (("RWrist", "RElbow"), 0, -1),
    "left forearm": (("LWrist", "LElbow"), 0, -1),
    "right hand": (("RIndex", "RWrist"), 0, -1),
    "left hand": (("LIndex", "LWrist"), 0, -1),
}
# Lines without a direction: wrapped to [-90, 90).
HALF_TURN = ("pelvis", "shoulders")
# Markers made from two others when the model has no such part: their middle.
MIDDLES = {"Hip": ("RHip", "LHip"), "Neck": ("RShoulder", "LShoulder")}


def marker_name(part: str) -> str:
    """Sports2D's (and OpenPose's) name of a part: ``r_big_toe`` -> ``RBigToe``, ``mid_hip`` -> ``Hip``."""
    if part == "mid_hip":
        return "Hip"
    side, _, rest = part.partition("_")
    if side in ("l", "r") and rest:
        return side.upper() + "".join(w.capitalize() for w in rest.split("_"))
    return "".join(w.capitalize() for w in part.split("_"))


@lru_cache(maxsize=64)
def _part_markers(parts: tuple[str, ...]) -> tuple[str, ...]:
    """:func:`marker_name` of each part (worked out once per skeleton, not per person)."""
    return tuple(marker_name(p) for p in parts)


def markers(skeleton: Skeleton) -> list[str]:
    """The marker names a person of ``skeleton`` gives: its parts, then the middles it can make."""
    names = list(_part_markers(skeleton.parts))
    return names + [m for m, (a, b) in MIDDLES.items() if m not in names and a in names and b in names]


def marker_xy(person: Person) -> dict[str, np.ndarray]:
    """Marker name -> (3,) x, y, score in pixels (NaN x, y where missing), middles included."""
    names = _part_markers(person.skeleton.parts)
    out = {n: np.array([person.xy[k, 0], person.xy[k, 1], person.scores[k]]) for k, n in enumerate(names)}
    for m, (a, b) in MIDDLES.items():
        if m not in out and a in out and b in out:
            xy = (out[a][:2] + out[b][:2]) / 2  # NaN unless both are found
            out[m] = np.array([xy[0], xy[1], min(out[a][2], out[b][2])])
    return out


def angle_names(skeleton: Skeleton) -> list[str]:
    """The angles a person of ``skeleton`` can have, in Sports2D's order."""
    return list(_angle_names(skeleton.parts))


@lru_cache(maxsize=64)
def _angle_names(parts: tuple[str, ...]) -> tuple[str, ...]:
    have = set(_part_markers(parts))
    have |= {m for m, (a, b) in MIDDLES.items() if a in have and b in have}
    return tuple(name for name, (points, _, _) in ANGLES.items() if set(points) <= have)


def raw_angle(points: list[np.ndarray]) -> float:
    """Degrees from 2, 3 or 4 (x, y) points, before offset and sign (see the module docstring)."""
    if len(points) == 2:
        u = points[0] - points[1]
        return math.degrees(math.atan2(u[1], u[0]))
    if len(points) == 3:
        u, v = points[0] - points[1], points[2] - points[1]
    else:
        u, v = points[1] - points[0], points[3] - points[2]
    cross = u[0] * v[1] - u[1] * v[0]
    return -math.degrees(math.atan2(cross, u @ v))


def person_angles(person: Person, names: list[str] | None = None) -> dict[str, float]:
    """Angle name -> degrees for one person (NaN where a point is missing); ``names``: which
    (default: every one the skeleton can have, :func:`angle_names`)."""
    xy = marker_xy(person)
    out = {}
    for name in names if names is not None else _angle_names(person.skeleton.parts):
        points, offset, sign = ANGLES[name]
        pts = [xy[p][:2] for p in points]
        if not all(np.isfinite(p).all() for p in pts):
            out[name] = math.nan
            continue
        angle = (raw_angle(pts) + offset) * sign
        half = 90.0 if name in HALF_TURN else 180.0
        out[name] = (angle + half) % (2 * half) - half
    return out
