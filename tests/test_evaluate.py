"""posecli.evaluate and ``posecli eval``: hand-made sets with known AP, then the real model."""

from __future__ import annotations

import contextlib
import io
import json
import math
import sys

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("pycocotools")

from posecli.cli import main  # noqa: E402
from posecli.errors import InputError, MissingExtraError  # noqa: E402
from posecli.evaluate import CocoMetrics, evaluate_detections, evaluate_estimator, load_annotations  # noqa: E402
from posecli.skeleton import COCO18  # noqa: E402
from posecli.types import Frame, Person  # noqa: E402

# Two standing people, 17 COCO keypoints each (x, y), about 200 px tall.
_POSE = [
    (0, -90), (-6, -96), (6, -96), (-14, -92), (14, -92), (-30, -60), (30, -60), (-40, -20), (40, -20),
    (-45, 20), (45, 20), (-18, 10), (18, 10), (-20, 60), (20, 60), (-20, 110), (20, 110),
]


def _gt_keypoints(cx: float, cy: float) -> list[float]:
    flat = []
    for dx, dy in _POSE:
        flat += [float(cx + dx), float(cy + dy), 2]
    return flat


def _annotations() -> dict:
    """Two images: one with two people, one with one person."""
    people = [(1, 150, 200), (1, 400, 220), (2, 300, 200)]
    anns = []
    for n, (image_id, cx, cy) in enumerate(people, start=1):
        kp = _gt_keypoints(cx, cy)
        xs, ys = kp[0::3], kp[1::3]
        x0, y0, x1, y1 = min(xs) - 10, min(ys) - 10, max(xs) + 10, max(ys) + 10
        anns.append({
            "id": n, "image_id": image_id, "category_id": 1, "iscrowd": 0, "num_keypoints": 17,
            "keypoints": kp, "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0),
        })
    return {
        "images": [
            {"id": 1, "file_name": "a.jpg", "width": 640, "height": 480},
            {"id": 2, "file_name": "b.jpg", "width": 640, "height": 480},
        ],
        "annotations": anns,
        "categories": [{"id": 1, "name": "person", "keypoints": [], "skeleton": []}],
    }


def _perfect(ann: dict, dx: float = 0.0, dy: float = 0.0) -> list[dict]:
    out = []
    for a in ann["annotations"]:
        kp = list(a["keypoints"])
        kp[0::3] = [x + dx for x in kp[0::3]]
        kp[1::3] = [y + dy for y in kp[1::3]]
        kp[2::3] = [1.0] * 17
        out.append({"image_id": a["image_id"], "category_id": 1, "keypoints": kp, "score": 0.9})
    return out


def test_detections_equal_to_ground_truth_score_one():
    ann = _annotations()
    m = evaluate_detections(ann, _perfect(ann))
    assert m.ap == pytest.approx(1.0)
    assert m.ap50 == pytest.approx(1.0)
    assert m.ar == pytest.approx(1.0)
    assert m.images == 2


def test_shifted_detections_score_less_and_monotonically():
    # ~110x230 px people: a diagonal shift of d px per axis drops the mean OKS below the
    # 0.50:0.05:0.95 thresholds one by one (known AP for each shift).
    ann = _annotations()
    aps = [evaluate_detections(ann, _perfect(ann, dx=d, dy=d)).ap for d in (0, 4, 8, 12, 30)]
    assert aps == pytest.approx([1.0, 0.9, 0.6, 0.3, 0.0])


def test_no_detections_score_zero():
    m = evaluate_detections(_annotations(), [])
    assert m.ap == 0.0 and m.ar == 0.0
    assert m.detections == []


def test_missing_person_lowers_recall():
    ann = _annotations()
    m = evaluate_detections(ann, _perfect(ann)[:2])
    assert m.ar == pytest.approx(2 / 3)
    assert m.ap < 1.0


def test_image_ids_restrict_the_scored_images():
    ann = _annotations()
    m = evaluate_detections(ann, _perfect(ann)[:2], image_ids=[1])
    assert m.ap == pytest.approx(1.0)
    assert m.images == 1


def test_undefined_metrics_are_nan_and_null_in_dict():
    # All people here are "large" (area > 96^2): COCO leaves APM undefined.
    ann = _annotations()
    m = evaluate_detections(ann, _perfect(ann))
    assert math.isnan(m.apm)
    assert m.as_dict()["apm"] is None
    json.dumps(m.as_dict(), allow_nan=False)


def test_inputs_are_not_modified_and_nothing_is_printed():
    ann = _annotations()
    dets = _perfect(ann)
    before = (json.dumps(ann), json.dumps(dets))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        evaluate_detections(ann, dets)
    assert out.getvalue() == ""
    assert (json.dumps(ann), json.dumps(dets)) == before


def test_detection_of_unknown_image_is_an_input_error():
    ann = _annotations()
    dets = _perfect(ann)
    dets[0]["image_id"] = 99
    with pytest.raises(InputError, match="99"):
        evaluate_detections(ann, dets)


def test_bad_annotation_files_name_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="bad.json"):
        load_annotations(bad)
    with pytest.raises(InputError, match="no such"):
        load_annotations(tmp_path / "missing.json")
    with pytest.raises(InputError, match="COCO"):
        load_annotations({"images": []})


def test_missing_pycocotools_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pycocotools.coco", None)
    with pytest.raises(MissingExtraError, match=r"posecli\[eval\]"):
        evaluate_detections(_annotations(), [])


class _GroundTruthEstimator:
    """Stands in for PoseEstimator: 'finds' the annotated people of each image."""

    def __init__(self, ann: dict):
        self.by_size = {}
        for im in ann["images"]:
            self.by_size[im["id"]] = [a for a in ann["annotations"] if a["image_id"] == im["id"]]
        self.calls = 0

    def maps(self, image):
        self.calls += 1
        return int(image[0, 0, 0])  # the image id is painted into the pixel

    def parse(self, image_id, source=""):
        people = []
        for a in self.by_size[image_id]:
            kp = np.asarray(a["keypoints"], float).reshape(17, 3)
            xy = np.full((COCO18.num_parts, 2), np.nan)
            scores = np.zeros(COCO18.num_parts)
            for i, k in enumerate(COCO18.coco17):
                xy[k] = kp[i, :2]
                scores[k] = 0.9
            people.append(Person(xy, scores, 0.9, COCO18))
        return Frame(people, (640, 480), source=source)


def test_evaluate_runs_every_annotated_image_by_file_name(tmp_path):
    import cv2

    ann = _annotations()
    for im in ann["images"]:
        cv2.imwrite(str(tmp_path / im["file_name"]), np.full((48, 64, 3), im["id"], np.uint8))
    seen = []
    est = _GroundTruthEstimator(ann)
    m = evaluate_estimator(est, ann, tmp_path, on_image=lambda done, total, frame, iid: seen.append((done, total, iid)))
    assert isinstance(m, CocoMetrics)
    assert m.ap == pytest.approx(1.0)
    assert seen == [(1, 2, 1), (2, 2, 2)]
    assert len(m.detections) == 3 and m.images_per_s > 0
    assert set(m.timing) == {"read", "network", "parse"}

    (tmp_path / "b.jpg").unlink()
    with pytest.raises(InputError, match="b.jpg"):
        evaluate_estimator(est, ann, tmp_path)


@pytest.mark.slow
def test_cli_on_the_mini_set(default_model, mini_set, tmp_path):
    from pycocotools.coco import COCO

    out = tmp_path / "detections.json"
    args = ["eval", "--annotations", str(mini_set["annotations"]), "--images", str(mini_set["dir"]),
            "--model", str(default_model), "--out", str(out), "--quiet"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    table = dict(line.split() for line in result.stdout.strip().splitlines())
    assert set(table) == {"AP", "AP50", "AP75", "AP@0.9", "APM", "APL", "AR", "images", "images/s"}
    assert int(table["images"]) == len(mini_set["images"])
    assert 0.3 < float(table["AP"]) <= 1.0  # the real model finds people
    assert float(table["images/s"]) > 0

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(mini_set["annotations"]))
        res = gt.loadRes(str(out))
    assert len(res.getAnnIds()) > 0
    assert set(res.getImgIds()) <= set(gt.getImgIds())


def test_cli_errors(tmp_path, mini_set):
    runner = CliRunner()
    result = runner.invoke(main, ["eval", "--annotations", str(tmp_path / "none.json"), "--images", str(tmp_path)])
    assert result.exit_code == 1
    assert "none.json: no such annotation file" in result.output
    result = runner.invoke(main, ["eval", "--annotations", str(mini_set["annotations"]),
                                  "--images", str(tmp_path / "nowhere")])
    assert result.exit_code == 1
    assert "no such image directory" in result.output
    result = runner.invoke(main, ["eval", "--images", str(tmp_path)])
    assert result.exit_code == 2


def test_coco_ap_of_a_model_file(tiny_model, tmp_path):
    import cv2

    from posecli.evaluate import coco_ap

    ann = _annotations()
    for im in ann["images"]:
        cv2.imwrite(str(tmp_path / im["file_name"]), np.full((480, 640, 3), 100, np.uint8))
    ap = coco_ap(tiny_model, ann, tmp_path, height=64, device="cpu")
    assert isinstance(ap, float) and 0.0 <= ap <= 1.0
