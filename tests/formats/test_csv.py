"""``--format csv``: long-form rows that read back to the native JSON's people and values."""

from __future__ import annotations

import csv
import json

import pytest

from posecli.formats.csv import CSV_COLUMNS, csv_rows, read_csv_frames
from posecli.formats.writers import ResultWriter

from tests.helpers import frame, person
from tests.helpers import fast, invoke, photo, photo_clip, write_video


def _same_people(native_frames: list[dict], csv_frames: list[dict]) -> None:
    """Every frame, person, keypoint and value of the native JSON is in the CSV, and nothing else."""
    assert len(csv_frames) == len(native_frames)
    for nat, got in zip(native_frames, csv_frames):
        assert got["file"] == nat["file"]
        assert got["frame"] == nat.get("frame") and got["time"] == nat.get("time")
        assert len(got["people"]) == len(nat["people"])
        for n, (a, b) in enumerate(zip(nat["people"], got["people"])):
            assert b["person"] == n and b["id"] == a.get("id") and b["score"] == a["score"]
            assert b["keypoints"] == a["keypoints"]  # same rounding; None for missing in both


def test_real_photos_round_trip_against_native_json(mini_set, default_model, tmp_path):
    pd = pytest.importorskip("pandas")
    photos = mini_set["images"]
    opts = ["-m", default_model, "--device", "cpu"]
    assert invoke("image", *photos, "--out", tmp_path / "p.json", *opts).exit_code == 0
    r = invoke("image", *photos, "--format", "csv", "--out", tmp_path / "p.csv", *opts)
    assert r.exit_code == 0, r.output
    native = json.loads((tmp_path / "p.json").read_text())["images"]
    _same_people(native, read_csv_frames(tmp_path / "p.csv"))
    people = sum(len(f["people"]) for f in native)
    assert people >= 8
    missing = sum(kp is None for f in native for p in f["people"] for kp in p["keypoints"].values())
    assert missing > 0  # the photos have people with hidden keypoints: they must read back empty

    df = pd.read_csv(tmp_path / "p.csv")  # no options
    assert tuple(df.columns) == CSV_COLUMNS
    assert len(df) == people * 18
    assert df["x"].isna().sum() == missing and df["score"].isna().sum() == missing
    assert not ((df["x"] == 0) & (df["y"] == 0)).any()  # missing is empty, never 0, 0
    assert df["frame"].isna().all() and df["id"].isna().all()  # photos: no frame, time or id


def test_generated_clip_round_trips_with_frames_times_and_ids(mini_set, default_model, tmp_path):
    clip = photo_clip(tmp_path / "walk.mp4", mini_set["images"][0], 4)
    opts = ["-m", default_model, "--device", "cpu", "--height", "160", "-q"]
    assert invoke("video", clip, "--out", tmp_path / "v.json", *opts).exit_code == 0
    r = invoke("video", clip, "--format", "csv", "--out", tmp_path / "v.csv", *opts)
    assert r.exit_code == 0, r.output
    native = json.loads((tmp_path / "v.json").read_text())["frames"]
    got = read_csv_frames(tmp_path / "v.csv")
    _same_people(native, got)
    assert [f["frame"] for f in got] == [0, 1, 2, 3]
    assert any(p["id"] is not None for f in got for p in f["people"])


def test_empty_frames_keep_one_row_each(tiny_model, tmp_path):
    clip = write_video(tmp_path / "grey.mp4", 5)
    out = tmp_path / "grey.csv"
    r = invoke("video", clip, "--format", "csv", "--out", out, "--step", "2", "-q", *fast(tiny_model))
    assert r.exit_code == 0, r.output
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["frame"] for r in rows] == ["0", "2", "4"]
    assert all(r["person"] == r["keypoint"] == r["x"] == "" for r in rows)


def test_missing_keypoints_and_odd_file_names(tmp_path):
    pd = pytest.importorskip("pandas")
    name = 'dir, with "quotes"/shot, 1\n".jpg'
    p = person({"nose": (10.123, 20.456), "neck": (11, 30)}, score=0.77, track_id=4)
    out = tmp_path / "odd.csv"
    writer = ResultWriter("csv", out)
    writer.add(frame(p, person({"neck": (1, 2)}), source=name, index=7, timestamp=0.7))
    writer.add(frame(source=name, index=8, timestamp=0.8))
    writer.close()
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == list(CSV_COLUMNS)
    assert {r[0] for r in rows[1:]} == {name}
    assert rows[1] == [name, "7", "0.7", "0", "4", "0.77", "nose", "10.12", "20.46", "0.8"]
    assert rows[3] == [name, "7", "0.7", "0", "4", "0.77", "r_shoulder", "", "", ""]
    assert len(rows) == 1 + 2 * 18 + 1 and rows[-1] == [name, "8", "0.8"] + [""] * 7
    df = pd.read_csv(out)
    assert (df["file"] == name).all() and df["x"].notna().sum() == 3


def test_csv_rows_of_a_frame_without_people():
    assert csv_rows(frame(source="a.jpg")) == [["a.jpg", "", ""] + [""] * 7]


def test_image_folder_output_and_batch_write_csv_files(tiny_model, tmp_path):
    a, b = photo(tmp_path / "a.jpg"), photo(tmp_path / "b.png", seed=1)
    r = invoke("image", a, b, "--format", "csv", "--out", f"{tmp_path / 'each'}/", *fast(tiny_model))
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "each").iterdir()) == ["a.csv", "b.csv"]
    src = tmp_path / "in"
    src.mkdir()
    photo(src / "x.jpg")
    write_video(src / "clip.mp4", 3)
    r = invoke("batch", src, "--out", tmp_path / "res", "--format", "csv", "-q", *fast(tiny_model))
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "res").iterdir()) == ["clip.csv", "x.csv"]
    assert [f["frame"] for f in read_csv_frames(tmp_path / "res" / "clip.csv")] == [0, 1, 2]
    again = invoke("batch", src, "--out", tmp_path / "res", "--format", "csv", *fast(tiny_model))
    assert "2 already done" in again.stderr  # resumable like the JSON formats
