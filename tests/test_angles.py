"""Joint and segment angles: posecli's equal Sports2D's own computation on the same keypoints."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from posecli.angles import ANGLES, angle_names, marker_name, markers, person_angles
from posecli.skeleton import BODY25, COCO18
from posecli.types import Person

from tests.consumers import SPORTS2D_ANGLES, run_consumer
from tests.helpers import person
from tests.helpers import make_person


def test_marker_names_are_sports2d_names():
    assert [marker_name(p) for p in ("r_big_toe", "l_small_toe", "mid_hip", "nose", "l_ear")] == [
        "RBigToe", "LSmallToe", "Hip", "Nose", "LEar"]
    assert markers(COCO18)[-1] == "Hip" and "Neck" in markers(COCO18)


def test_coco18_has_no_ankle_foot_wrist_or_head_angles():
    names = angle_names(COCO18)
    assert "right knee" in names and "trunk" in names and "left forearm" in names
    for missing in ("right ankle", "left ankle", "right foot", "left foot", "right wrist", "head"):
        assert missing not in names
    assert "right ankle" in angle_names(BODY25) and "right foot" in angle_names(BODY25)


def test_known_angles_by_hand():
    """A straight standing leg: knee 0; segments to the horizontal as Sports2D signs them in pixels
    (y down): thigh (knee below hip) -90, trunk (neck above the hips) 90."""
    p = person({"r_hip": (100, 100), "r_knee": (100, 200), "r_ankle": (100, 300), "l_hip": (140, 100),
                "l_knee": (140, 200), "l_ankle": (200, 280), "neck": (120, 0)})
    a = person_angles(p)
    assert a["right knee"] == pytest.approx(0.0, abs=1e-9)
    assert a["right thigh"] == pytest.approx(-90.0)
    assert a["trunk"] == pytest.approx(90.0)  # neck straight above the hips' middle
    assert a["pelvis"] == pytest.approx(0.0)
    assert abs(a["left knee"]) == pytest.approx(math.degrees(math.atan2(60, 80)))  # bent: shank off the thigh line
    assert math.isnan(a["right elbow"])  # no arm found


def _people(n: int, seed: int) -> list[Person]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        kp = make_person(rng, (300 + rng.uniform(-50, 50), 200), 300)
        xy = kp[:, :2] + rng.normal(0, 25, (COCO18.num_parts, 2))  # odd poses too
        if i % 3 == 2:
            xy[COCO18.index("l_wrist")] = np.nan  # a missing point: NaN in both
        if i % 5 == 4:
            xy[COCO18.index("r_hip")] = np.nan  # no Hip either
        out.append(Person(xy, np.ones(COCO18.num_parts), 1.0, COCO18))
    return out


@pytest.mark.slow  # runs Sports2D in the consumers' venv
def test_angles_equal_sports2d_on_the_same_keypoints():
    people = _people(40, seed=3)
    names = angle_names(COCO18)
    job = {"names": [marker_name(p) for p in COCO18.parts], "angles": names, "side": "right",
           "people": [np.where(np.isfinite(p.xy), p.xy, np.nan).tolist() for p in people]}
    theirs = run_consumer(SPORTS2D_ANGLES, stdin=json.dumps(job))
    compared = 0
    for p, row in zip(people, theirs):
        ours = person_angles(p, names)
        for name, value in zip(names, row):
            if value is None:
                assert math.isnan(ours[name]), name
            else:
                assert ours[name] == pytest.approx(value, abs=1e-6), name
                compared += 1
    assert compared > 40 * len(names) * 0.8


def test_every_sports2d_angle_is_in_the_table():
    assert len(ANGLES) == 28


def test_angles_in_every_csv_of_a_batch(tmp_path, tiny_model):
    from tests.helpers import fast, photo, photo_clip, run

    folder = tmp_path / "in"
    folder.mkdir()
    photo_clip(folder / "clip.mp4", photo(folder / "a.jpg", size_hw=(224, 320)), 3)
    result = run("batch", folder, "--out", tmp_path / "out", "--format", "csv", "--angles", "-q", *fast(tiny_model))
    assert result.exit_code == 0, result.output
    for name in ("a.csv", "clip.csv"):
        assert (tmp_path / "out" / name).read_text().splitlines()[0].endswith(",angle")
    result = run("batch", folder, "--out", tmp_path / "o2", "--angles", *fast(tiny_model))
    assert result.exit_code == 2 and "--format csv" in result.output


def test_csv_angle_rows_read_back(tmp_path):
    import csv

    from posecli.formats.csv import read_csv_frames
    from posecli.formats.writers import ResultWriter

    from tests.helpers import frame

    p = person({"r_hip": (100, 100), "r_knee": (100, 200), "r_ankle": (120, 300)})
    writer = ResultWriter("csv", tmp_path / "a.csv", angles=True)
    writer.add(frame(p))
    writer.close()
    with open(tmp_path / "a.csv") as f:
        rows = list(csv.DictReader(f))
    knee = [r for r in rows if r["keypoint"] == "right knee"]
    assert len(knee) == 1 and float(knee[0]["angle"]) == pytest.approx(person_angles(p)["right knee"], abs=0.01)
    assert next(r for r in rows if r["keypoint"] == "left knee")["angle"] == ""  # no left leg found
    back = read_csv_frames(tmp_path / "a.csv")[0]["people"][0]["keypoints"]
    assert set(back) == set(COCO18.parts)  # angle rows are not keypoints
