"""Association on synthetic multi-person, multi-camera scenes: grouping across views (noise,
missing detections, shuffled order, people seen by one camera only) and 3D ids across frames."""

from __future__ import annotations

import numpy as np
import pytest

from posecli.multiview.associate import AssociationConfig, Tracker3D, group_views
from tests.multiview.scenes import ring, skeleton_3d


def scene(rng, centers, cams, noise_px=2.0):
    """Per camera: (N, K, 2) pixels of every person in a shuffled order, (N, K) confidences, and
    each row's true person."""
    people = [skeleton_3d(center=c, facing=rng.uniform(0, 6.28), scale=rng.uniform(0.9, 1.1)) for c in centers]
    xy, conf, truth = [], [], []
    for cam in cams:
        order = rng.permutation(len(people))
        pts = np.stack([cam.project(people[i]) for i in order]) + rng.normal(0, noise_px, (len(order), 18, 2))
        xy.append(pts)
        conf.append(rng.uniform(0.4, 1.0, pts.shape[:2]))
        truth.append(order)
    return people, xy, conf, truth


def recovered(groups, truth):
    """Each group as the set of true person ids it joined, per camera."""
    return [{truth[c][p] for c, p in g.members.items()} for g in groups]


@pytest.mark.parametrize("seed", range(5))
def test_three_people_four_cameras(seed):
    rng = np.random.default_rng(seed)
    cams = ring(4)
    centers = [(-0.9, 0.2), (0.0, -0.3), (0.9, 0.4)]
    _, xy, conf, truth = scene(rng, centers, cams)
    groups = group_views(cams, xy, conf)
    assert len(groups) == 3
    for g, ids in zip(groups, recovered(groups, truth), strict=True):
        assert len(g.members) == 4
        assert len(ids) == 1  # one true person per group


def test_missing_detections_and_a_person_seen_once():
    rng = np.random.default_rng(7)
    cams = ring(4)
    _, xy, conf, truth = scene(rng, [(-0.8, 0.0), (0.8, 0.0)], cams)
    # camera 2 misses person 0; camera 3 has a stranger nobody else sees; camera 1 lost half of person 1
    keep = truth[2] != 0
    xy[2], conf[2], truth[2] = xy[2][keep], conf[2][keep], truth[2][keep]
    stranger = cams[3].project(skeleton_3d(center=(3.0, 3.0)))
    xy[3] = np.concatenate([xy[3], stranger[None]])
    conf[3] = np.concatenate([conf[3], np.ones((1, 18))])
    truth[3] = np.append(truth[3], 99)
    row = int(np.flatnonzero(truth[1] == 1)[0])
    xy[1][row, :9] = np.nan
    groups = group_views(cams, xy, conf)
    ids = recovered(groups, truth)
    assert sorted(len(g.members) for g in groups) == [3, 4]
    assert all(len(s) == 1 for s in ids) and {next(iter(s)) for s in ids} == {0, 1}


def test_max_people_keeps_the_best_seen():
    rng = np.random.default_rng(3)
    cams = ring(4)
    _, xy, conf, truth = scene(rng, [(-0.8, 0.0), (0.8, 0.0)], cams)
    keep = truth[0] != 1  # person 1 seen by three cameras only
    xy[0], conf[0], truth[0] = xy[0][keep], conf[0][keep], truth[0][keep]
    groups = group_views(cams, xy, conf, AssociationConfig(max_people=1))
    assert len(groups) == 1 and recovered(groups, truth) == [{0}]


def test_empty_views():
    cams = ring(3)
    empty = [np.zeros((0, 18, 2))] * 3
    assert group_views(cams, empty, [np.zeros((0, 18))] * 3) == []


def test_ids_last_across_frames_and_swapped_order():
    tracker = Tracker3D()
    a, b = skeleton_3d(center=(-1, 0)), skeleton_3d(center=(1, 0))
    step = np.array([0.02, 0.0, 0.0])
    first = tracker.update([a, b], 0.0)
    ids = [first]
    for f in range(1, 30):
        people = [a + f * step, b - f * step]
        if f % 2:
            people = people[::-1]
            ids.append(tracker.update(people, f / 30)[::-1])
        else:
            ids.append(tracker.update(people, f / 30))
    assert all(i == first for i in ids)
    # a gap longer than max_gap_s starts a new id; a person without points has none
    later = tracker.update([a, np.full((18, 3), np.nan)], 5.0)
    assert later[0] not in first and later[1] is None


def test_a_stale_track_does_not_take_a_recent_one():
    tracker = Tracker3D()
    a = skeleton_3d(center=(0, 0))
    first = tracker.update([a, a + [0.3, 0, 0]], 0.0)  # two tracks; the second is not seen again
    for f in range(1, 40):
        ids = tracker.update([a + [0.01 * f, 0, 0]], f / 60)
        assert ids == [first[0]]
