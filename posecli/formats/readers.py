"""Reading results back: CMU OpenPose JSON and posecli JSON files -> :class:`Frame` records.

Results written earlier (by posecli or by CMU OpenPose itself) can be loaded, converted and
re-rendered without running a network again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io.jsonfile import read_json
from ..skeleton import PROFILES, Skeleton, get_profile
from ..types import Frame, Person

#: Largest result file read back (a long video's streamed JSON is a few hundred MB).
MAX_RESULT_BYTES = 4_000_000_000


def _load_json(path: str | Path):
    p = Path(path)
    if p.is_dir():
        raise InputError("is a directory, not a file", path=p)
    return read_json(p, max_bytes=MAX_RESULT_BYTES, what="file")  # size and nesting limits, file named


def _skeleton_for(num_parts: int, name: str | None, path) -> Skeleton:
    if name:
        return get_profile(name)
    matches = [s for s in PROFILES.values() if s.num_parts == num_parts]
    if len(matches) != 1:
        raise InputError(f"cannot tell the skeleton of {num_parts} keypoints; name a profile", path=path)
    return matches[0]


def load_openpose_json(path: str | Path, skeleton: str | None = None, size_wh: tuple[int, int] = (0, 0)) -> Frame:
    """One CMU OpenPose ``*_keypoints.json`` file -> :class:`Frame`.

    ``pose_keypoints_2d`` is a flat ``x, y, c`` list; a keypoint with c == 0 is missing.
    The skeleton is told from the keypoint count (18: coco18, 25: body25) unless named.
    ``person_id`` (when not -1) becomes ``track_id``.
    """
    doc = _load_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("people"), list):
        raise InputError("not an OpenPose keypoints file (no 'people' list)", path=path)
    people = []
    sk = None
    for entry in doc["people"]:
        flat = np.asarray(entry.get("pose_keypoints_2d", []), dtype=np.float64)
        if flat.size % 3:
            raise InputError("pose_keypoints_2d length is not a multiple of 3", path=path)
        kp = flat.reshape(-1, 3)
        sk = sk or _skeleton_for(len(kp), skeleton, path)
        if len(kp) != sk.num_parts:
            raise InputError(f"{len(kp)} keypoints, skeleton '{sk.name}' has {sk.num_parts}", path=path)
        xy = kp[:, :2].copy()
        xy[kp[:, 2] <= 0] = np.nan
        pid = entry.get("person_id", [-1])
        pid = pid[0] if isinstance(pid, list) and pid else pid
        track = int(pid) if isinstance(pid, (int, float)) and pid >= 0 else None
        seen = kp[:, 2] > 0
        score = float(kp[seen, 2].mean()) if seen.any() else 0.0
        people.append(Person(xy, np.where(seen, kp[:, 2], 0.0), score, sk, track))
    return Frame(people, size_wh, source=str(path))


def load_posecli_json(path: str | Path) -> list[Frame]:
    """A posecli-format JSON file (images or video frames) -> list of :class:`Frame`."""
    doc = _load_json(path)
    if not isinstance(doc, dict) or not str(doc.get("version", "")).startswith("posecli/"):
        raise InputError("not a posecli results file (no 'version': 'posecli/...')", path=path)
    if doc.get("kind") == "3d":
        raise InputError("3D results (posecli 3d), not 2D keypoints", path=path)
    sk_rec = doc.get("skeleton") or {}
    name = sk_rec.get("name")
    sk = PROFILES.get(name) if name else None
    if sk is None:
        raise InputError(f"unknown skeleton '{name}' in results", path=path)
    frames = []
    for item in doc.get("images", doc.get("frames", [])):
        people = []
        for rec in item.get("people", []):
            xy = np.full((sk.num_parts, 2), np.nan)
            sc = np.zeros(sk.num_parts)
            for k, part in enumerate(sk.parts):
                v = rec["keypoints"].get(part)
                if v is not None:
                    xy[k] = v[:2]
                    sc[k] = v[2]
            people.append(Person(xy, sc, rec.get("score") or 0.0, sk, rec.get("id")))
        frames.append(Frame(people, (item.get("width", 0), item.get("height", 0)), source=item.get("file", ""),
                            index=item.get("frame"), timestamp=item.get("time")))
    return frames
