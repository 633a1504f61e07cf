"""Scripts run in the consumers' venv (pose-format, Sports2D, Pose2Sim), and how to run them."""

from __future__ import annotations

import json
import subprocess

from tests.helpers import consumer_python

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
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])

# A Pose2Sim project from its own demo's Config.toml: argv project folder, Calib.toml, folder of
# per-camera OpenPose folders (cam01/, cam02/...), pose model. Figures and plots off, no marker
# augmentation, OpenSim's simple model (>10 times faster inverse kinematics).
POSE2SIM_PROJECT = """
import shutil, sys
from pathlib import Path
import rtoml
import Pose2Sim
project, calib, poses, model = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
cfg = rtoml.load(Path(Pose2Sim.__file__).parent / "Demo_SinglePerson" / "Config.toml")
cfg["project"].update(project_dir=str(project), frame_rate=60, frame_range="all", multi_person=False)
cfg["pose"].update(pose_model=model, display_detection=False)
cfg["personAssociation"]["single_person"]["tracked_keypoint"] = "RShoulder" if model == "COCO_17" else "Neck"  # COCO-17 has no neck
cfg["triangulation"].update(show_interp_indices=False, make_c3d=False)
cfg["filtering"].update(display_figures=False, save_filt_plots=False, make_c3d=False)
cfg["kinematics"].update(use_augmentation=False, use_simple_model=True, parallel_workers_kinematics=False)
(project / "calibration").mkdir(parents=True)
shutil.copy(calib, project / "calibration" / "Calib.toml")
for cam in sorted(p for p in poses.iterdir() if p.is_dir()):
    shutil.copytree(cam, project / "pose" / f"{cam.name}_json")
(project / "Config.toml").write_text(rtoml.dumps(cfg))
print("{}")
"""

# Pose2Sim's steps (argv[2:]) run in the project folder argv[1], as its demo does.
POSE2SIM_RUN = """
import os, sys
os.chdir(sys.argv[1])
from Pose2Sim import Pose2Sim
for step in sys.argv[2:]:
    getattr(Pose2Sim, step)()
print("{}")
"""
