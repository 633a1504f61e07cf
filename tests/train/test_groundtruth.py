"""Ground truth for training: maps from hand-made annotations, the mask, COCO-17 -> COCO-18."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("pycocotools")

from posecli.skeleton import COCO18  # noqa: E402
from posecli.train.groundtruth import coco17_to_skeleton, ignore_mask, render_sample  # noqa: E402

S = 8  # stride
NAN = float("nan")


def centre(i: int, j: int) -> tuple[float, float]:
    """Input-pixel x, y of map cell (row i, column j)."""
    return j * S + (S - 1) / 2, i * S + (S - 1) / 2


def people(*parts: dict[str, tuple[float, float]]) -> np.ndarray:
    """(N, 18, 3) COCO-18 keypoints, v = 2 for the named parts, missing elsewhere."""
    kp = np.full((len(parts), COCO18.num_parts, 3), NAN)
    kp[..., 2] = 0
    for n, named in enumerate(parts):
        for name, (x, y) in named.items():
            kp[n, COCO18.index(name)] = (x, y, 2)
    return kp


def render(kp, size_hw=(64, 96), mask=None, sigma=7.0, limb_width=8.0):
    mask = np.ones(size_hw, np.float32) if mask is None else mask
    return render_sample(kp, mask, COCO18, S, sigma, limb_width)


def test_heatmap_peak_value_and_position():
    hm, _, mask = render(people({"nose": centre(2, 5)}))
    nose = COCO18.index("nose")
    assert hm.shape == (19, 8, 12) and mask.shape == (1, 8, 12)
    assert np.unravel_index(hm[nose].argmax(), hm[nose].shape) == (2, 5)
    assert hm[nose, 2, 5] == pytest.approx(1.0)
    # One cell away: exp(-8^2 / 7^2); the background is 1 - max over parts.
    assert hm[nose, 2, 6] == pytest.approx(np.exp(-64 / 49), rel=1e-5)
    assert hm[18, 2, 5] == pytest.approx(0.0, abs=1e-6)
    assert hm[18, 7, 0] == pytest.approx(1.0, abs=1e-6)
    assert np.all(hm[:nose] == 0) and np.all(hm[nose + 1:18] == 0)


def test_heatmaps_of_two_people_combine_by_maximum():
    a, b = centre(3, 3), centre(3, 5)
    hm, _, _ = render(people({"neck": a}, {"neck": b}))
    neck = hm[COCO18.index("neck")]
    assert neck[3, 3] == pytest.approx(1.0, abs=1e-6) and neck[3, 5] == pytest.approx(1.0, abs=1e-6)
    between = np.exp(-(S**2) / 49)  # the middle cell is one cell from both: max, not sum
    assert neck[3, 4] == pytest.approx(between, rel=1e-5)
    assert neck.max() <= 1.0 + 1e-6


def test_paf_is_unit_length_on_the_limb_and_zero_off_it():
    # Neck -> right shoulder (limb (1, 2), channels 12, 13), horizontal along row 4.
    kp = people({"neck": centre(4, 2), "r_shoulder": centre(4, 8)})
    _, paf, _ = render(kp, limb_width=4.0)
    cx, cy = COCO18.paf_channels[COCO18.limbs.index((1, 2))]
    norm = np.hypot(paf[cx], paf[cy])
    on = np.zeros_like(norm, dtype=bool)
    on[4, 2:9] = True
    np.testing.assert_allclose(norm[on], 1.0, atol=1e-6)
    np.testing.assert_allclose(paf[cx][on], 1.0, atol=1e-6)
    assert np.all(norm[~on] == 0)
    others = [c for pair in COCO18.paf_channels for c in pair if c not in (cx, cy)]
    assert np.all(paf[others] == 0)


def test_paf_averages_where_two_limbs_overlap():
    # Two people's neck -> r_shoulder limbs cross at cell (4, 4): one along x, one along y.
    kp = people({"neck": centre(4, 1), "r_shoulder": centre(4, 7)},
                {"neck": centre(1, 4), "r_shoulder": centre(7, 4)})
    _, paf, _ = render(kp, limb_width=2.0)
    cx, cy = COCO18.paf_channels[COCO18.limbs.index((1, 2))]
    assert (paf[cx, 4, 4], paf[cy, 4, 4]) == pytest.approx((0.5, 0.5))
    assert (paf[cx, 4, 2], paf[cy, 4, 2]) == pytest.approx((1.0, 0.0))
    assert (paf[cx, 2, 4], paf[cy, 2, 4]) == pytest.approx((0.0, 1.0))


def test_coco17_to_coco18_order_and_neck():
    kp17 = np.zeros((2, 17, 3))
    kp17[0, 5] = (40, 50, 2)   # left_shoulder
    kp17[0, 6] = (20, 54, 1)   # right_shoulder
    kp17[0, 1] = (33, 20, 2)   # left_eye
    kp17[1, 5] = (40, 50, 2)   # only one shoulder: no neck
    kp = coco17_to_skeleton(kp17)
    assert kp.shape == (2, 18, 3)
    np.testing.assert_allclose(kp[0, COCO18.index("neck")], (30, 52, 1))
    np.testing.assert_allclose(kp[0, COCO18.index("l_eye")], (33, 20, 2))
    np.testing.assert_allclose(kp[0, COCO18.index("r_shoulder")], (20, 54, 1))
    assert np.isnan(kp[1, COCO18.index("neck"), :2]).all() and kp[1, COCO18.index("neck"), 2] == 0
    assert np.isnan(kp[0, COCO18.index("nose"), :2]).all()  # v = 0 in COCO -> missing


def test_mask_is_zero_on_crowd_and_on_people_without_keypoints():
    h, w = 64, 96
    # Crowd as uncompressed RLE (column-major runs): columns 8..23 fully covered.
    counts = [8 * h, 16 * h, (w - 24) * h]
    crowd = {"iscrowd": 1, "num_keypoints": 0, "segmentation": {"size": [h, w], "counts": counts}}
    # A person without keypoints, as a polygon: x 56..80, y 16..48.
    nokp = {"iscrowd": 0, "num_keypoints": 0, "segmentation": [[56, 16, 80, 16, 80, 48, 56, 48]]}
    annotated = {"iscrowd": 0, "num_keypoints": 5, "segmentation": [[0, 0, 8, 0, 8, 8, 0, 8]]}
    mask = ignore_mask([crowd, nokp, annotated], h, w)
    assert mask.shape == (h, w)
    assert np.all(mask[:, 8:24] == 0)
    assert np.all(mask[20:44, 60:76] == 0)
    assert mask[2, 2] == 1 and mask[60, 90] == 1 and mask[5, 30] == 1
    _, _, grid = render(people(), size_hw=(h, w), mask=mask)
    assert np.all(grid[0, :, 1:3] == 0)          # crowd cells
    assert np.all(grid[0, 3:5, 8:9] == 0)        # the unannotated person's cells
    assert grid[0, 7, 11] == 1


def test_dataset_flip_swaps_left_and_right(tmp_path):
    cv2 = pytest.importorskip("cv2")
    from posecli.train.dataset import AugmentConfig, CocoPoseDataset

    h, w = 64, 64
    cv2.imwrite(str(tmp_path / "a.png"), np.full((h, w, 3), 100, np.uint8))
    kp17 = [0.0] * 51
    kp17[9 * 3:9 * 3 + 3] = [11.5, 27.5, 2]    # left_wrist (COCO-17 index 9)
    kp17[10 * 3:10 * 3 + 3] = [43.5, 35.5, 2]  # right_wrist
    coco = {"images": [{"id": 1, "file_name": "a.png", "height": h, "width": w}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "num_keypoints": 2,
                             "keypoints": kp17, "bbox": [0, 0, 64, 64], "segmentation": []}],
            "categories": [{"id": 1, "name": "person"}]}
    (tmp_path / "a.json").write_text(json.dumps(coco))
    fixed = dict(target_height=1.0, scale_range=(1.0, 1.0), max_rotation=0.0, max_shift=0.0,
                 brightness=0.0, contrast=0.0, saturation=0.0)
    plain = CocoPoseDataset(tmp_path / "a.json", tmp_path, (h, w), augment=AugmentConfig(flip_prob=0.0, **fixed))[0]
    flipped = CocoPoseDataset(tmp_path / "a.json", tmp_path, (h, w), augment=AugmentConfig(flip_prob=1.0, **fixed))[0]
    lw, rw = COCO18.index("l_wrist"), COCO18.index("r_wrist")

    def peak(sample, k):
        m = sample["heatmaps"][k].numpy()
        return np.unravel_index(m.argmax(), m.shape)

    assert peak(plain, lw) == (3, 1) and peak(plain, rw) == (4, 5)
    # Mirrored: the right wrist's spot (x 43.5 -> 19.5) now holds the *left* wrist's label.
    assert peak(flipped, lw) == (4, 2) and peak(flipped, rw) == (3, 6)
    assert flipped["image"].shape == (3, h, w) and flipped["mask"].shape == (1, 8, 8)
