"""Triangulation on synthetic cameras: exact points, noise, distortion, outlier views, missing views."""

from __future__ import annotations

import numpy as np
import pytest

from posecli.multiview.triangulate import TriangulationConfig, triangulate
from tests.multiview.scenes import project_all, ring, skeleton_3d


def test_exact_projections_give_the_points_back_through_distortion():
    cams = ring(4, dist=[-0.05, 0.1, 0.001, -0.001, 0.0])
    xyz = skeleton_3d(center=(0.3, -0.2), facing=0.7)
    xy = project_all(cams, xyz)
    out = triangulate(cams, xy, np.ones(xy.shape[:2]))
    np.testing.assert_allclose(out.xyz, xyz, atol=1e-6)
    assert np.nanmax(out.error_px) < 1e-3
    assert out.used.all()


def test_noise_stays_small_and_weights_follow_confidence():
    rng = np.random.default_rng(0)
    cams = ring(4)
    xyz = skeleton_3d()
    xy = project_all(cams, xyz) + rng.normal(0, 2.0, (4, 18, 2))
    out = triangulate(cams, xy, np.ones((4, 18)))
    assert np.nanmax(np.linalg.norm(out.xyz - xyz, axis=1)) < 0.02
    assert out.used.all()  # 2 px noise: no view is implausible
    # a view with a big error but tiny confidence barely moves the point
    bad = xy.copy()
    bad[0] += 60
    conf = np.ones((4, 18))
    conf[0] = 0.31
    loose = TriangulationConfig(threshold_px=1e6)  # keep every view: only the weights act
    weighted = triangulate(cams, bad, conf, loose)
    flat = triangulate(cams, bad, np.ones((4, 18)), loose)
    assert (np.linalg.norm(weighted.xyz - xyz, axis=1).mean()
            < 0.6 * np.linalg.norm(flat.xyz - xyz, axis=1).mean())


@pytest.mark.parametrize("n_cams", [3, 4, 6])
def test_an_outlier_view_is_dropped_per_point(n_cams):
    rng = np.random.default_rng(n_cams)
    cams = ring(n_cams)
    xyz = skeleton_3d(facing=0.4)
    xy = project_all(cams, xyz) + rng.normal(0, 1.0, (n_cams, 18, 2))
    # camera 1 is wrong on the left arm, camera 0 on the nose. (A left/right swap can be
    # geometrically consistent: this flat template's swapped shoulder agrees with 3 of 4 views.)
    swapped = [5, 6, 7]
    xy[1, swapped] += (120, 80)
    xy[0, 0] += (150, -90)
    out = triangulate(cams, xy, np.full((n_cams, 18), 0.9))
    assert not out.used[1, swapped].any() and not out.used[0, 0]
    assert out.used.sum() == n_cams * 18 - len(swapped) - 1  # nothing else dropped
    assert np.nanmax(np.linalg.norm(out.xyz - xyz, axis=1)) < 0.02
    assert np.nanmax(out.error_px) < 5


def test_two_outlier_views_of_four():
    rng = np.random.default_rng(5)
    cams = ring(4)
    xyz = skeleton_3d()
    xy = project_all(cams, xyz) + rng.normal(0, 1.0, (4, 18, 2))
    xy[0, 9] += 120
    xy[2, 9] -= (0, 200)
    out = triangulate(cams, xy, np.ones((4, 18)))
    assert list(out.used[:, 9]) == [False, True, False, True]
    assert np.linalg.norm(out.xyz[9] - xyz[9]) < 0.02


def test_missing_and_unconfident_views():
    cams = ring(4)
    xyz = skeleton_3d()
    xy = project_all(cams, xyz)
    conf = np.ones((4, 18))
    xy[:3, 0] = np.nan  # nose seen by one camera only: missing
    conf[:, 1] = [0.9, 0.1, 0.2, 0.0]  # neck confident in one camera only: missing
    xy[2:, 2] = np.nan  # r_shoulder in two cameras: kept
    out = triangulate(cams, xy, conf)
    assert np.isnan(out.xyz[[0, 1]]).all() and np.isnan(out.error_px[[0, 1]]).all()
    assert not out.used[:, [0, 1]].any()
    np.testing.assert_allclose(out.xyz[2], xyz[2], atol=1e-6)
    assert list(out.used[:, 2]) == [True, True, False, False]


def test_two_views_that_disagree_are_dropped_past_max_error():
    cams = ring(2)
    xyz = skeleton_3d()
    xy = project_all(cams, xyz)
    xy[0, 4] += 400
    out = triangulate(cams, xy, np.ones((2, 18)), TriangulationConfig(max_error_px=50))
    assert np.isnan(out.xyz[4]).all()
    assert np.isfinite(out.xyz[np.arange(18) != 4]).all()


@pytest.mark.parametrize("bad", [dict(ratio=float("nan")), dict(threshold_px=-1), dict(min_views=1),
                                 dict(max_error_px=float("inf"))])
def test_config_is_checked(bad):
    with pytest.raises(ValueError):
        TriangulationConfig(**bad)
