"""OKS and the optimal assignment shared by the tracker and the Ray engine's stitching."""

from __future__ import annotations

import numpy as np
import pytest

from posecli.skeleton import BODY25, COCO18
from posecli.video.matching import assign, keypoint_area, keypoint_sigmas, oks

from tests.helpers import make_person


def test_oks_is_one_for_the_same_pose_and_falls_with_distance():
    a = make_person(np.random.default_rng(0), (200, 150), 140)[:, :2]
    sig = keypoint_sigmas(COCO18)
    assert sig[COCO18.index("nose")] == pytest.approx(0.026)
    assert oks(a, a, 5000.0, sig) == pytest.approx(1.0)
    assert 0 < oks(a, a + 30, 5000.0, sig) < oks(a, a + 5, 5000.0, sig) < 1
    assert oks(a, np.full_like(a, np.nan), 5000.0, sig) == 0.0


def test_sigmas_ignore_sides_and_default_for_unknown_parts():
    sig = keypoint_sigmas(BODY25)
    assert sig[BODY25.index("l_big_toe")] == sig[BODY25.index("r_heel")] == pytest.approx(0.089)
    assert sig[BODY25.index("mid_hip")] == pytest.approx(0.107)
    assert len(sig) == BODY25.num_parts


def test_area_needs_two_finite_points():
    xy = np.array([[0.0, 0.0], [np.nan, 1.0], [4.0, 3.0]])
    assert keypoint_area(xy) == 12.0
    assert keypoint_area(xy[:2]) == 0.0


def test_assign_maximises_the_total_and_refuses_weak_or_empty_pairs():
    # Greedy would take (0, 0) = 0.9 and leave (1, 1) = 0.1; the optimum pairs crosswise.
    sim = np.array([[0.9, 0.8], [0.7, 0.1]])
    assert sorted(assign(sim, 0.0)) == [(0, 1), (1, 0)]
    assert assign(sim, 0.75) == [(0, 1)]
    assert assign(np.zeros((2, 2)), 0.0) == []
    assert assign(np.zeros((0, 3)), 0.5) == []
