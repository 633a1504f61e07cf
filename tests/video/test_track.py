"""Tracking: ids stay with their person through crossings and gaps; One-Euro smoothing."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from posecli.inference.estimator import PoseEstimator
from posecli.maps import Letterbox, Maps
from posecli.io.video import VideoSource
from posecli.skeleton import COCO18
from posecli.types import Frame, Person
from posecli.video.pipeline import Pipeline
from posecli.video.smooth import OneEuroConfig, OneEuroFilter
from posecli.video.track import Tracker, TrackerConfig

from tests import helpers as synthetic
from tests.helpers import write_video


def pose_at(template: np.ndarray, centre) -> Person:
    """A COCO-18 person: ``template`` (K, 2) offsets from the neck, moved to ``centre``."""
    return Person(template + np.asarray(centre, float), np.full(COCO18.num_parts, 0.9), 1.0, COCO18)


def templates(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        kp = synthetic.make_person(rng, (0.0, 0.0), rng.uniform(120, 150))
        out.append(kp[:, :2])
    return out


def id_switches(truth: list[list[int]], ids: list[list[int | None]]) -> int:
    """Times a ground-truth person's id changed from one frame where it had one to the next
    (frames before its track is confirmed, id None, do not count)."""
    last: dict[int, int] = {}
    switches = 0
    for gt_frame, id_frame in zip(truth, ids):
        for gt, tid in zip(gt_frame, id_frame):
            if tid is None:
                continue
            if gt in last and last[gt] != tid:
                switches += 1
            last[gt] = tid
    return switches


def run(tracker, frames: list[list[Person]], fps: float = 25.0) -> list[list[int | None]]:
    return [[p.track_id for p in tracker.update(people, n / fps)] for n, people in enumerate(frames)]


def test_two_people_crossing_paths_keep_their_ids():
    """An X: same height, opposite directions, fully overlapping at the middle frame."""
    a, b = templates(2)
    rng = np.random.default_rng(1)
    frames, truth = [], []
    for t in range(41):
        xa, xb = 100 + 8 * t, 420 - 8 * t
        jitter = lambda: rng.normal(0, 1.0, (COCO18.num_parts, 2))
        people = [pose_at(a + jitter(), (xa, 200)), pose_at(b + jitter(), (xb, 200 + 0.3 * t))]
        order = rng.permutation(2)  # the parser's order means nothing
        frames.append([people[i] for i in order])
        truth.append(list(order))
    ids = run(Tracker(), frames)
    assert id_switches(truth, ids) == 0
    assert {i for f in ids for i in f} == {0, 1, None}
    assert all(None not in f for f in ids[4:])  # confirmed after 0.1 s (frame 3 at 25 fps)


def test_three_people_weaving_with_missing_keypoints():
    tpl = templates(3, seed=5)
    rng = np.random.default_rng(7)
    frames, truth = [], []
    for t in range(60):
        centres = [(80 + 6 * t, 150 + 40 * np.sin(t / 6)), (440 - 6 * t, 170), (260 + 90 * np.sin(t / 9), 160 + 2 * t)]
        people = []
        for tp, c in zip(tpl, centres):
            xy = tp + rng.normal(0, 1.5, tp.shape)
            xy[rng.random(len(xy)) < 0.25] = np.nan  # parser misses some parts
            people.append(pose_at(xy, c))
        order = rng.permutation(3)
        frames.append([people[i] for i in order])
        truth.append(list(order))
    ids = run(Tracker(), frames)
    assert id_switches(truth, ids) == 0
    assert len({i for f in ids for i in f} - {None}) == 3


@pytest.mark.parametrize("fps", [25.0, 60.0])
def test_reentry_within_the_gap_keeps_the_id_after_it_gets_a_new_one(fps):
    """A walks on, vanishes 0.4 s (within max_gap_s 0.6 s: same id, found where its motion
    predicts it), then 1.0 s (past it: a new id, never a reused one); B stands still."""
    a, b = templates(2, seed=3)
    tracker = Tracker(TrackerConfig(max_gap_s=0.6))
    seq = []
    for n in range(int(3.0 * fps)):
        t = n / fps
        people = [pose_at(b, (400, 200))]
        if not (1.0 <= t < 1.4) and not (1.8 <= t < 2.8):
            people.insert(0, pose_at(a, (100 + 75 * t, 200)))  # 75 px/s: 30 px during the short gap
        seq.append((t, [p.track_id for p in tracker.update(people, t)]))
    a_ids = [(t, f[0]) for t, f in seq if len(f) == 2 and f[0] is not None]
    assert {i for t, i in a_ids if t < 1.8} == {0}
    assert {i for t, i in a_ids if t >= 2.8} == {2}
    assert all(f[-1] == 1 for t, f in seq if t > 0.2)


@pytest.mark.parametrize("fps", [25.0, 60.0])
@pytest.mark.parametrize("missing", [1, 2, 3])
def test_flicker_of_one_to_three_frames_keeps_the_id(fps, missing):
    (a,) = templates(1, seed=11)
    tracker = Tracker()
    ids = []
    for n in range(40):
        people = [] if 20 <= n < 20 + missing else [pose_at(a, (100 + 150 * n / fps, 200))]
        ids += [p.track_id for p in tracker.update(people, n / fps)]
    assert set(ids[10:]) == {0}


@pytest.mark.parametrize("fps", [25.0, 60.0])
def test_a_short_false_detection_gets_no_id_but_is_still_returned(fps):
    a, ghost = templates(2, seed=4)
    tracker = Tracker()
    out = []
    for n in range(30):
        people = [pose_at(a, (100, 200))]
        if 10 <= n < 12:  # two frames: 0.08 s at 25 fps, 0.03 s at 60
            people.append(pose_at(ghost, (420, 180)))
        out.append(tracker.update(people, n / fps))
    assert [len(f) for f in out[10:12]] == [2, 2]  # nothing lost
    assert [f[1].track_id for f in out[10:12]] == [None, None]
    assert {p.track_id for f in out[8:] for p in f} == {0, None}
    assert tracker.live_ids == [0]


def test_a_person_whose_score_dips_keeps_the_id_a_low_score_newcomer_starts_nothing():
    """Two-stage association: low-score people continue tracks but never start one."""
    a, b = templates(2, seed=6)
    tracker = Tracker(TrackerConfig(high_score=0.6))
    out = []
    for n in range(40):
        pa = pose_at(a, (100 + 2 * n, 200))
        pa.score = 0.45 if 15 <= n < 25 else 1.0  # partly hidden for a while
        pb = pose_at(b, (420, 200))
        pb.score = 0.45  # always weak
        out.append(tracker.update([pa, pb], n / 25))
    assert {f[0].track_id for f in out[5:]} == {0}
    assert all(f[1].track_id is None for f in out)
    assert len(out[-1]) == 2


def test_crossing_with_occlusion_the_hidden_person_comes_back_with_its_id():
    """B walks behind A: first B loses the parts A covers, then B is not found at all for
    0.3 s, then reappears on the other side, where its motion says it should be."""
    a, b = templates(2, seed=8)
    tracker = Tracker()
    ids_a, ids_b = [], []
    for n in range(60):
        t = n / 25
        ca, cb = np.array([150 + 100 * t, 210.0]), np.array([450 - 100 * t, 200.0])
        pa = pose_at(a, ca)
        xb = b + cb
        covered = np.abs(xb[:, 0] - ca[0]) < 45
        people = [pa]
        if covered.sum() < 12:  # mostly hidden: the parser finds nothing
            xb[covered] = np.nan
            people.append(Person(xb, np.where(covered, 0.0, 0.9), 0.5 if covered.any() else 1.0, COCO18))
        else:
            assert 0.8 < t < 1.8
        out = tracker.update(people, t)
        ids_a.append(out[0].track_id)
        if len(out) == 2:
            ids_b.append(out[1].track_id)
    assert set(ids_a[4:]) == {0}
    assert set(ids_b[4:]) == {1}
    assert len(ids_b) < 55  # B really was gone for a while


def test_a_hard_cut_between_two_clips_ends_every_track(shared_dir):
    """The same places, another shot: the person there after the cut is someone else."""
    photos = sorted(shared_dir.glob("data/coco-val2017-mini/*.jpg"))[:2]
    shots = [cv2.resize(cv2.imread(str(p)), (480, 320)) for p in photos]
    a, b = templates(2, seed=2)
    tracker = Tracker()
    ids = []
    for n in range(20):
        shot = 0 if n < 10 else 1
        person = pose_at(a if shot == 0 else b, (200 + n, 150))
        frame = Frame([person], (480, 320), timestamp=n / 25)
        ids.append(tracker(frame, shots[shot].copy()).people[0].track_id)
    assert tracker.cuts == 1
    assert set(ids[4:10]) == {0}
    assert ids[10] is None and set(ids[14:]) == {1}


def test_25_and_60_fps_clips_of_the_same_scene_give_the_same_tracks():
    scores = {}
    for fps in (25.0, 60.0):
        scene = synthetic.walking_scene(3, fps=fps, seconds=6.0)
        tracker = Tracker()
        outputs = [tracker.update(f.people, f.t) for f in scene]
        scores[fps] = synthetic.track_scores(scene, outputs)
    for s in scores.values():
        assert s["idf1"] >= 0.9 and s["id_switches"] <= 1
    assert scores[25.0]["hyp_ids"] == scores[60.0]["hyp_ids"]
    assert abs(scores[25.0]["idf1"] - scores[60.0]["idf1"]) < 0.05


@pytest.mark.parametrize("bad", [{"max_gap_s": float("nan")}, {"max_gap_s": -1.0}, {"confirm_s": float("inf")},
                                 {"min_similarity": 1.5}, {"fps": 0.0}, {"min_hits": 0}, {"max_age": -2},
                                 {"scene_cut": float("nan")}, {"velocity_s": 0.0}, {"min_hits": 2.5}])
def test_bad_settings_are_refused_naming_the_setting(bad):
    name = next(iter(bad))
    with pytest.raises(ValueError, match=name):
        TrackerConfig(**bad)


def test_missing_repeated_or_backwards_timestamps_do_not_break_tracking():
    (a,) = templates(1, seed=12)
    tracker = Tracker()
    stamps = [0.0, 0.04, None, float("nan"), 0.12, 0.12, 0.05, float("inf"), 0.3, 0.34]
    ids = [tracker.update([pose_at(a, (100 + 2 * n, 200))], ts)[0].track_id for n, ts in enumerate(stamps)]
    assert ids[-1] == 0 and set(ids[4:]) == {0}


def test_new_people_get_new_ids_once_confirmed_and_inputs_are_not_modified():
    a, b = templates(2, seed=9)
    tracker = Tracker(TrackerConfig(min_hits=1, confirm_s=0.0))
    first = [pose_at(a, (100, 200))]
    assert [p.track_id for p in tracker.update(first)] == [0]
    assert first[0].track_id is None
    second = [pose_at(b, (400, 200)), pose_at(a, (104, 201))]
    assert [p.track_id for p in tracker.update(second)] == [1, 0]
    assert tracker.update([]) == []


def test_one_euro_reduces_jitter_follows_motion_and_keeps_missing_points():
    rng = np.random.default_rng(0)
    f = OneEuroFilter(OneEuroConfig(min_cutoff=1.0, beta=0.01))
    still = [f(np.array([[100.0, 100.0]]) + rng.normal(0, 2.0, (1, 2)), t / 30) for t in range(90)]
    assert np.std(np.array(still)[30:, 0, 0]) < 0.5 * 2.0
    g = OneEuroFilter(OneEuroConfig(min_cutoff=1.0, beta=0.05))
    moving = [g(np.array([[10.0 * t, 0.0]]), t / 30) for t in range(60)]
    assert abs(moving[-1][0, 0] - 590.0) < 20  # little lag at 300 px/s
    out = g(np.array([[np.nan, np.nan]]), 2.0)
    assert np.isnan(out).all()


def test_tracker_with_smoothing_damps_jitter_of_a_still_person():
    (a,) = templates(1)
    rng = np.random.default_rng(2)
    tracker = Tracker(smoothing=OneEuroConfig())
    raw, smooth = [], []
    for t in range(60):
        p = pose_at(a + rng.normal(0, 2.0, a.shape), (200, 200))
        raw.append(p.xy)
        smooth.append(tracker.update([p], timestamp=t / 30)[0].xy)
    assert np.std(np.array(smooth)[20:], axis=0).mean() < 0.6 * np.std(np.array(raw)[20:], axis=0).mean()


# -- through the pipeline: decode -> maps -> real parser -> tracker ---------------------------------
class SceneEstimator:
    """Stands in for the network: frame i's maps are rendered from known skeletons."""

    def __init__(self, estimator: PoseEstimator, scenes: list[np.ndarray], size_hw):
        self._est = estimator
        self.model = estimator.model
        self.skeleton = estimator.skeleton
        self.scales = (1.0,)
        self._scenes = iter(scenes)
        self._size_hw = size_hw

    def maps_batch(self, images):
        out = []
        for _ in images:
            heat, pafs = synthetic.render(next(self._scenes), self._size_hw)
            wh = (self._size_hw[1] * synthetic.STRIDE, self._size_hw[0] * synthetic.STRIDE)
            out.append(Maps(heat, pafs, Letterbox(wh, wh, wh), synthetic.STRIDE))
        return out

    def parse(self, maps, **kw):
        return self._est.parse(maps, **kw)


def draw(people: np.ndarray) -> np.ndarray:
    """A (256, 456) frame with stick figures of (N, K, 3) ``people``."""
    image = np.zeros((256, 456, 3), np.uint8)
    for kp in people:
        for a, b in COCO18.limbs:
            pa, pb = kp[a, :2], kp[b, :2]
            cv2.line(image, tuple(int(v) for v in pa), tuple(int(v) for v in pb), (255, 255, 255), 2)
    return image


def test_pipeline_tracks_people_crossing_in_a_video(tmp_path, tiny_model):
    """A clip of two stick figures walking past each other (one slightly lower); the network is
    replaced by maps rendered from their known skeletons; real decode, parser and tracker."""
    size_hw = (32, 57)
    rng = np.random.default_rng(4)
    a = synthetic.make_person(rng, (0, 0), 130)
    b = synthetic.make_person(rng, (0, 0), 125)
    scenes = []
    for t in range(24):
        xa, xb = 60 + 14 * t, 396 - 14 * t
        pa, pb = a.copy(), b.copy()
        pa[:, :2] += (xa, 70)
        pb[:, :2] += (xb, 100)
        scenes.append(np.stack([pa, pb]))
    clip = write_video(tmp_path / "walk.mp4", 24, size_wh=(456, 256), frame_fn=lambda i: draw(scenes[i]))
    est = SceneEstimator(PoseEstimator(str(tiny_model), device="cpu"), scenes, size_hw)
    results = list(Pipeline(est, VideoSource(clip), tracker=Tracker(), batch_size=2))
    assert [r.index for r in results] == list(range(24))
    truth, ids = [], []
    neck = COCO18.index("neck")
    for r in results:
        gt = [int(p.xy[neck, 1] > 85) for p in r.frame.people if p.visible[neck]]  # a walks at y 70, b at 100
        truth.append(gt)
        ids.append([p.track_id for p in r.frame.people if p.visible[neck]])
    seen = sum(len(g) for g in truth)
    assert seen >= 0.9 * 2 * 24  # the parser finds both in (nearly) every frame
    assert id_switches(truth, ids) == 0
    assert all(None not in f for f in ids[4:])  # confirmed within 0.1 s of video (10 fps clip)


@pytest.mark.parametrize("spacing_s", [0.04, 0.2, 0.5, 2.0])
def test_ids_whatever_the_time_between_processed_frames(spacing_s):
    # --step 5 on a 25 fps video (0.2 s), a slow machine on a live source, a time-lapse (2 s):
    # a new track used to be dropped after confirm_s (0.1 s) unseen, so none was ever confirmed
    template = templates(1)[0]
    tracker = Tracker()
    ids = [tracker(Frame([pose_at(template, (200.0 + i, 200.0))], (640, 480), timestamp=i * spacing_s))
           .people[0].track_id for i in range(10)]
    assert ids[:2] == [None, None]  # min_hits 3
    assert set(ids[4:]) == {0}  # confirmed, and kept from one frame to the next


def test_a_track_that_misses_frames_far_apart_ends():
    template = templates(1)[0]
    tracker = Tracker()
    seen = []
    for i in range(12):
        people = [] if i in (5, 6) else [pose_at(template, (200.0, 200.0))]  # gone for two frames
        frame = tracker(Frame(people, (640, 480), timestamp=i * 0.8))
        seen.append(frame.people[0].track_id if frame.people else "-")
    # 0.8 s apart: two missed frames leave it unseen 2.4 s, past both max_gap_s (1 s) and 1.5 frames
    assert seen[4] == 0 and seen[5:7] == ["-", "-"] and seen[7] is None and seen[-1] == 1


@pytest.mark.parametrize("stamps, expected", [
    ([0.0, 0.5, 1e200, 2e200, 3e200, 4e200, 5e200], [None] * 7),  # every frame ends the tracks
    ([-1e308, -0.5e308, 0.0, 1e308, 1.2e308, 1.4e308, 1.6e308], [None] * 7),  # gaps overflow to inf
    ([0.0, 0.5, 1.0, 1e9, 1e9 + 0.5, 1e9 + 1.0, 1e9 + 1.5], [None, None, 0, None, None, 1, 1])])
def test_lying_timestamps_end_the_tracks_without_overflow(stamps, expected):
    # a container whose timestamps jump by ages: a track seen the frame before is kept only up
    # to ONE_FRAME_MAX_S apart, so nothing is extrapolated over 1e200 s (overflow, NaN)
    import warnings

    template = templates(1)[0]
    tracker = Tracker()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ids = [tracker(Frame([pose_at(template, (200.0, 200.0))], (640, 480), timestamp=t)).people[0].track_id
               for t in stamps]
    assert ids == expected
