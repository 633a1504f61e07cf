"""Keypoint layouts of the OpenPose JSON: which part sits at which index of ``pose_keypoints_2d``.

Tools that read OpenPose JSON assume a layout they were not told: most assume CMU's BODY_25
(pose-format, many viewers), Pose2Sim's kinematics has setup files for COCO-17 and BODY_25.
The same people can be written in any of:

* ``coco18``: CMU's COCO network order (what the built-in model finds; the default);
* ``body25``: CMU's BODY_25 order; MidHip is the middle of the two hips when both are found
  (its score the lower of theirs), the six feet keypoints are absent (0, 0, 0);
* ``coco17``: COCO's keypoint order (no neck).

Parts are matched by name (``r_hip``...), so a model with another skeleton fills what it has;
a part the model does not find is absent (0, 0, 0 in the JSON, NaN here).
"""

from __future__ import annotations

import numpy as np

from ..errors import OutputError
from ..skeleton import BODY25, COCO18
from ..types import Person

DEFAULT_LAYOUT = "coco18"


# Layout name -> part names in its order (the skeleton tables' naming).
LAYOUTS: dict[str, tuple[str, ...]] = {
    "coco18": COCO18.parts,
    "body25": BODY25.parts,
    "coco17": tuple(COCO18.parts[i] for i in COCO18.coco17),  # COCO-18 has every COCO-17 part
}
# A part a layout wants but the model does not find: the middle of these two, when both are found.
DERIVED: dict[str, tuple[str, str]] = {
    "mid_hip": ("r_hip", "l_hip"),
    "neck": ("r_shoulder", "l_shoulder"),
}


def check_layout(layout: str) -> str:
    """The layout's name, or :class:`OutputError` naming the known ones."""
    if layout not in LAYOUTS:
        raise OutputError(f"unknown layout={layout!r} (choose from {', '.join(LAYOUTS)})", param="layout")
    return layout


def layout_keypoints(person: Person, layout: str) -> np.ndarray:
    """(K, 3) x, y, score of ``person`` in ``layout``'s order (K: its number of parts); NaN x, y
    and score 0 where absent."""
    names = LAYOUTS[check_layout(layout)]
    have = {name: k for k, name in enumerate(person.skeleton.parts)}
    out = np.full((len(names), 3), np.nan)
    out[:, 2] = 0.0
    for i, name in enumerate(names):
        if name in have:
            k = have[name]
            out[i] = (person.xy[k, 0], person.xy[k, 1], person.scores[k])
        elif name in DERIVED and all(p in have for p in DERIVED[name]):
            a, b = (have[p] for p in DERIVED[name])
            if person.visible[a] and person.visible[b]:
                x, y = (person.xy[a] + person.xy[b]) / 2
                out[i] = (x, y, min(person.scores[a], person.scores[b]))
    return out


def layout_flat(person: Person, layout: str) -> list[float]:
    """OpenPose's flat ``x0, y0, c0, x1, ...`` in ``layout``, 0, 0, 0 where absent."""
    arr = layout_keypoints(person, layout)
    arr[~np.isfinite(arr[:, 0])] = 0.0
    return [float(v) for v in arr.reshape(-1)]


def layout_candidates(candidates: dict, layout: str) -> list[np.ndarray]:
    """Part candidates (part name -> (M, 3)) as one array per part of ``layout`` (empty where the
    model has no such part)."""
    return [np.asarray(candidates.get(name, np.zeros((0, 3)))) for name in LAYOUTS[check_layout(layout)]]
