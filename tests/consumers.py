"""Scripts run in the consumers' venv (pose-format, Sports2D, Pose2Sim), and how to run them."""

from __future__ import annotations

import json
import subprocess

from .helpers import consumer_python

# Sports2D's own angle computation on keypoints given as JSON on stdin:
# {"names": [...], "people": [[[x, y], ...], ...], "angles": [...]} -> [[degrees | null, ...], ...]
SPORTS2D_ANGLES = """
import json, sys
import numpy as np
from Sports2D.process import compute_angles_for_person
from Pose2Sim.common import angle_dict, add_shoulder_neck_hip_coords
job = json.load(sys.stdin)
out = []
for person in job["people"]:
    xy = np.array(person, dtype=float)
    X, Y, S = xy[:, 0].copy(), xy[:, 1].copy(), np.ones(len(xy))
    names = list(job["names"])
    ids = list(range(len(names)))
    for kpt in ["RShoulder", "LShoulder", "Hip", "Neck"]:  # as Sports2D's frame loop does
        if kpt not in names:
            X, Y, S = add_shoulder_neck_hip_coords(kpt, X, Y, S, ids, names)
            names.append(kpt); ids.append(len(X) - 1)
    _, angles, side = compute_angles_for_person(X, Y, job.get("side", "auto"), False, ids, names,
                                                job["angles"], angle_dict)
    out.append([None if not np.isfinite(a) else float(a) for a in angles])
print(json.dumps(out))
"""

# Sports2D's load_trc_px path: Pose2Sim's read_trc, then Sports2D's load_pose_file.
SPORTS2D_READ_TRC = """
import json, sys
import numpy as np
from Sports2D.process import load_pose_file
from Pose2Sim.common import read_trc
Q, frames, times, markers, header = read_trc(sys.argv[1])
keypoints, scores = load_pose_file(Q)
print(json.dumps({"markers": markers, "frames": frames.tolist(), "times": times.tolist(),
                  "xy": np.where(np.isnan(keypoints), -1e9, keypoints)[:, 0].tolist()}))
"""


def run_consumer(script: str, *args, stdin: str | None = None, timeout: float = 300):
    """Run ``script`` in the consumers' venv; its stdout as JSON (the test fails with its stderr)."""
    proc = subprocess.run([consumer_python(), "-c", script, *[str(a) for a in args]], input=stdin,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])
