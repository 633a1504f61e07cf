"""Scene cuts on real photos: another shot is a cut; motion, panning and light are not."""

from __future__ import annotations

import itertools

import cv2
import numpy as np

from posecli.video.scenecut import SceneCutDetector


def photos(shared_dir, n: int, size_wh=(480, 320)) -> list[np.ndarray]:
    paths = sorted(shared_dir.glob("data/coco-train2017-mini80/*.jpg"))[:n]
    return [cv2.resize(cv2.imread(str(p)), size_wh) for p in paths]


def pan(image: np.ndarray, dx: float) -> np.ndarray:
    h, w = image.shape[:2]
    return cv2.warpAffine(image, np.float32([[1, 0, dx], [0, 1, 0]]), (w, h), borderMode=cv2.BORDER_REPLICATE)


def test_a_change_of_shot_is_a_cut(shared_dir):
    shots = photos(shared_dir, 12)
    found = 0
    for a, b in itertools.pairwise(shots):
        det = SceneCutDetector()
        cuts = [det(pan(a, i)) for i in range(5)] + [det(pan(b, i)) for i in range(5)]
        assert not any(cuts[:5]) and not any(cuts[6:])
        found += cuts[5]
    assert found >= 10  # of 11 pairs of different photos


def test_panning_moving_people_and_light_changes_are_not_cuts(shared_dir):
    for image in photos(shared_dir, 6):
        det = SceneCutDetector()
        frames = [pan(image, 12 * i) for i in range(10)]  # a fast pan
        frames += [cv2.convertScaleAbs(frames[-1], alpha=1.15, beta=8)]  # a light change
        frames += [pan(image, 120 - 12 * i) for i in range(10)]
        assert not any(det(f) for f in frames)


def test_a_new_frame_size_is_a_cut_and_grey_frames_work(shared_dir):
    (image,) = photos(shared_dir, 1)
    det = SceneCutDetector()
    assert det(image) is False
    assert det(cv2.resize(image, (320, 240))) is True
    grey = cv2.cvtColor(cv2.resize(image, (320, 240)), cv2.COLOR_BGR2GRAY)
    assert det(grey) in (True, False)
