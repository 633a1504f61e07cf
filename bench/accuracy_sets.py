"""The measured sets of the accuracy bench, as COCO annotation dicts with image names under
one folder (:data:`ROOT`).

* ``mini``: the 4 COCO val2017 photos (12 people, mostly large);
* ``train80-A`` / ``train80-B``: the 80 COCO train2017 photos split in two fixed halves by
  the parity of each image's rank in id order (A: ranks 0, 2, 4, ...). Choices are made on
  A and confirmed on B, so that B stands in for photos we have not seen;
* ``crowded``: the photos of both sets with at least :data:`CROWD_PEOPLE` annotated people
  or two people whose boxes overlap (the held-out occlusion set's situation).
"""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path

from . import SHARED

#: The one images folder of every set: ``file_name`` is relative to it (``posecli eval``
#: refuses absolute names and names going up, so the sets keep names inside it).
ROOT = SHARED / "data"
FOLDERS = {
    "mini": ROOT / "coco-val2017-mini",
    "train80": ROOT / "coco-train2017-mini80",
}
#: A photo with this many annotated people (with keypoints) is crowded.
CROWD_PEOPLE = 3


def _load(folder: Path) -> dict:
    path = folder / "person_keypoints.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (set POSECLI_SHARED)")
    data = json.loads(path.read_text(encoding="utf-8"))
    for im in data["images"]:
        im["file_name"] = f"{folder.name}/{im['file_name']}"
    return data


def _subset(data: dict, ids: set[int]) -> dict:
    return {**data, "images": [im for im in data["images"] if im["id"] in ids],
            "annotations": [a for a in data["annotations"] if a["image_id"] in ids]}


def _people(data: dict) -> dict[int, list[list[float]]]:
    """image id -> boxes (x, y, w, h) of its annotated people with keypoints."""
    out: dict[int, list] = {}
    for a in data["annotations"]:
        if not a.get("iscrowd") and a.get("num_keypoints", 0) > 0:
            out.setdefault(a["image_id"], []).append(a["bbox"])
    return out


def _overlap(b, c) -> bool:
    return min(b[0] + b[2], c[0] + c[2]) > max(b[0], c[0]) and min(b[1] + b[3], c[1] + c[3]) > max(b[1], c[1])


def crowded_ids(data: dict) -> set[int]:
    """Images with at least CROWD_PEOPLE people or two people whose boxes overlap."""
    return {i for i, boxes in _people(data).items()
            if len(boxes) >= CROWD_PEOPLE or any(_overlap(b, c) for b, c in combinations(boxes, 2))}


def measured_sets() -> dict[str, dict]:
    """Set name -> COCO annotation dict (image ``file_name`` relative to :data:`ROOT`)."""
    mini, train = _load(FOLDERS["mini"]), _load(FOLDERS["train80"])
    ranked = sorted(im["id"] for im in train["images"])
    crowd_mini, crowd_train = crowded_ids(mini), crowded_ids(train)
    crowded = _subset(mini, crowd_mini)
    extra = _subset(train, crowd_train)
    crowded = {**crowded, "images": crowded["images"] + extra["images"],
               "annotations": crowded["annotations"] + extra["annotations"]}
    return {
        "mini": mini,
        "train80-A": _subset(train, set(ranked[0::2])),
        "train80-B": _subset(train, set(ranked[1::2])),
        "crowded": crowded,
    }


def describe(data: dict) -> str:
    people = sum(len(b) for b in _people(data).values())
    return f"{len(data['images'])} photos, {people} people"
