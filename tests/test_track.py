"""Tracking: ids stay with their person through crossings and gaps; One-Euro smoothing."""

from __future__ import annotations

import cv2
import numpy as np

from posecli.inference.estimator import Maps, PoseEstimator
from posecli.inference.preprocess import Letterbox
from posecli.io.video import VideoSource
from posecli.skeleton import COCO18
from posecli.types import Person
from posecli.video.pipeline import Pipeline
from posecli.video.smooth import OneEuroConfig, OneEuroFilter
from posecli.video.track import Tracker, TrackerConfig

from . import helpers as synthetic
from .helpers import write_video


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
    """Times a ground-truth person's id changed from one frame where it was seen to the next."""
    last: dict[int, int] = {}
    switches = 0
    for gt_frame, id_frame in zip(truth, ids):
        for gt, tid in zip(gt_frame, id_frame):
            if gt in last and last[gt] != tid:
                switches += 1
            last[gt] = tid
    return switches


def run(tracker, frames: list[list[Person]]) -> list[list[int]]:
    return [[p.track_id for p in tracker.update(people)] for people in frames]


def test_two_people_crossing_paths_keep_their_ids():
    """An X: same height, opposite directions, fully overlapping at the middle frame."""
    a, b = templates(2)
    rng = np.random.default_rng(1)
    frames, truth = [], []
    for t in range(41):
        xa, xb = 100 + 8 * t, 420 - 8 * t
        jitter = lambda: rng.normal(0, 1.0, (COCO18.num_parts, 2))  # noqa: E731
        people = [pose_at(a + jitter(), (xa, 200)), pose_at(b + jitter(), (xb, 200 + 0.3 * t))]
        order = rng.permutation(2)  # the parser's order means nothing
        frames.append([people[i] for i in order])
        truth.append(list(order))
    ids = run(Tracker(), frames)
    assert id_switches(truth, ids) == 0
    assert {i for f in ids for i in f} == {0, 1}


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
    assert len({i for f in ids for i in f}) == 3


def test_short_gap_keeps_the_id_long_gap_gets_a_new_one():
    a, b = templates(2, seed=3)
    tracker = Tracker(TrackerConfig(max_age=5))
    seq = []
    for t in range(30):
        people = [pose_at(b, (400, 200))]
        if not (10 <= t < 14) and not (18 <= t < 26):  # a gap of 4 frames, then one of 8
            people.insert(0, pose_at(a, (100 + 3 * t, 200)))
        seq.append([p.track_id for p in tracker.update(people)])
    a_ids = [f[0] for t, f in enumerate(seq) if len(f) == 2]
    assert set(a_ids[:14]) == {0}  # before and after the short gap (moved meanwhile)
    assert set(a_ids[14:]) == {2}  # after the long gap: a new id, never a reused one
    assert all(f[-1] == 1 for f in seq)


def test_new_people_get_new_ids_and_inputs_are_not_modified():
    a, b = templates(2, seed=9)
    tracker = Tracker()
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
