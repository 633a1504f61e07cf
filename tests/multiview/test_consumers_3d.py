"""posecli 3d's TRC in real clients: OpenSim's own reader and OpenSim inverse kinematics.

The shared demo (Pose2Sim's Demo_SinglePerson, 4 cameras) cut to its first frames: ``posecli 3d`` on
the videos as a user runs it (its own 2D at its default mode), then the consumers' venv (OpenSim 4.6,
Pose2Sim 0.10.49) reads and uses the TRC in its own process. Slow (a few minutes on 2 cores).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bench import metrics_3d
from tests.helpers import consumer_python, posecli_cmd, subprocess_env

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
FRAMES = 40  # a cut of the demo's 100 frames: minutes, not tens of minutes
IK_RMS_POSE2SIM_M = 0.12  # OpenSim IK marker RMS (median over frames) on Pose2Sim's triangulation (issue 27)
COCO17_MARKERS = ("Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist",
                  "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle")  # Pose2Sim's OpenSim set-up

_READ_TRC = """
import json, sys
import numpy as np
import opensim
table = opensim.TimeSeriesTableVec3(sys.argv[1])
rows, cols = table.getNumRows(), table.getNumColumns()
values = [[list(table.getRowAtIndex(r)[c].to_numpy()) for c in range(cols)] for r in range(rows)]
print(json.dumps({"rows": rows, "labels": list(table.getColumnLabels()), "times": list(table.getIndependentColumn()),
                  "values": np.nan_to_num(np.array(values), nan=1e9).tolist(), "rate": table.getTableMetaDataAsString("DataRate")}))
"""


def _run(cmd: list, **kw) -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in cmd], check=False, capture_output=True, text=True, **kw)
    assert done.returncode == 0, f"{cmd[:4]}...: {done.stderr[-1500:]}"
    return done


@pytest.fixture(scope="module")
def demo_3d(tmp_path_factory, shared_dir) -> dict:
    """posecli 3d's JSON and TRC of the demo's first FRAMES frames, from the videos."""
    consumer_python()  # skip before minutes of 2D when the consumers' venv is missing
    demo = shared_dir / "data" / "multiview-single"
    if not (demo / "calibration" / "Calib.toml").is_file():
        pytest.skip(f"the shared multi-camera demo is missing ({demo})")
    tmp = tmp_path_factory.mktemp("demo3d")
    js, trc = tmp / "demo.json", tmp / "demo.trc"
    videos = [demo / "videos" / f"cam0{n}.mp4" for n in range(1, 5)]
    _run(posecli_cmd("3d", *videos, "-c", demo / "calibration" / "Calib.toml", "--max-frames", FRAMES,
                     "-o", js, "-o", trc, "-q"), env=subprocess_env())
    return {"json": js, "trc": trc, "dir": tmp}


def _main_person_frames(js: Path) -> tuple[np.ndarray, np.ndarray]:
    """(frame numbers from the main person's first to last frame, their (F, K, 3) world points)."""
    xyz, _ = metrics_3d.posecli_3d_keypoints(js)
    seen = np.where(np.isfinite(xyz).any(axis=(1, 2)))[0]
    frames = [f["frame"] for f in json.loads(js.read_text())["frames"]]
    return np.array(frames)[seen[0]:seen[-1] + 1], xyz[seen[0]:seen[-1] + 1]


def test_opensim_reads_every_frame_and_marker(demo_3d):
    py = consumer_python()
    done = _run([py, "-c", _READ_TRC, demo_3d["trc"]], cwd=demo_3d["dir"])  # OpenSim logs into its cwd
    table = json.loads(done.stdout.strip().splitlines()[-1])
    frames, xyz = _main_person_frames(demo_3d["json"])
    markers, _, _ = metrics_3d.read_trc(demo_3d["trc"])
    assert table["rows"] == len(frames) > FRAMES // 2  # every frame of the person, none lost
    assert table["labels"] == markers  # every marker, in the file's order
    assert set(COCO17_MARKERS) <= set(table["labels"])  # what Pose2Sim's OpenSim set-up needs
    assert float(table["rate"]) == pytest.approx(60.0)
    times = np.array(table["times"])
    assert np.allclose(np.diff(times), 1 / 60, atol=1e-4)
    # OpenSim's numbers are the JSON's points (TRC axes: X, Y, Z = world y, z, x), where the JSON has them
    values = np.array(table["values"])
    names = [metrics_3d.TRC_NAMES.get(m, m) for m in table["labels"]]
    world = metrics_3d.trc_to_world(values)
    for col, name in enumerate(names):
        k = metrics_3d.COCO18.index(name)
        have = np.isfinite(xyz[:, k, 0])
        assert have.any()
        assert np.allclose(world[have, col], xyz[have, k], atol=1e-4), name


def test_opensim_ik_marker_error_below_pose2sims(demo_3d):
    py = consumer_python()
    script = REPO / "bench" / "consumers" / "opensim_ik.py"
    # Pose2Sim's kinematics step on the demo's full model (the demo's setting, as the 0.12 m was measured)
    done = _run([py, script, demo_3d["trc"], "--out", demo_3d["dir"] / "ik"], cwd=demo_3d["dir"],
                env={**subprocess_env(), "MPLBACKEND": "Agg"})
    ik = json.loads(done.stdout.strip().splitlines()[-1])
    frames, _ = _main_person_frames(demo_3d["json"])
    assert ik["frames"] == len(frames)  # OpenSim solved every frame
    assert Path(ik["mot"]).is_file()
    assert ik["rms_median_m"] < IK_RMS_POSE2SIM_M, ik


def test_pose2sim_baseline_never_deletes_a_folder_it_did_not_make(tmp_path, shared_dir):
    """The bench's Pose2Sim runner remakes its project folder: a user's folder given by mistake stays."""
    py = consumer_python()
    keep = tmp_path / "mine"
    keep.mkdir()
    (keep / "precious.txt").write_text("keep me")
    calib = shared_dir / "data" / "multiview-single" / "calibration" / "Calib.toml"
    done = subprocess.run([py, str(REPO / "bench" / "consumers" / "pose2sim_baseline.py"), "--calibration",
                           str(calib), "--openpose", str(tmp_path), str(tmp_path), "--project", str(keep)],
                          check=False, capture_output=True, text=True, env={**subprocess_env(), "MPLBACKEND": "Agg"},
                          cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == f"Error: {keep}: not empty and not a project of this script; give a new folder"
    assert (keep / "precious.txt").read_text() == "keep me"
