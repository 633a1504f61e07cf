"""Records of people and frames in each output format (posecli, OpenPose 1.3, COCO)."""

from __future__ import annotations

import math
import re
from pathlib import Path

from ..io.urls import url_stem
from ..types import Frame, Person
from .layouts import DEFAULT_LAYOUT, layout_candidates, layout_flat

FORMATS = ("posecli", "openpose", "coco", "csv")
NATIVE_VERSION = "posecli/1"
OPENPOSE_VERSION = 1.3
# Frame.extra keys written into native frame records, with their decimals (0: an integer):
# capture_time (Unix seconds), skipped (frames dropped just before), latency (seconds)
LIVE_KEYS = {"capture_time": 4, "skipped": 0, "latency": 4}


def _r(v: float, nd: int) -> float | None:
    return round(float(v), nd) if math.isfinite(v) else None


def person_record(person: Person, tracked: bool = False) -> dict:
    """Native record of one person: named keypoints ``[x, y, score]`` or null.

    ``tracked``: the frame went through a tracker, so a person without an id (not yet
    confirmed) gets ``"id": null`` rather than no id at all."""
    kps = {}
    for k, name in enumerate(person.skeleton.parts):
        if person.visible[k]:
            kps[name] = [_r(person.xy[k, 0], 2), _r(person.xy[k, 1], 2), _r(person.scores[k], 4)]
        else:
            kps[name] = None
    rec = {"score": _r(person.score, 4), "keypoints": kps}
    if person.track_id is not None or tracked:
        rec = {"id": None if person.track_id is None else int(person.track_id), **rec}
    return rec


def frame_record(frame: Frame) -> dict:
    """Native record of one image or video frame (with ``part_candidates``, part name ->
    ``[[x, y, score], ...]``, when the estimator was asked for them)."""
    rec: dict = {"file": frame.source, "width": int(frame.size_wh[0]), "height": int(frame.size_wh[1])}
    if frame.index is not None:
        rec["frame"] = int(frame.index)
    if frame.timestamp is not None:
        rec["time"] = round(float(frame.timestamp), 4)
    for key, nd in LIVE_KEYS.items():  # live frames: when captured, frames dropped before, delay
        if frame.extra.get(key) is not None:
            rec[key] = round(float(frame.extra[key]), nd) if nd else int(frame.extra[key])
    tracked = bool(frame.extra.get("tracked"))
    rec["people"] = [person_record(p, tracked) for p in frame.people]
    candidates = frame.extra.get("part_candidates")
    if candidates is not None:
        rec["part_candidates"] = {
            name: [[_r(x, 2), _r(y, 2), _r(s, 4)] for x, y, s in c.tolist()] for name, c in candidates.items()
        }
    return rec


def skeleton_record(skeleton) -> dict:
    return {
        "name": skeleton.name,
        "keypoints": list(skeleton.parts),
        "limbs": [list(l) for l in skeleton.limbs],
    }


def openpose_record(frame: Frame, layout: str = DEFAULT_LAYOUT) -> dict:
    """CMU OpenPose 1.3 JSON for one frame, keypoints in ``layout``'s order (:mod:`.layouts`)."""
    people = []
    for p in frame.people:
        people.append({
            "person_id": [int(p.track_id) if p.track_id is not None else -1],
            "pose_keypoints_2d": [round(v, 3) for v in layout_flat(p, layout)],
            "face_keypoints_2d": [],
            "hand_left_keypoints_2d": [],
            "hand_right_keypoints_2d": [],
            "pose_keypoints_3d": [],
            "face_keypoints_3d": [],
            "hand_left_keypoints_3d": [],
            "hand_right_keypoints_3d": [],
        })
    rec: dict = {"version": OPENPOSE_VERSION, "people": people}
    candidates = frame.extra.get("part_candidates")
    if candidates is not None:
        # CMU's layout: one object, part index (as a string) -> flat x, y, score, x, y, score, ...
        rec["part_candidates"] = [{
            str(k): [round(float(v), 3) for v in c.reshape(-1)]
            for k, c in enumerate(layout_candidates(candidates, layout))
        }]
    return rec


#: COCO results of people with fewer of the 17 keypoints than this rank below their mean score.
COCO_FULL_RANK_PARTS = 8


def coco_score(person: Person, found: int) -> float:
    """The score a COCO result carries: the person's mean part score, times ``found`` /
    :data:`COCO_FULL_RANK_PARTS` where fewer of COCO's 17 keypoints were found.

    COCO's evaluation ranks every result of a set by this score, and a result ranked above
    a better one costs precision. The mean alone ranks a confident fragment (a head, an arm)
    above a whole person (Lightweight OpenPose's COCO export weights by the part count for
    that reason); here only fragments are lowered, so people with half their keypoints
    hidden keep their rank. Chosen on half of train80 against the share of 17 found, its
    square root and the part count less one, confirmed on the other half
    (docs/accuracy.md, "Choices", 5).
    """
    return float(person.score) * min(1.0, max(0, found) / COCO_FULL_RANK_PARTS)


def coco_records(frame: Frame, image_id: int) -> list[dict]:
    """COCO keypoint results for one image (17 keypoints, 0, 0, 0 where missing; the score
    is :func:`coco_score`)."""
    out = []
    for p in frame.people:
        kp = p.to_coco17()
        flat = []
        found = 0
        for x, y, s in kp:
            if math.isfinite(x):
                flat += [round(float(x), 2), round(float(y), 2), round(float(s), 4)]
                found += 1
            else:
                flat += [0.0, 0.0, 0.0]
        out.append({"image_id": int(image_id), "category_id": 1, "keypoints": flat,
                    "score": round(coco_score(p, found), 4)})
    return out


def result_suffix(fmt: str) -> str:
    """File extension of one result file in format ``fmt``."""
    return ".csv" if fmt == "csv" else ".json"


def coco_image_id(path: str | Path, fallback: int) -> int:
    """COCO image id of a file: its numeric stem (``000000000785.jpg`` -> 785), else ``fallback``."""
    stem = Path(str(path)).stem
    return int(stem) if re.fullmatch(r"\d{1,18}", stem) else fallback


def source_stem(source: str | Path) -> str:
    """The name results of ``source`` start with: a file's stem; a stream URL's host, port and path."""
    text = str(source)
    return url_stem(text) if "://" in text else Path(text).stem  # a URL: never its credentials


def openpose_filename(source: str | Path, index: int | None = None) -> str:
    """``<image>_keypoints.json``, or ``<video>_<12-digit frame>_keypoints.json`` (a stream URL's
    host, port and path stand for the video's name)."""
    stem = source_stem(source)
    if index is None:
        return f"{stem}_keypoints.json"
    return f"{stem}_{index:012d}_keypoints.json"
