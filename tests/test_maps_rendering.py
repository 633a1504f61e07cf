"""Ground-truth map rendering: Gaussian peaks, max combination, PAF bands and averaging."""

from __future__ import annotations

import numpy as np
import pytest

from posecli.skeleton import COCO18
from posecli.maps import cell_centres, render_heatmaps, render_pafs

S = 8
SIZE = (12, 16)  # H, W map cells
NECK, R_SHOULDER = COCO18.index("neck"), COCO18.index("r_shoulder")
NECK_TO_RSHOULDER = COCO18.limbs.index((NECK, R_SHOULDER))


def people(*points: dict[int, tuple[float, float]]) -> np.ndarray:
    """(N, K, 3) keypoints from {part: (x, y)} dicts; other parts absent (NaN, v=0)."""
    kp = np.full((len(points), COCO18.num_parts, 3), np.nan)
    kp[..., 2] = 0
    for n, pts in enumerate(points):
        for k, (x, y) in pts.items():
            kp[n, k] = (x, y, 1)
    return kp


def centre(i: int, j: int) -> tuple[float, float]:
    """Input-pixel x, y of map cell (row i, column j)."""
    return j * S + (S - 1) / 2, i * S + (S - 1) / 2


def test_cell_centres_follow_the_pixel_centre_convention():
    assert cell_centres(3, 8).tolist() == [3.5, 11.5, 19.5]
    assert cell_centres(2, 1).tolist() == [0.0, 1.0]


def test_heatmap_peak_value_and_position():
    sigma = 7.0
    heat = render_heatmaps(people({NECK: centre(5, 7)}), SIZE, S, sigma)
    assert heat.shape == (COCO18.num_parts + 1, *SIZE) and heat.dtype == np.float32
    assert np.unravel_index(heat[NECK].argmax(), SIZE) == (5, 7)
    assert heat[NECK, 5, 7] == pytest.approx(1.0)
    assert heat[NECK, 5, 8] == pytest.approx(np.exp(-(S**2) / sigma**2), rel=1e-5)
    assert heat[NECK, 6, 8] == pytest.approx(np.exp(-2 * S**2 / sigma**2), rel=1e-5)
    # Other parts are empty; the background is 1 - max over parts.
    assert np.count_nonzero(np.delete(heat[:-1], NECK, axis=0)) == 0
    np.testing.assert_allclose(heat[-1], 1 - heat[NECK], atol=1e-6)


def test_heatmap_sub_cell_keypoint_peaks_at_the_nearest_cell():
    x, y = centre(4, 4)
    heat = render_heatmaps(people({NECK: (x + 3.0, y - 2.0)}), SIZE, S, 7.0, background=False)
    assert heat.shape == (COCO18.num_parts, *SIZE)
    assert np.unravel_index(heat[NECK].argmax(), SIZE) == (4, 4)
    assert heat[NECK, 4, 4] == pytest.approx(np.exp(-13 / 49), rel=1e-5)


def test_overlapping_people_combine_by_maximum():
    a, b = people({NECK: centre(5, 5)}), people({NECK: (centre(5, 6)[0] + 2, centre(5, 6)[1])})
    both = render_heatmaps(np.concatenate([a, b]), SIZE, S, 9.0)
    ha, hb = render_heatmaps(a, SIZE, S, 9.0), render_heatmaps(b, SIZE, S, 9.0)
    np.testing.assert_allclose(both[NECK], np.maximum(ha[NECK], hb[NECK]), atol=1e-6)
    np.testing.assert_allclose(both[-1], 1 - both[NECK], atol=1e-6)


def test_absent_keypoints_render_nothing():
    kp = people({NECK: centre(2, 2), R_SHOULDER: centre(3, 3)})
    kp[0, R_SHOULDER, 2] = 0  # labelled as absent
    kp = np.concatenate([kp, people({})])
    heat = render_heatmaps(kp, SIZE, S, 7.0)
    assert heat[R_SHOULDER].max() == 0 and heat[NECK].max() == pytest.approx(1.0)
    assert render_heatmaps(np.zeros((0, COCO18.num_parts, 3)), SIZE, S, 7.0).max(initial=0) == 1.0


def test_paf_is_unit_on_the_limb_and_zero_off_it():
    a, b = centre(4, 2), centre(4, 10)  # a horizontal limb, 64 px long
    pafs = render_pafs(people({NECK: a, R_SHOULDER: b}), COCO18, SIZE, S, limb_width=8.0)
    assert pafs.shape == (2 * COCO18.num_limbs, *SIZE) and pafs.dtype == np.float32
    cx, cy = COCO18.paf_channels[NECK_TO_RSHOULDER]
    on = np.zeros(SIZE, dtype=bool)
    on[3:6, 2:11] = True  # rows within 8 px across, columns within the length
    np.testing.assert_allclose(pafs[cx][on], 1.0)
    np.testing.assert_allclose(pafs[cy][on], 0.0)
    assert np.count_nonzero(pafs[cx][~on]) == 0
    others = [c for i, pair in enumerate(COCO18.paf_channels) if i != NECK_TO_RSHOULDER for c in pair]
    assert np.count_nonzero(pafs[others]) == 0


def test_paf_diagonal_limb_has_unit_vectors():
    a, b = centre(1, 1), centre(9, 9)
    pafs = render_pafs(people({NECK: a, R_SHOULDER: b}), COCO18, SIZE, S, limb_width=6.0)
    cx, cy = COCO18.paf_channels[NECK_TO_RSHOULDER]
    norm = np.hypot(pafs[cx], pafs[cy])
    on = norm > 0
    np.testing.assert_allclose(norm[on], 1.0, rtol=1e-6)
    assert on[np.arange(1, 10), np.arange(1, 10)].all()  # the diagonal itself
    assert not on[1, 9] and not on[9, 1]
    np.testing.assert_allclose(pafs[cx][on], np.sqrt(0.5), rtol=1e-6)


def test_end_margin_extends_the_band_past_the_joints():
    a, b = centre(4, 4), centre(4, 8)
    kp = people({NECK: a, R_SHOULDER: b})
    cx, _ = COCO18.paf_channels[NECK_TO_RSHOULDER]
    plain = render_pafs(kp, COCO18, SIZE, S, 4.0)
    longer = render_pafs(kp, COCO18, SIZE, S, 4.0, end_margin=8.0)
    assert np.flatnonzero(plain[cx][4]).tolist() == [4, 5, 6, 7, 8]
    assert np.flatnonzero(longer[cx][4]).tolist() == [3, 4, 5, 6, 7, 8, 9]


def test_overlapping_limbs_of_two_people_average():
    # Person 1's limb points right, person 2's points down; they cross at cell (4, 6).
    p1 = {NECK: centre(4, 2), R_SHOULDER: centre(4, 10)}
    p2 = {NECK: centre(0, 6), R_SHOULDER: centre(8, 6)}
    pafs = render_pafs(people(p1, p2), COCO18, SIZE, S, limb_width=4.0)
    cx, cy = COCO18.paf_channels[NECK_TO_RSHOULDER]
    assert (pafs[cx, 4, 6], pafs[cy, 4, 6]) == pytest.approx((0.5, 0.5))
    assert (pafs[cx, 4, 3], pafs[cy, 4, 3]) == pytest.approx((1.0, 0.0))
    assert (pafs[cx, 1, 6], pafs[cy, 1, 6]) == pytest.approx((0.0, 1.0))
    # Two identical limbs average to the same unit vector.
    same = render_pafs(people(p1, p1), COCO18, SIZE, S, limb_width=4.0)
    np.testing.assert_allclose(same, render_pafs(people(p1), COCO18, SIZE, S, limb_width=4.0))


def test_zero_length_limb_and_empty_maps():
    kp = people({NECK: centre(3, 3), R_SHOULDER: centre(3, 3)})
    assert not render_pafs(kp, COCO18, SIZE, S, 8.0).any()
    assert render_pafs(kp, COCO18, (0, 5), S, 8.0).shape == (38, 0, 5)
    assert render_heatmaps(kp, (0, 5), S, 7.0).shape == (19, 0, 5)


def test_bad_keypoint_shape_raises():
    with pytest.raises(ValueError):
        render_heatmaps(np.zeros((3, 2)), SIZE, S, 7.0)
