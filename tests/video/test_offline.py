"""Offline tracking: look-ahead linking of fragments, gap filling, zero-phase smoothing,
frames out in order with a bounded buffer."""

from __future__ import annotations

import numpy as np
import pytest

from posecli.skeleton import COCO18
from posecli.types import Frame, Person
from posecli.video.offline import OfflineTracker
from posecli.video.smooth import OneEuroConfig
from posecli.video.track import Tracker, TrackerConfig

from tests import helpers as synthetic


def pose(template: np.ndarray, centre, score: float = 1.0) -> Person:
    return Person(template + np.asarray(centre, float), np.full(COCO18.num_parts, 0.9), score, COCO18)


def templates(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [synthetic.make_person(rng, (0.0, 0.0), rng.uniform(120, 150))[:, :2] for _ in range(n)]


def frames_of(people_at, n: int, fps: float = 25.0) -> list[Frame]:
    return [Frame(people_at(i / fps), (640, 480), index=i, timestamp=i / fps) for i in range(n)]


def run(tracker: OfflineTracker, frames: list[Frame]) -> list[Frame]:
    return list(tracker.run(frames))


def test_two_fragments_of_one_person_are_joined_and_the_gap_filled():
    """Hidden for 0.4 s while walking on; a strict online tracker (max_gap_s 0.2) gives a
    second id; offline, the fragments' motions meet, so it is one person and one id."""
    (a,) = templates(1, seed=1)
    cfg = TrackerConfig(max_gap_s=0.2)
    walk = lambda t: [] if 1.0 <= t < 1.4 else [pose(a, (80 + 120 * t, 200))]
    frames = frames_of(walk, 75)
    online = Tracker(cfg)
    online_ids = {p.track_id for f in frames for p in online.update(f.people, f.timestamp)} - {None}
    assert len(online_ids) == 2
    tracker = OfflineTracker(cfg)
    out = run(tracker, frames)
    assert [f.index for f in out] == list(range(75))
    assert {p.track_id for f in out for p in f.people} == {0}
    assert tracker.links == 1
    gap = [f for f in out if 1.0 <= f.timestamp < 1.4]
    assert all(len(f.people) == 1 and f.people[0].score == 0.0 for f in gap)  # filled, marked score 0
    for f in gap:  # where the person really was
        assert np.nanmax(np.abs(f.people[0].xy - (a + (80 + 120 * f.timestamp, 200)))) < 3.0


def test_two_different_people_are_never_joined():
    """A leaves on the right; B enters on the left soon after; C appears where A was last
    seen but walking the other way; D overlaps A in time. Four people, four ids."""
    a, b, c, d = templates(4, seed=2)

    def people(t):
        out = []
        if t < 1.0:
            out.append(pose(a, (400 + 200 * t, 200)))  # leaves at x 600
        if 1.2 <= t:
            out.append(pose(b, (60 + 100 * (t - 1.2), 220)))
        if 1.3 <= t:
            out.append(pose(c, (560 - 150 * (t - 1.3), 200)))  # near A's end, going back
        if 0.8 <= t < 1.6:
            out.append(pose(d, (300, 260)))
        return out

    tracker = OfflineTracker()
    out = run(tracker, frames_of(people, 60))
    ids = {p.track_id for f in out for p in f.people}
    assert ids == {0, 1, 2, 3}
    assert tracker.links == 0


def test_confirmed_tracks_have_their_id_from_the_first_frame_short_false_ones_never():
    a, ghost = templates(2, seed=3)

    def people(t):
        out = [pose(a, (100 + 50 * t, 200))]
        if 0.4 <= t < 0.48:  # two frames
            out.append(pose(ghost, (450, 200)))
        return out

    out = run(OfflineTracker(), frames_of(people, 30))
    assert [f.people[0].track_id for f in out] == [0] * 30  # online: None for the first 3 frames
    assert [len(f.people) for f in out[10:12]] == [2, 2] and out[10].people[1].track_id is None
    assert all(f.extra.get("tracked") for f in out)


def test_zero_phase_smoothing_removes_jitter_without_lag():
    """Constant speed with noise: offline smoothing follows the true path (no lag), One-Euro
    online lags behind it."""
    (a,) = templates(1, seed=4)
    rng = np.random.default_rng(0)
    true = lambda t: a + (50 + 200 * t, 200)
    frames = frames_of(lambda t: [Person(true(t) + rng.normal(0, 2.0, a.shape), np.full(18, 0.9), 1.0, COCO18)], 60)
    raw = np.array([f.people[0].xy - true(f.timestamp) for f in frames])
    smooth = run(OfflineTracker(smooth=True), frames)
    err = np.array([f.people[0].xy - true(f.timestamp) for f in smooth])
    online = Tracker(smoothing=OneEuroConfig())
    err_online = np.array([online.update(f.people, f.timestamp)[0].xy - true(f.timestamp) for f in frames])
    mid = slice(10, 50)
    assert np.abs(err[mid, :, 0].mean()) < 0.5  # no lag along the motion
    assert err_online[mid, :, 0].mean() < -2.0  # One-Euro trails behind
    assert err[mid].std() < 0.7 * raw[mid].std()  # less jitter


def test_frames_come_out_in_order_and_the_buffer_stays_bounded():
    scene = synthetic.walking_scene(1, fps=25.0, seconds=6.0)
    cfg = TrackerConfig(lookahead_s=0.5)
    tracker = OfflineTracker(cfg)
    out, most = [], 0
    for i, f in enumerate(scene):
        out += [fr.index for fr, _ in tracker.push(Frame(f.people, (1280, 720), index=i, timestamp=f.t), None)]
        most = max(most, len(tracker._held))
    out += [fr.index for fr, _ in tracker.flush()]
    assert out == list(range(len(scene)))
    assert most <= 0.5 * 25 + 2
    assert len(tracker._frags) < 20  # old fragments are forgotten


def test_no_join_across_a_scene_cut(shared_dir):
    """Same place, same motion, but a cut in between: two ids."""
    import cv2

    photos = sorted(shared_dir.glob("data/coco-val2017-mini/*.jpg"))[:2]
    shots = [cv2.resize(cv2.imread(str(p)), (480, 320)) for p in photos]
    (a,) = templates(1, seed=5)
    tracker = OfflineTracker()
    out = []
    for i in range(40):
        t = i / 25
        people = [] if 0.8 <= t < 1.0 else [pose(a, (100 + 50 * t, 150))]
        out += tracker.push(Frame(people, (480, 320), index=i, timestamp=t), shots[0 if t < 0.9 else 1])
    out += tracker.flush()
    ids = [f.people[0].track_id for f, _ in out if f.people]
    assert tracker.online.cuts == 1
    assert set(ids[:20]) == {0} and set(ids[20:]) == {1}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_on_walking_scenes_offline_is_at_least_as_good_as_online(seed):
    scene = synthetic.walking_scene(seed, fps=25.0, seconds=8.0)
    online = Tracker()
    on = synthetic.track_scores(scene, [online.update(f.people, f.t) for f in scene])
    frames = [Frame(f.people, (1280, 720), index=i, timestamp=f.t) for i, f in enumerate(scene)]
    off = synthetic.track_scores(scene, [f.people for f in OfflineTracker().run(frames)])
    assert off["idf1"] >= 0.9 and on["idf1"] >= 0.85
    assert off["idf1"] >= on["idf1"] - 0.01 and off["mota"] > on["mota"]
    assert off["fragmentations"] < on["fragmentations"]
