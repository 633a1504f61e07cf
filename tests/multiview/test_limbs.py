"""Bones keep their length: a walking synthetic person with noisy, stretched keypoints."""

from __future__ import annotations

import numpy as np
import pytest

from posecli.multiview.limbs import LimbConfig, _runs, consistent_track, length_spread, smooth
from posecli.skeleton import COCO18
from tests.multiview.scenes import skeleton_3d


def walking(frames=120, fps=60.0):
    t = np.arange(frames) / fps
    base = skeleton_3d()
    xyz = np.repeat(base[None], frames, axis=0)
    xyz[:, :, 0] += 0.8 * t[:, None]  # walks along x
    # the arms swing about the shoulders (a rigid rotation keeps their lengths)
    for shoulder, arm in ((2, [3, 4]), (5, [6, 7])):
        angle = 0.4 * np.sin(2 * np.pi * 1.0 * t)
        rel = xyz[:, arm] - xyz[:, [shoulder]]
        c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
        y, z = rel[..., 1].copy(), rel[..., 2].copy()
        rel[..., 1], rel[..., 2] = c * y - s * z, s * y + c * z
        xyz[:, arm] = xyz[:, [shoulder]] + rel
    return xyz


def test_noisy_limbs_come_back_to_constant_lengths():
    rng = np.random.default_rng(0)
    truth = walking()
    noisy = truth + rng.normal(0, 0.02, truth.shape)
    noisy[rng.random(noisy.shape[:2]) < 0.05] += 0.15  # 5% of keypoints badly off
    noisy[10:14, 7] = np.nan  # a gap
    before = length_spread(noisy, COCO18)
    out = consistent_track(noisy, None, COCO18, fps=60.0)
    after = length_spread(out, COCO18)
    assert before[0] > 0.06 and before[1] > 0.05
    assert after[0] <= 0.061 and after[1] == 0.0  # within the 3% band
    exact = length_spread(consistent_track(noisy, None, COCO18, 60.0, LimbConfig(tolerance=0.0)), COCO18)
    assert exact[0] < 0.01 and exact[1] == 0.0
    assert np.isfinite(out[10:14, 7]).all()  # a 4-frame gap is filled
    # the skeleton still lands where the person is: closer to the truth than the noisy input
    err_in = np.nanmedian(np.linalg.norm(noisy - truth, axis=-1))
    err_out = np.nanmedian(np.linalg.norm(out - truth, axis=-1))
    assert err_out < err_in


def test_the_less_certain_end_moves():
    xyz = np.repeat(skeleton_3d()[None], 10, axis=0)
    stretched = xyz.copy()
    stretched[0, 4] += (stretched[0, 4] - stretched[0, 3]) * 0.5  # wrist half a forearm too far
    error = np.ones((10, 18))
    error[0, 4] = 50.0  # the wrist is the uncertain one
    out = consistent_track(stretched, error, COCO18, fps=60.0, config=LimbConfig(cutoff_hz=None))
    assert np.linalg.norm(out[0, 3] - xyz[0, 3]) < 0.01  # the elbow stayed
    assert np.linalg.norm(out[0, 4] - xyz[0, 4]) < 0.02  # the wrist came back


def test_smooth_skips_short_runs_and_keeps_gaps():
    xyz = np.random.default_rng(1).normal(size=(40, 18, 3))
    xyz[5] = np.nan
    out = smooth(xyz, 60.0, 6.0)
    np.testing.assert_array_equal(out[:5], xyz[:5])  # a 5-frame run is too short to filter
    assert np.isnan(out[5]).all()
    assert np.abs(np.diff(out[6:], axis=0)).mean() < np.abs(np.diff(xyz[6:], axis=0)).mean()
    assert _runs(np.array([1, 1, 0, 1], bool)) == [(0, 2), (3, 4)]


@pytest.mark.parametrize("bad", [dict(cutoff_hz=0.0), dict(cutoff_hz=float("nan")), dict(order=0),
                                 dict(iterations=-1)])
def test_config_is_checked(bad):
    with pytest.raises(ValueError):
        LimbConfig(**bad)


def test_short_gaps_are_filled_long_ones_and_ends_are_not():
    from posecli.multiview.limbs import fill_gaps

    xyz = np.repeat(np.linspace(0, 1, 30)[:, None, None], 18, axis=1).repeat(3, axis=2)
    xyz[5:8, 0] = np.nan  # 3 frames: filled
    xyz[10:25, 1] = np.nan  # 15 frames: kept missing
    xyz[:2, 2] = np.nan  # the start: kept missing
    out, filled = fill_gaps(xyz, 10)
    np.testing.assert_allclose(out[5:8, 0, 0], np.linspace(0, 1, 30)[5:8])
    assert filled[5:8, 0].all() and filled.sum() == 3
    assert np.isnan(out[10:25, 1]).all() and np.isnan(out[:2, 2]).all()
