import json
import os

import pytest

from posecli.errors import OutputError
from posecli.formats.records import (
    coco_image_id,
    coco_records,
    frame_record,
    openpose_filename,
    openpose_record,
)
from posecli.formats.writers import JsonStream, ResultWriter
from posecli.io.atomic import AtomicFile

from tests.helpers import frame, person


def test_native_record_names_keypoints_and_uses_null_for_missing():
    p = person({"nose": (10.123, 20.456), "neck": (11, 30)}, score=0.77)
    rec = frame_record(frame(p, source="a.jpg"))
    assert rec["file"] == "a.jpg" and rec["width"] == 640 and rec["height"] == 480
    kps = rec["people"][0]["keypoints"]
    assert kps["nose"] == [10.12, 20.46, 0.8]
    assert kps["l_ear"] is None
    assert len(kps) == 18
    assert rec["people"][0]["score"] == 0.77


def test_openpose_record_is_flat_with_zeros_for_missing_and_person_id():
    p = person({"neck": (5, 6)}, track_id=3)
    rec = openpose_record(frame(p))
    assert rec["version"] == 1.3
    flat = rec["people"][0]["pose_keypoints_2d"]
    assert len(flat) == 18 * 3
    assert flat[0:3] == [0, 0, 0]  # nose missing
    assert flat[3:6] == [5, 6, 0.8]
    assert rec["people"][0]["person_id"] == [3]
    assert rec["people"][0]["face_keypoints_2d"] == []


def test_coco_records_use_coco17_order():
    p = person({"l_eye": (1, 2), "r_ankle": (3, 4)})
    (rec,) = coco_records(frame(p), image_id=785)
    assert rec["image_id"] == 785 and rec["category_id"] == 1 and len(rec["keypoints"]) == 51
    assert rec["keypoints"][3:6] == [1, 2, 0.8]  # COCO index 1 = left_eye
    assert rec["keypoints"][48:51] == [3, 4, 0.8]  # COCO index 16 = right_ankle
    assert rec["keypoints"][0:3] == [0, 0, 0]


def test_a_whole_person_outranks_a_more_confident_fragment_in_coco_results():
    from posecli.skeleton import COCO18

    whole = person({n: (10 + i, 20 + i) for i, n in enumerate(COCO18.parts)}, score=0.6)  # neck too
    fragment = person({"nose": (1, 2), "l_eye": (3, 4), "r_eye": (5, 6)}, score=0.9)
    recs = coco_records(frame(whole, fragment), image_id=1)
    assert recs[0]["score"] == 0.6  # all 17 found: the mean part score itself
    assert recs[1]["score"] == pytest.approx(0.9 * 3 / 8, abs=1e-4)  # 3 keypoints: 3/8 of its mean
    half = person({n: (1, 1) for n in COCO18.parts[:9]}, score=0.7)  # neck + 8 COCO keypoints
    assert coco_records(frame(half), image_id=1)[0]["score"] == 0.7  # 8 of 17 found: its own rank
    assert recs[0]["score"] > recs[1]["score"]
    neck_only = person({"neck": (1, 1)}, score=0.9)  # a part COCO has no keypoint for
    assert coco_records(frame(neck_only), image_id=1)[0]["score"] == 0.0


def test_file_names_and_image_ids():
    assert openpose_filename("dir/photo 1.jpg") == "photo 1_keypoints.json"
    assert openpose_filename("clip.mp4", 12) == "clip_000000000012_keypoints.json"
    assert coco_image_id("000000000785.jpg", 9) == 785
    assert coco_image_id("beach.jpg", 9) == 9


def test_atomic_file_keeps_the_old_file_until_commit(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    f = AtomicFile(target)
    f.write("new")
    assert target.read_text() == "old"
    f.commit()
    assert target.read_text() == "new"
    assert os.listdir(tmp_path) == ["out.json"]


def test_atomic_file_discards_on_error(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with AtomicFile(target) as f:
            f.write("partial")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.json"]


def test_atomic_file_in_missing_directory_is_an_output_error(tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        AtomicFile(tmp_path / "nope" / "out.json")


def test_json_stream_is_valid_complete_and_partial(tmp_path):
    path = tmp_path / "s.json"
    s = JsonStream(path, {"version": "x"}, key="frames")
    for i in range(3):
        s.add({"i": i})
    s.close()
    doc = json.loads(path.read_text())
    assert doc == {"version": "x", "frames": [{"i": 0}, {"i": 1}, {"i": 2}], "complete": True}

    s = JsonStream(path, {"version": "x"}, key="frames")
    s.add({"i": 0})
    s.close(complete=False)
    assert json.loads(path.read_text())["complete"] is False

    s = JsonStream(tmp_path / "gone.json", None)
    s.add(1)
    s.close(complete=False, keep_partial=False)
    assert not (tmp_path / "gone.json").exists()


def test_result_writer_formats(tmp_path):
    p = person({"nose": (1, 2)})
    w = ResultWriter("posecli", tmp_path / "a.json", model="m")
    w.add(frame(p))
    w.close()
    doc = json.loads((tmp_path / "a.json").read_text())
    assert doc["version"] == "posecli/1" and doc["model"] == "m" and doc["complete"] is True
    assert doc["images"][0]["people"][0]["keypoints"]["nose"] == [1, 2, 0.8]

    w = ResultWriter("coco", tmp_path / "c.json")
    w.add(frame(p, source="000000000042.jpg"))
    w.close()
    assert json.loads((tmp_path / "c.json").read_text())[0]["image_id"] == 42

    w = ResultWriter("openpose", tmp_path / "op", per_file_dir=True)
    w.add(frame(p, source="clip.mp4", index=7))
    w.close()
    assert (tmp_path / "op" / "clip_000000000007_keypoints.json").is_file()


def test_tracked_people_without_a_confirmed_track_get_a_null_id():
    """A tracked frame writes every person: confirmed ones with their id, the others with
    "id": null (OpenPose person_id -1); an untracked image has no id key at all."""
    from dataclasses import replace

    f = frame(person({"neck": (5, 6)}, track_id=2), person({"neck": (50, 60)}))
    tracked = replace(f, extra={"tracked": True})
    assert [p["id"] for p in frame_record(tracked)["people"]] == [2, None]
    assert [p["person_id"] for p in openpose_record(tracked)["people"]] == [[2], [-1]]
    assert "id" not in frame_record(frame(person({"neck": (5, 6)})))["people"][0]


def test_the_person_score_is_one_number_in_every_format_that_has_one(tmp_path):
    """The parser's score (OpenPose's, up to about 2) goes unchanged into the posecli format and
    back through its reader; the COCO format ranks by it times found / 8 where fewer than 8 of
    COCO's 17 keypoints were found; OpenPose 1.3 files have none, and reading one gives the mean
    keypoint score (docs/cli.md)."""
    from posecli.formats.readers import load_openpose_json, load_posecli_json

    p = person({"nose": (10, 20), "neck": (12, 40), "r_hip": (5, 90)}, score=1.7211, kp_score=0.6)
    f = frame(p)
    for fmt in ("posecli", "coco", "openpose"):
        w = ResultWriter(fmt, tmp_path / f"{fmt}.json", model="m", skeleton=p.skeleton)
        w.add(f)
        w.close()
    assert json.loads((tmp_path / "posecli.json").read_text())["images"][0]["people"][0]["score"] == 1.7211
    assert json.loads((tmp_path / "coco.json").read_text())[0]["score"] == round(1.7211 * 2 / 8, 4)
    assert load_posecli_json(tmp_path / "posecli.json")[0].people[0].score == 1.7211
    assert load_openpose_json(tmp_path / "openpose.json").people[0].score == pytest.approx(0.6)
