"""The ground-truth clip from annotated photos (posecli.video.photo_clip): the annotations move
with the picture, the truth scores AP 1 against itself, the clip is written and read back."""

import json

import cv2
import numpy as np
import pytest

from posecli.io.video import VideoSource
from posecli.video.photo_clip import PhotoClip, PhotoClipConfig


def _photo_with_dots(folder, dots_xy, size_wh=(400, 300)):
    """A black photo with white 5x5 dots at ``dots_xy``, and its COCO set (one person whose
    nose and left eye are the first two dots)."""
    image = np.zeros((size_wh[1], size_wh[0], 3), np.uint8)
    for x, y in dots_xy:
        cv2.rectangle(image, (x - 2, y - 2), (x + 2, y + 2), (255, 255, 255), -1)
    cv2.imwrite(str(folder / "dots.png"), image)
    kp = [0] * 51
    kp[0:3] = [*dots_xy[0], 2]
    kp[3:6] = [*dots_xy[1], 2]
    ann = {"images": [{"id": 7, "file_name": "dots.png", "width": size_wh[0], "height": size_wh[1]}],
           "annotations": [{"id": 1, "image_id": 7, "category_id": 1, "iscrowd": 0, "num_keypoints": 2,
                            "keypoints": kp, "area": 5000.0, "bbox": [100, 100, 100, 100]}]}
    (folder / "ann.json").write_text(json.dumps(ann))
    return folder / "ann.json"


def test_annotations_move_with_the_camera(tmp_path):
    ann = _photo_with_dots(tmp_path, [(120, 80), (300, 220)])
    clip = PhotoClip.from_coco([(ann, tmp_path)], photos=1, config=PhotoClipConfig(size_wh=(320, 180), frames_per_photo=6),
                               min_people=1)
    truth = clip.coco()
    assert [im["id"] for im in truth["images"]] == [1, 2, 3, 4, 5, 6] and len(truth["annotations"]) == 6
    for (n, frame), a in zip(clip.frames(), truth["annotations"]):
        kp = np.asarray(a["keypoints"]).reshape(-1, 3)
        for x, y, v in kp[:2]:
            assert v == 2
            ys, xs = np.nonzero(frame[..., 0] > 128)
            d = np.hypot(xs - x, ys - y).min()  # a bright pixel where the keypoint went
            assert d < 1.5, (n, x, y)
    first, last = truth["annotations"][0], truth["annotations"][-1]
    assert last["area"] > first["area"] * 1.3  # the camera zoomed in


def test_keypoints_that_leave_the_frame_are_unlabelled(tmp_path):
    ann = _photo_with_dots(tmp_path, [(2, 150), (200, 150)])  # the nose at the photo's left edge
    clip = PhotoClip.from_coco([(ann, tmp_path)], photos=1, min_people=1,
                               config=PhotoClipConfig(size_wh=(400, 300), frames_per_photo=5, zoom=2.0, pan=0.0))
    last = np.asarray(clip.coco()["annotations"][-1]["keypoints"]).reshape(-1, 3)
    assert last[0].tolist() == [0, 0, 0] and last[1, 2] == 2  # zoomed 2x about the centre: the edge left
    assert clip.coco()["annotations"][-1]["num_keypoints"] == 1


def test_the_truth_scores_ap_1_against_itself_and_the_clip_reads_back(tmp_path, mini_set):
    pytest.importorskip("pycocotools")
    from posecli.evaluate import evaluate_detections

    clip = PhotoClip.from_coco([(mini_set["annotations"], mini_set["dir"])], photos=2,
                               config=PhotoClipConfig(size_wh=(320, 180), frames_per_photo=3))
    video = clip.write(tmp_path / "clip.avi", tmp_path / "clip.json")
    truth = json.loads((tmp_path / "clip.json").read_text())
    dets = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
            for a in truth["annotations"] if a["num_keypoints"] > 0 and not a["iscrowd"]]
    assert evaluate_detections(truth, dets).ap == pytest.approx(1.0)
    frames = list(VideoSource(video))
    assert len(frames) == len(clip) == 6 and frames[0][2].shape == (180, 320, 3)
