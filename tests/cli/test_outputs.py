"""``--part-candidates`` (every NMS peak, in the native and OpenPose JSON) and ``--max-people``."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from posecli.errors import InputError
from posecli.inference.estimator import PoseEstimator
from posecli.maps import Letterbox, Maps
from posecli.parser import parse, parse_with_peaks
from posecli.skeleton import COCO18

from tests import helpers as synthetic
from tests.helpers import fast, invoke, photo


def test_parse_with_peaks_gives_the_same_people_and_every_keypoint_is_a_peak():
    kp, size = synthetic.scene("partial", seed=3)
    heat, pafs = synthetic.render(kp, size)
    people = parse(heat, pafs, COCO18)
    again, peaks = parse_with_peaks(heat, pafs, COCO18)
    assert len(people) == len(again) >= 4
    for a, b in zip(people, again):
        assert np.array_equal(a.xy, b.xy, equal_nan=True) and a.score == b.score
        for k in np.flatnonzero(b.visible):
            mine = peaks.xy[peaks.start[k]:peaks.start[k + 1]]
            assert (np.abs(mine - b.xy[k]).max(axis=1) == 0).any()
    assert peaks.count >= sum(p.num_visible for p in again)


def _as_set(triples) -> set:
    return {tuple(t) for t in triples}


def test_every_keypoint_is_among_the_candidates_in_both_json_formats(mini_set, default_model, tmp_path):
    photos = mini_set["images"]
    # without the zoom-in pass: people it refines take their keypoints from their crops (README)
    opts = ["-m", default_model, "--device", "cpu", "--part-candidates", "--no-zoom"]
    r = invoke("image", *photos, "--out", tmp_path / "p.json", *opts)
    assert r.exit_code == 0, r.output
    checked = 0
    for rec in json.loads((tmp_path / "p.json").read_text())["images"]:
        cands = rec["part_candidates"]
        assert list(cands) == list(COCO18.parts)
        for person in rec["people"]:
            for name, kp in person["keypoints"].items():
                if kp is not None:
                    assert tuple(kp) in _as_set(cands[name]), (rec["file"], name)
                    checked += 1
    assert checked >= 100
    r = invoke("image", *photos, "--format", "openpose", "--out", tmp_path / "op", *opts)
    assert r.exit_code == 0, r.output
    for path in photos:
        doc = json.loads((tmp_path / "op" / f"{path.stem}_keypoints.json").read_text())
        (cands,) = doc["part_candidates"]  # CMU's layout: one object, part index -> flat x, y, score
        assert sorted(cands, key=int) == [str(k) for k in range(18)]
        for person in doc["people"]:
            flat = np.reshape(person["pose_keypoints_2d"], (-1, 3))
            for k, (x, y, s) in enumerate(flat):
                if s > 0:
                    assert (x, y, s) in _as_set(np.reshape(cands[str(k)], (-1, 3)).tolist())


def test_candidates_follow_a_reduced_decode_back_to_full_pixels(mini_set, default_model, tmp_path):
    """A large JPEG is decoded at a fraction of its size; candidates map back like keypoints."""
    big = cv2.resize(cv2.imread(str(mini_set["images"][0])), None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)
    assert cv2.imwrite(str(tmp_path / "big.jpg"), big)
    est = PoseEstimator(str(default_model), device="cpu", part_candidates=True)
    frame, _ = est.estimate_file(tmp_path / "big.jpg")
    assert frame.size_wh == (big.shape[1], big.shape[0]) and frame.people
    for p in frame.people:
        for k in np.flatnonzero(p.visible):
            cands = frame.extra["part_candidates"][COCO18.parts[k]]
            assert (np.abs(cands[:, :2] - p.xy[k]).max(axis=1) < 1e-9).any()
    xs = np.concatenate([c[:, 0] for c in frame.extra["part_candidates"].values()])
    assert xs.max() > big.shape[1] / 2  # full-size pixels, not the reduced decode's


def test_no_candidates_without_the_flag(tiny_model, tmp_path):
    r = invoke("image", photo(tmp_path / "a.jpg"), *fast(tiny_model))
    assert "part_candidates" not in json.loads(r.stdout)["images"][0]
    r = invoke("image", photo(tmp_path / "a.jpg"), "--part-candidates", *fast(tiny_model))
    assert json.loads(r.stdout)["images"][0]["part_candidates"]["nose"] == []


def test_max_people_keeps_the_highest_scoring(tiny_model):
    """Maps of five people rendered from known skeletons, parsed with and without max_people."""
    kp, size_hw = synthetic.scene("five", 0)
    heat, pafs = synthetic.render(kp, size_hw)
    wh = (size_hw[1] * synthetic.STRIDE, size_hw[0] * synthetic.STRIDE)
    maps = Maps(heat, pafs, Letterbox(wh, wh, wh), synthetic.STRIDE)
    everyone = PoseEstimator(tiny_model, device="cpu").parse(maps).people
    one = PoseEstimator(tiny_model, device="cpu", max_people=1).parse(maps).people
    assert len(everyone) == 5 and len(one) == 1
    best = max(everyone, key=lambda p: p.score)
    assert one[0].score == best.score and np.array_equal(one[0].xy, best.xy, equal_nan=True)


@pytest.mark.parametrize("bad", [0, -1, True, 2.5])
def test_max_people_must_be_a_positive_whole_number(tiny_model, bad):
    with pytest.raises(InputError, match="max_people"):
        PoseEstimator(str(tiny_model), device="cpu", max_people=bad)


def test_max_people_zero_is_a_usage_error(tiny_model, tmp_path):
    r = invoke("image", photo(tmp_path / "a.jpg"), "--max-people", "0", *fast(tiny_model))
    assert r.exit_code == 2 and "--max-people" in r.output


@pytest.mark.parametrize("command, flags", [
    ("image", ["--format csv", "--max-people", "--part-candidates", "--write-maps", "--background", "--thickness",
               "--min-score", "--keep-alpha", "--boxes"]),
    ("video", ["--format csv", "--follow largest", "--follow 3", "--max-people", "--write-maps", "--background",
               "--min-score", "--boxes"]),
    ("batch", ["--format csv", "--background", "--max-people"]),
])
def test_every_output_control_has_an_example_in_help(command, flags):
    r = invoke(command, "--help")
    examples = r.output[r.output.index("Examples:"):]
    for flag in flags:
        assert f" {flag}" in examples, (command, flag)
