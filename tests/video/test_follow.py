"""``--follow``: one subject kept by its track id, through a crossing, chosen again once lost."""

from __future__ import annotations

import itertools
import json

import cv2
import numpy as np
import pytest

from posecli.errors import ConfigError
from posecli.skeleton import COCO18
from posecli.types import Frame, Person
from posecli.video.follow import Follow, parse_follow
from posecli.video.track import Tracker, TrackerConfig

from tests import helpers as synthetic
from tests.helpers import fast, invoke, write_video


def _pose(template: np.ndarray, centre, scale: float = 1.0) -> Person:
    return Person(template * scale + np.asarray(centre, float), np.full(COCO18.num_parts, 0.9), 1.0, COCO18)


def _template(seed: int) -> np.ndarray:
    return synthetic.make_person(np.random.default_rng(seed), (0.0, 0.0), 130.0)[:, :2]


def _crossing(n: int = 41, seed: int = 1) -> list[tuple[Frame, float]]:
    """Frames of a tall person walking right across a smaller one walking left, in random
    parser order; with the tall one's true x."""
    big, small = _template(0), _template(3)
    rng = np.random.default_rng(seed)
    out = []
    for t in range(n):
        xa, xb = 100 + 8 * t, 420 - 8 * t
        people = [_pose(big + rng.normal(0, 1, big.shape), (xa, 200), 1.3),
                  _pose(small + rng.normal(0, 1, small.shape), (xb, 205), 0.9)]
        order = rng.permutation(2)
        out.append((Frame([people[i] for i in order], (640, 400), index=t, timestamp=t / 10), xa))
    return out


def test_largest_is_kept_through_a_crossing():
    follow = Follow("largest")
    kept = [(follow(frame).people, xa) for frame, xa in _crossing()]
    hits = TrackerConfig().min_hits  # nobody has an id, so nobody is followed, before confirmation
    assert all(not people for people, _ in kept[:hits - 1])
    kept = kept[hits - 1:]
    assert all(len(people) == 1 for people, _ in kept)
    assert {people[0].track_id for people, _ in kept} == {follow.target}
    necks = [people[0].xy[COCO18.index("neck"), 0] for people, _ in kept]
    assert np.allclose(necks, [xa for _, xa in kept], atol=6)  # always the tall walker, never the other


def test_center_and_an_explicit_id():
    frames = _crossing()
    instant = TrackerConfig(min_hits=1, confirm_s=0.0)  # ids from the first frame: this tests the choice, not confirmation
    centre = Follow("center", Tracker(instant))
    first = centre(frames[0][0])
    assert first.people[0].xy[COCO18.index("neck"), 0] == pytest.approx(420, abs=5)  # x=420 is nearer 320
    by_id = Follow(1, Tracker(instant))
    tracker_ids = [[p.track_id for p in by_id(f).people] for f, _ in frames]
    assert all(ids == [1] for ids in tracker_ids)
    nobody = Follow(7)
    assert all(not nobody(f).people for f, _ in frames)


def test_a_lost_subject_is_chosen_again_by_the_rule():
    big, small = _template(0), _template(3)
    follow = Follow("largest", Tracker(TrackerConfig(max_age=3, min_hits=1, confirm_s=0.0)))
    seen = []
    for t in range(12):
        people = [_pose(small, (400, 200), 0.8)]
        if t < 4:
            people.append(_pose(big, (150, 200), 1.4))
        seen.append([p.track_id for p in follow(Frame(people, (640, 400), index=t)).people])
    tall_id, small_id = seen[0][0], seen[-1][0]
    assert seen[:4] == [[tall_id]] * 4
    assert seen[4:8] == [[]] * 4 or all(s in ([], [small_id]) for s in seen[4:8])  # the tall one may come back
    assert seen[-1] == [small_id] and small_id != tall_id


@pytest.mark.parametrize("value, want", [("largest", "largest"), ("Centre", "center"), ("12", 12), (3, 3)])
def test_parse_follow(value, want):
    assert parse_follow(value) == want


@pytest.mark.parametrize("value", ["biggest", "-1", "1.5", -2, ""])
def test_bad_follow_values(value):
    with pytest.raises(ConfigError):
        parse_follow(value)


def test_cli_follow_usage_errors(tiny_model, tmp_path):
    clip = write_video(tmp_path / "c.mp4", 3)
    for args in (["--follow", "tallest"], ["--follow", "largest", "--no-track"], ["--follow", "-3"]):
        r = invoke("video", clip, "--out", tmp_path / "p.json", *args, *fast(tiny_model))
        assert r.exit_code == 2 and "--follow" in r.output, r.output


def _two_skiers_clip(path, photo, n: int = 24):
    """The skier twice, a large copy moving right across a small one moving left."""
    image = cv2.imread(str(photo))
    crop = image[40:425, 250:470]  # the skier, about 220 x 385 px
    big = cv2.resize(crop, (132, 231))
    small = cv2.resize(crop, (88, 154))
    w, h = 480, 256

    def frame(i):
        canvas = np.full((h, w, 3), 235, np.uint8)
        xs = 40 + i * 300 // (n - 1)
        xb = w - 128 - i * 300 // (n - 1)
        canvas[90:244, xb:xb + 88] = small
        canvas[15:246, xs:xs + 132] = big  # in front
        return canvas

    return write_video(path, n, size_wh=(w, h), frame_fn=frame)


def test_cli_follow_largest_keeps_one_id_across_a_crossing(mini_set, default_model, tmp_path):
    clip = _two_skiers_clip(tmp_path / "two.avi", mini_set["images"][0])
    opts = ["-m", default_model, "--device", "cpu", "-q"]
    r = invoke("video", clip, "--out", tmp_path / "all.json", *opts)
    assert r.exit_code == 0, r.output
    everyone = json.loads((tmp_path / "all.json").read_text())["frames"]
    assert max(len(f["people"]) for f in everyone) == 2  # both skiers are found
    r = invoke("video", clip, "--out", tmp_path / "one.json", "--follow", "largest", *opts)
    assert r.exit_code == 0, r.output
    frames = json.loads((tmp_path / "one.json").read_text())["frames"]
    assert all(len(f["people"]) <= 1 for f in frames)
    ids = {p["id"] for f in frames for p in f["people"]}
    assert len(ids) == 1
    necks = [(f["frame"], p["keypoints"]["neck"]) for f in frames for p in f["people"] if p["keypoints"]["neck"]]
    assert len(necks) >= len(frames) - 3
    xs = [kp[0] for _, kp in necks]
    assert xs[-1] - xs[0] > 200 and all(b > a - 15 for a, b in itertools.pairwise(xs))  # always the big skier, going right
