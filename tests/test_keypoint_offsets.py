"""bench/keypoint_offsets.py recovers an offset put into detections of real annotations."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.keypoint_offsets import main, report
from tests.helpers import MINI


def _moved(annotations: dict, dx: float, dy: float) -> list[dict]:
    out = []
    for a in annotations["annotations"]:
        if a.get("num_keypoints", 0) == 0:
            continue
        k = np.asarray(a["keypoints"], float).reshape(17, 3)
        k[:, 0] += dx
        k[:, 1] += dy
        k[:, 2] = np.where(k[:, 2] > 0, 0.9, 0.0)
        out.append({"image_id": a["image_id"], "category_id": 1, "keypoints": k.reshape(-1).tolist(), "score": 1.0})
    return out


def test_an_offset_put_in_is_measured_and_the_best_shift_undoes_it():
    annotations = json.loads((MINI / "person_keypoints.json").read_text())
    got = report(_moved(annotations, 0.5, -1.0), annotations)
    people = sum(1 for a in annotations["annotations"] if a.get("num_keypoints", 0) > 0)
    assert got["people"] == people
    assert got["median_dx"] == 0.5 and got["median_dy"] == -1.0
    for size in got["sizes"].values():
        by_dy = size["mean_oks_by_dy"]
        assert max(by_dy, key=by_dy.get) == 1.0  # moving down by 1 px undoes it


def test_the_command_reads_eval_out_files(tmp_path, capsys):
    annotations = json.loads((MINI / "person_keypoints.json").read_text())
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps(_moved(annotations, 0.0, 0.0)))
    main([str(dets), str(MINI / "person_keypoints.json")])
    printed = json.loads(capsys.readouterr().out)
    assert printed["median_dy"] == 0.0 and printed["keypoints"] > 0


@pytest.mark.parametrize("content, message", [
    (None, "no such COCO results file"),
    (b"\xff\xfe not json", "not UTF-8 text"),
    (b"not json", "not valid JSON"),
    (b'{"detections": 3}', "not COCO keypoint results"),
    (b'[{"image_id": 1}]', "a detection lacks a 'keypoints' list"),
    (b'[{"image_id": 1, "keypoints": [1, 2, 2], "score": 1}]', "keypoints must be 17 x, y, v triples"),
])
def test_bad_results_files_are_one_line_errors(tmp_path, capsys, content, message):
    dets = tmp_path / "dets.json"
    if content is not None:
        dets.write_bytes(content)
    assert main([str(dets), str(MINI / "person_keypoints.json")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"Error: {dets}: {message}") and len(err.strip().splitlines()) == 1, err
