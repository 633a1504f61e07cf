"""OpenPose JSON layouts: BODY_25 and COCO-17 orders of the same people, read back by pose-format."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from posecli.errors import OutputError
from posecli.formats.layouts import LAYOUTS, layout_flat, layout_keypoints
from posecli.formats.records import openpose_record
from posecli.formats.writers import ResultWriter
from posecli.skeleton import BODY25, COCO17_NAMES, COCO18

from tests.helpers import frame, person
from tests.helpers import consumer_python, invoke, photo

# Every COCO-18 part at a distinct place: x = 10 * (index + 1), y = 100 + index.
EVERY = {name: (10.0 * (k + 1), 100.0 + k) for k, name in enumerate(COCO18.parts)}


def _at(flat: list[float], k: int) -> tuple[float, float, float]:
    return tuple(flat[3 * k: 3 * k + 3])


def test_body25_puts_each_named_part_at_its_body25_index():
    flat = layout_flat(person(EVERY), "body25")
    assert len(flat) == 25 * 3
    for name, (x, y) in EVERY.items():
        assert _at(flat, BODY25.index(name))[:2] == (x, y), name


def test_body25_mid_hip_is_between_the_hips_with_the_lower_score():
    p = person(EVERY)
    p.scores[COCO18.index("l_hip")] = 0.3
    x, y, s = _at(layout_flat(p, "body25"), BODY25.index("mid_hip"))
    rx, ry = EVERY["r_hip"]
    lx, ly = EVERY["l_hip"]
    assert (x, y) == ((rx + lx) / 2, (ry + ly) / 2) and s == pytest.approx(0.3)


def test_body25_mid_hip_absent_when_one_hip_is_missing_and_feet_are_absent():
    points = {k: v for k, v in EVERY.items() if k != "l_hip"}
    flat = layout_flat(person(points), "body25")
    assert _at(flat, BODY25.index("mid_hip")) == (0.0, 0.0, 0.0)
    for foot in ("l_big_toe", "l_small_toe", "l_heel", "r_big_toe", "r_small_toe", "r_heel"):
        assert _at(flat, BODY25.index(foot)) == (0.0, 0.0, 0.0)


def test_coco17_order_matches_coco_names():
    kp = layout_keypoints(person(EVERY), "coco17")
    assert kp.shape == (17, 3)
    for i, name in enumerate(COCO17_NAMES):
        ours = name.replace("left_", "l_").replace("right_", "r_")
        assert tuple(kp[i, :2]) == EVERY[ours], name
    # the same order as the coco format's
    np.testing.assert_array_equal(kp, person(EVERY).to_coco17())


def test_coco18_is_unchanged_and_the_default():
    p = person({"nose": (1, 2), "l_ankle": (3, 4)})
    assert openpose_record(frame(p))["people"][0]["pose_keypoints_2d"] == [round(v, 3) for v in p.to_openpose()]
    assert tuple(LAYOUTS["coco18"]) == COCO18.parts


def test_body25_model_written_as_coco18_keeps_its_parts():
    p = person({"neck": (5, 6), "mid_hip": (7, 8), "l_heel": (9, 9)}, skeleton=BODY25)
    flat = layout_flat(p, "coco18")
    assert len(flat) == 18 * 3 and _at(flat, COCO18.index("neck"))[:2] == (5, 6)


def test_part_candidates_follow_the_layout():
    f = frame(person(EVERY))
    f.extra["part_candidates"] = {n: np.array([[k, k, 0.5]], float) for k, n in enumerate(COCO18.parts)}
    cands = openpose_record(f, "body25")["part_candidates"][0]
    assert cands[str(BODY25.index("r_hip"))] == [COCO18.index("r_hip")] * 2 + [0.5]
    assert cands[str(BODY25.index("mid_hip"))] == []


def test_unknown_layout_is_a_typed_error(tmp_path):
    with pytest.raises(OutputError, match="layout='body_25'"):
        ResultWriter("openpose", tmp_path / "x.json", layout="body_25")


def test_cli_unknown_layout_is_a_usage_error(tmp_path, tiny_model):
    from tests.helpers import fast, run

    result = run("image", photo(tmp_path / "a.jpg"), "--format", "openpose", "--layout", "body_25",
                 *fast(tiny_model))
    assert result.exit_code == 2 and "body25" in result.output


POSE_FORMAT_READ = """
import json, sys
import numpy as np
from pose_format.utils.openpose import load_openpose_directory, BODY_POINTS
pose = load_openpose_directory(sys.argv[1], width=1, height=1)
data = np.asarray(pose.body.data.filled(np.nan))  # (frames, people, points, 2)
conf = np.asarray(pose.body.confidence)
points = pose.header.components[0].points
out = {"frames": int(data.shape[0]), "people": int(data.shape[1]),
       "body": {n: [None if np.isnan(v) else float(v) for v in data[f, 0, i]] + [float(conf[f, 0, i])]
                for i, n in enumerate(points)
                for f in [int(sys.argv[2])]}}
print(json.dumps(out))
"""

# pose-format's BODY_25 names -> posecli's
PF_NAMES = {"Nose": "nose", "Neck": "neck", "RShoulder": "r_shoulder", "RElbow": "r_elbow", "RWrist": "r_wrist",
            "LShoulder": "l_shoulder", "LElbow": "l_elbow", "LWrist": "l_wrist", "MidHip": "mid_hip",
            "RHip": "r_hip", "RKnee": "r_knee", "RAnkle": "r_ankle", "LHip": "l_hip", "LKnee": "l_knee",
            "LAnkle": "l_ankle", "REye": "r_eye", "LEye": "l_eye", "REar": "r_ear", "LEar": "l_ear",
            "LBigToe": "l_big_toe", "LSmallToe": "l_small_toe", "LHeel": "l_heel", "RBigToe": "r_big_toe",
            "RSmallToe": "r_small_toe", "RHeel": "r_heel"}


def _pose_format(folder, frame_index: int) -> dict:
    proc = subprocess.run([consumer_python(), "-c", POSE_FORMAT_READ, str(folder), str(frame_index)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_pose_format_reads_every_named_point_where_posecli_put_it(tmp_path):
    """A synthetic frame with every COCO-18 part at a distinct place, written as BODY_25."""
    consumer_python()
    folder = tmp_path / "poses"
    writer = ResultWriter("openpose", folder, per_file_dir=True, layout="body25")
    for i in range(3):
        writer.add(frame(person(EVERY), source="clip.mp4", index=i))
    writer.close()
    got = _pose_format(folder, 2)
    assert got["frames"] == 3 and got["people"] == 1
    assert set(got["body"]) == set(PF_NAMES)
    for pf_name, x_y_c in got["body"].items():
        ours = PF_NAMES[pf_name]
        if ours in EVERY:
            assert x_y_c[:2] == pytest.approx(EVERY[ours]), pf_name
        elif ours == "mid_hip":
            assert x_y_c[:2] == pytest.approx(np.mean([EVERY["r_hip"], EVERY["l_hip"]], axis=0))
        else:  # feet: masked (confidence 0)
            assert x_y_c == [None, None, 0.0], pf_name


@pytest.mark.slow
def test_pose_format_reads_posecli_video_in_body25(tmp_path, default_model, shared_dir):
    """The real model on a real clip: pose-format's points equal posecli's own JSON, name by name."""
    consumer_python()
    clip = shared_dir / "data" / "multiview-single" / "videos" / "cam01.mp4"
    folder, native = tmp_path / "op", tmp_path / "native.json"
    args = [clip, "--max-frames", "4", "--device", "cpu", "--no-track", "--max-people", "1"]
    invoke("video", *args, "--format", "openpose", "--layout", "body25", "--out", f"{folder}/")
    invoke("video", *args, "--out", native)
    ours = json.loads(native.read_text())["frames"][3]["people"][0]["keypoints"]
    got = _pose_format(folder, 3)
    found = 0
    for pf_name, (x, y, c) in got["body"].items():
        name = PF_NAMES[pf_name]
        if name in ours and ours[name] is not None:
            assert (x, y) == pytest.approx(ours[name][:2], abs=0.01), pf_name
            found += 1
        elif name in ours or name != "mid_hip":
            assert c == 0.0, pf_name
    assert found >= 10
