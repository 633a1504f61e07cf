"""``posecli 3d`` end to end on synthetic scenes (2D results written from projected skeletons), its
outputs, and its refusals: one-line errors, nothing half-written, existing outputs untouched."""

from __future__ import annotations

import csv
import json
import subprocess

import numpy as np
import pytest

from posecli.multiview.calibration import write_toml
from tests.helpers import consumer_python, run
from tests.multiview.scenes import ring, walking_scene, write_2d_results


@pytest.fixture
def rig(tmp_path):
    cams = ring(4, dist=[-0.03, 0.05, 0.0005, -0.0005, 0.0])
    write_toml(cams, tmp_path / "rig.toml")
    return cams, tmp_path / "rig.toml"


def test_from_posecli_json_to_every_format(tmp_path, rig):
    cams, toml = rig
    truth = walking_scene()
    inputs = write_2d_results(tmp_path, cams, truth)
    outs = [tmp_path / "p.json", tmp_path / "p.trc", tmp_path / "p.csv"]
    result = run("3d", "--from-2d", *inputs, "-c", toml, *[a for o in outs for a in ("-o", o)])
    assert result.exit_code == 0, result.output
    assert "3D: 20 frames, 2 people" in result.output
    doc = json.loads(outs[0].read_text())
    assert doc["complete"] and doc["kind"] == "3d" and doc["cameras"] == ["cam01", "cam02", "cam03", "cam04"]
    assert len(doc["frames"]) == 20 and doc["fps"] == pytest.approx(30.0)
    ids = set()
    for t, frame in enumerate(doc["frames"]):
        assert len(frame["people"]) == 2
        for person in frame["people"]:
            ids.add(person["id"])
            xyz = np.array([v[:3] for v in person["keypoints"].values()])
            # which true person: the nearer one; within 2 cm on every keypoint
            dist = [np.linalg.norm(xyz - truth[t, i], axis=1).max() for i in range(2)]
            assert min(dist) < 0.02
            assert all(v[3] < 5 for v in person["keypoints"].values())
            assert person["cameras"] == [0, 1, 2, 3]
    assert len(ids) == 2  # ids last over the 20 frames
    rows = list(csv.DictReader(outs[2].open()))
    assert len(rows) == 20 * 2 * 18 and rows[0].keys() >= {"x", "y", "z", "reprojection_px", "cameras"}
    lines = outs[1].read_text().splitlines()
    assert lines[0].startswith("PathFileType\t4\t(X/Y/Z)\tp.trc") and lines[2].split("\t")[:4] == ["30", "30", "20", "18"]
    assert lines[3].split("\t")[2] == "Nose" and "RShoulder" in lines[3].split("\t")
    assert len(lines) == 5 + 20 and all(len(row.split("\t")) == 2 + 18 * 3 for row in lines[5:])
    # Y up: the TRC's Y is the world's Z (heads about 1.7 m up)
    nose_y = float(lines[5].split("\t")[3])
    assert 1.4 < nose_y < 1.9


def test_openpose_folders_and_offsets(tmp_path, rig):
    cams, toml = rig
    truth = walking_scene(frames=12)
    inputs = write_2d_results(tmp_path, cams, truth, fmt="openpose", lead={2: 3})
    out = tmp_path / "p.json"
    # camera 3 started 3 frames early: without offsets the frame counts differ
    result = run("3d", "--from-2d", *inputs, "-c", toml, "-o", out)
    assert result.exit_code == 1 and "different frame counts" in result.output and "--offsets" in result.output
    assert not out.exists()
    result = run("3d", "--from-2d", *inputs, "-c", toml, "-o", out, "--offsets", "0,0,3,0", "--fps", "30")
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert len(doc["frames"]) == 12 and doc["offsets"] == [0, 0, 3, 0]
    for t, frame in enumerate(doc["frames"]):
        for person in frame["people"]:
            xyz = np.array([v[:3] for v in person["keypoints"].values()])
            assert min(np.linalg.norm(xyz - truth[t, i], axis=1).max() for i in range(2)) < 0.02


@pytest.mark.parametrize("case, code, message", [
    ("three inputs", 1, "4 cameras in the calibration for 3 inputs"),
    ("landscape", 1, "rotated by 90 degrees"),
    ("bad calibration", 1, "rotation has non-finite values"),
    ("offsets count", 2, "--offsets [0, 1]: one per input (4)"),
    ("offsets text", 2, "expected whole frame counts"),
    ("output type", 2, "unknown 3D output type '.txt'"),
    ("out is input", 2, "cam01.json"),
    ("one input", 2, "3D needs at least two cameras"),
    ("3d as 2d", 1, "3D results (posecli 3d), not 2D keypoints"),
    ("two skeletons", 1, "the cameras' 2D must use one skeleton"),
    ("render from 2d", 2, "--render ...: the check video draws on the videos"),
])
def test_refusals_are_one_line_and_write_nothing(tmp_path, rig, case, code, message):
    cams, toml = rig
    inputs = write_2d_results(tmp_path, cams, walking_scene(frames=3))
    out = tmp_path / "old.json"
    out.write_text("precious")
    args = ["3d", "--from-2d", *inputs, "-c", toml, "-o", out]
    if case == "three inputs":
        args = ["3d", "--from-2d", *inputs[:3], "-c", toml, "-o", out]
    elif case == "landscape":
        text = toml.read_text().replace("size = [ 1080.0, 1920.0]", "size = [ 1920.0, 1080.0]")
        toml.write_text(text)
    elif case == "bad calibration":
        lines = toml.read_text().splitlines()
        i = next(n for n, line in enumerate(lines) if line.startswith("rotation"))
        lines[i] = "rotation = [ nan, 0.0, 0.0]"
        toml.write_text("\n".join(lines))
    elif case == "offsets count":
        args += ["--offsets", "0,1"]
    elif case == "offsets text":
        args += ["--offsets", "0,a"]
    elif case == "output type":
        args += ["-o", tmp_path / "p.txt"]
    elif case == "out is input":
        args += ["-o", inputs[0]]
    elif case == "3d as 2d":
        assert run("3d", "--from-2d", *inputs, "-c", toml, "-o", tmp_path / "made.json").exit_code == 0
        args = ["3d", "--from-2d", tmp_path / "made.json", *inputs[1:], "-c", toml, "-o", out]
    elif case == "two skeletons":
        doc = json.loads(inputs[1].read_text())
        doc["skeleton"]["name"] = "body25"
        for frame in doc["frames"]:
            for person in frame["people"]:
                person["keypoints"] = {"nose": [10, 10, 0.9]}
        inputs[1].write_text(json.dumps(doc))
    elif case == "render from 2d":
        args += ["--render", tmp_path / "check.mp4"]
    elif case == "one input":
        args = ["3d", "--from-2d", inputs[0], "-c", toml, "-o", out]
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run(*args)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    if code == 1:
        assert len([line for line in result.output.splitlines() if line.startswith("Error:")]) == 1
    assert out.read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no temporary file left


@pytest.mark.slow
def test_opensim_reads_every_frame_and_marker_of_the_trc(tmp_path, rig):
    cams, toml = rig
    inputs = write_2d_results(tmp_path, cams, walking_scene(frames=15))
    trc = tmp_path / "p.trc"
    assert run("3d", "--from-2d", *inputs, "-c", toml, "-o", trc).exit_code == 0
    code = ("import opensim, sys; t = opensim.TimeSeriesTableVec3(sys.argv[1]); "
            "print(t.getNumRows(), t.getNumColumns(), ','.join(t.getColumnLabels())); "
            "r = t.getRowAtIndex(0); print(r[0][1])")
    out = subprocess.run([consumer_python(), "-c", code, str(trc)], capture_output=True, text=True, timeout=300,
                         check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    rows, cols, labels = out.stdout.splitlines()[0].split()
    assert (int(rows), int(cols)) == (15, 18) and labels.split(",")[:2] == ["Nose", "Neck"]
    assert 1.4 < float(out.stdout.splitlines()[1]) < 1.9  # the nose's Y: up


@pytest.mark.slow
def test_the_shared_demo_videos_end_to_end(tmp_path):
    from tests.conftest import SHARED

    demo = SHARED / "data" / "multiview-single"
    if not (demo / "calibration" / "Calib.toml").exists():
        pytest.skip("the shared multi-view demo is not here")
    videos = [demo / "videos" / f"cam0{i}.mp4" for i in range(1, 5)]
    out = tmp_path / "demo.json"
    check = tmp_path / "check.mp4"
    result = run("3d", *videos, "-c", demo / "calibration" / "Calib.toml", "-o", out, "--max-frames", "4", "-q",
                 "--render", check)
    assert result.exit_code == 0, result.output
    import cv2

    cap = cv2.VideoCapture(str(check))
    ok, image = cap.read()
    assert ok and image.shape[0] == 540 and image.shape[1] > 4 * 250 and cap.get(cv2.CAP_PROP_FRAME_COUNT) == 4
    doc = json.loads(out.read_text())
    assert len(doc["frames"]) == 4
    subject = max((p for f in doc["frames"] for p in f["people"]), key=lambda p: len(p["cameras"]))
    neck = subject["keypoints"]["neck"]
    assert neck is not None and 1.2 < neck[2] < 1.7 and neck[3] < 30  # a standing adult's neck, Z up
    # the videos are 1080 wide, the calibration says 1088 (encoder padding): accepted; three videos are not
    result = run("3d", *videos[:3], "-c", demo / "calibration" / "Calib.toml", "-o", out)
    assert result.exit_code == 1 and "4 cameras in the calibration for 3 inputs" in result.output


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(2, 130), (15, 143)])
def test_a_signal_during_the_2d_writes_nothing(sig, code, tiny_model, tmp_path):
    import time

    from tests.helpers import posecli_cmd, subprocess_env, temp_files, write_video

    cams = [type(c)(c.name, (160, 120), c.K, c.dist, c.R, c.t) for c in ring(3)]
    write_toml(cams, tmp_path / "rig.toml")
    videos = [write_video(tmp_path / f"{c.name}.mp4", 200, size_wh=(160, 120)) for c in cams]
    out = tmp_path / "p.json"
    out.write_text("precious")
    cmd = posecli_cmd("3d", *videos, "-c", tmp_path / "rig.toml", "-o", out, "-o", tmp_path / "p.trc",
                      "-m", tiny_model, "--device", "cpu", "--height", "768", "--scales", "1,0.9")
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=subprocess_env(),
                            cwd=tmp_path)
    try:
        time.sleep(6)  # the model loaded, the 2D under way
        assert proc.poll() is None, "finished before the signal"
        proc.send_signal(sig)
        stderr = proc.communicate(timeout=60)[1].decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, stderr[-500:]
    assert "nothing written" in stderr and "Traceback" not in stderr
    assert out.read_text() == "precious" and not (tmp_path / "p.trc").exists() and not temp_files(tmp_path)


def test_one_trc_per_person_with_an_id_field(tmp_path, rig):
    cams, toml = rig
    inputs = write_2d_results(tmp_path, cams, walking_scene(frames=8))
    result = run("3d", "--from-2d", *inputs, "-c", toml, "-o", tmp_path / "walk_{id}.trc")
    assert result.exit_code == 0, result.output
    made = sorted(p.name for p in tmp_path.glob("walk_*.trc"))
    assert made == ["walk_0.trc", "walk_1.trc"]
    first = [(tmp_path / name).read_text().splitlines()[5].split("\t")[3] for name in made]
    assert first[0] != first[1]  # two people, two noses
