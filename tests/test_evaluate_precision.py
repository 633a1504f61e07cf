"""AP at OKS 0.9 (``CocoMetrics.ap90``): how precisely keypoints are placed, beside AP and AP75."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("pycocotools")

from posecli.evaluate import evaluate_detections  # noqa: E402

# One standing person, 17 COCO keypoints (x, y) about 200 px tall, centred at (300, 200).
_POSE = [
    (0, -90), (-6, -96), (6, -96), (-14, -92), (14, -92), (-30, -60), (30, -60), (-40, -20), (40, -20),
    (-45, 20), (45, 20), (-18, 10), (18, 10), (-20, 60), (20, 60), (-20, 110), (20, 110),
]


def _annotations() -> dict:
    kp = [v for dx, dy in _POSE for v in (300.0 + dx, 200.0 + dy, 2)]
    xs, ys = kp[0::3], kp[1::3]
    x0, y0, x1, y1 = min(xs) - 10, min(ys) - 10, max(xs) + 10, max(ys) + 10
    ann = {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "num_keypoints": 17, "keypoints": kp,
           "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0)}
    return {"images": [{"id": 1, "file_name": "a.jpg", "width": 640, "height": 480}], "annotations": [ann]}


def _shifted(ann: dict, d: float) -> list[dict]:
    kp = list(ann["annotations"][0]["keypoints"])
    kp[0::3] = [x + d for x in kp[0::3]]
    kp[1::3] = [y + d for y in kp[1::3]]
    kp[2::3] = [1.0] * 17
    return [{"image_id": 1, "category_id": 1, "keypoints": kp, "score": 0.9}]


@pytest.mark.parametrize("d, ap75, ap90", [(0, 1.0, 1.0), (4, 1.0, 1.0), (8, 1.0, 0.0), (12, 0.0, 0.0)])
def test_ap90_counts_only_keypoints_placed_within_oks_0_9(d, ap75, ap90):
    """A diagonal shift of d px drops the OKS below the thresholds one by one: at 8 px the
    person still counts at OKS 0.75, no longer at 0.9."""
    ann = _annotations()
    m = evaluate_detections(ann, _shifted(ann, d))
    assert (m.ap75, m.ap90) == pytest.approx((ap75, ap90))
    assert m.as_dict()["ap90"] == pytest.approx(ap90)


def test_ap90_is_nan_and_null_without_people_to_find():
    ann = _annotations()
    ann["annotations"] = []
    m = evaluate_detections(ann, _shifted(_annotations(), 0))
    assert math.isnan(m.ap90) and m.as_dict()["ap90"] is None
