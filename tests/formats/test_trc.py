"""Pixel TRC per tracked person: Sports2D's own reader loads every frame and marker where posecli put it."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from posecli.angles import marker_name, markers
from posecli.formats.trc import TrcWriter, trc_name
from posecli.skeleton import COCO18

from tests.consumers import SPORTS2D_READ_TRC, run_consumer
from tests.helpers import frame, person
from tests.helpers import fast, invoke, photo_clip, run

MISSING = -1e9  # how the reader script marks NaN
PART_OF = {marker_name(p): k for k, p in enumerate(COCO18.parts)}


def _scene(n: int = 6):
    """Two tracked people over n frames: id 3 everywhere, id 7 from frame 2 on, its l_wrist never
    found; a person without an id (not yet confirmed) is not written."""
    frames = []
    for i in range(n):
        people = [person({name: (10 * k + i, 100 + k + 0.5 * i) for k, name in enumerate(COCO18.parts)},
                         track_id=3)]
        if i >= 2:
            people.append(person({name: (500 + k, 50 + i) for k, name in enumerate(COCO18.parts)
                                  if name != "l_wrist"}, track_id=7))
        people.append(person({"nose": (1, 1)}))
        frames.append(frame(*people, index=10 + i, timestamp=(10 + i) / 50))
    return frames


@pytest.mark.slow  # runs Sports2D in the consumers' venv
def test_trc_files_per_person_read_by_sports2d(tmp_path):
    writer = TrcWriter(tmp_path, "clip", COCO18)
    frames = _scene()
    for f in frames:
        writer.add(f)
    paths = writer.close()
    assert [p.name for p in paths] == ["clip_px_person03.trc", "clip_px_person07.trc"]
    names = markers(COCO18)
    for path, track in zip(paths, (3, 7)):
        got = run_consumer(SPORTS2D_READ_TRC, path)
        assert got["markers"] == names
        assert got["frames"] == [f.index for f in frames]
        assert got["times"] == pytest.approx([f.timestamp for f in frames])
        xy = np.array(got["xy"])  # (frames, markers, 2)
        assert xy.shape == (len(frames), len(names), 2)
        for row, f in enumerate(frames):
            p = next((p for p in f.people if p.track_id == track), None)
            for m, name in enumerate(names):
                k = PART_OF.get(name)  # None: Hip, made from the two hips
                if p is None or (k is not None and not p.visible[k]):
                    assert tuple(xy[row, m]) == (MISSING, MISSING), (row, name)
                elif k is None:
                    hips = p.xy[[COCO18.index("r_hip"), COCO18.index("l_hip")]].mean(axis=0)
                    assert xy[row, m] == pytest.approx(hips, abs=0.01)
                else:
                    assert xy[row, m] == pytest.approx(p.xy[k], abs=0.01), (row, name)


def test_trc_header_rate_and_units(tmp_path):
    writer = TrcWriter(tmp_path, "clip", COCO18)
    for f in _scene(4):
        writer.add(f)
    text = writer.close()[0].read_text().splitlines()
    assert text[0].split("\t")[:3] == ["PathFileType", "4", "(X/Y/Z)"]
    rate, _, frames, count, units = text[2].split("\t")[:5]
    assert float(rate) == pytest.approx(50) and frames == "4" and count == str(len(markers(COCO18)))
    assert units == "px"


def test_nobody_tracked_writes_no_file(tmp_path):
    writer = TrcWriter(tmp_path / "trc", "clip", COCO18)
    writer.add(frame(person({"nose": (1, 2)})))
    assert writer.close() == [] and not (tmp_path / "trc").exists()


def test_trc_name_has_px_for_sports2d():
    assert "_px" in trc_name("x", 1) and trc_name("x", 123) == "x_px_person123.trc"


def test_cli_trc_needs_tracking_and_angles_need_csv(tmp_path, tiny_model):
    clip = photo_clip(tmp_path / "c.mp4", photo_path(tmp_path), 3)
    r = run("video", clip, "--trc", tmp_path / "trc", "--no-track", *fast(tiny_model))
    assert r.exit_code == 2 and "--no-track" in r.output
    r = run("video", clip, "--angles", *fast(tiny_model))
    assert r.exit_code == 2 and "--format csv" in r.output
    r = run("video", clip, "--layout", "body25", "--out", tmp_path / "p.json", *fast(tiny_model))
    assert r.exit_code == 2 and "--format openpose" in r.output
    r = run("image", photo_path(tmp_path), "--angles", "--format", "coco", *fast(tiny_model))
    assert r.exit_code == 2 and "--format csv" in r.output


def test_cli_trc_into_a_file_is_an_error(tmp_path, tiny_model):
    clip = photo_clip(tmp_path / "c.mp4", photo_path(tmp_path), 3)
    (tmp_path / "f").write_text("x")
    r = run("video", clip, "--trc", tmp_path / "f", *fast(tiny_model))
    assert r.exit_code == 1 and r.output.startswith("Error:") and "Traceback" not in r.output


def test_cli_trc_on_the_out_file_is_a_usage_error(tmp_path, tiny_model):
    clip = photo_clip(tmp_path / "c.mp4", photo_path(tmp_path), 3)
    r = run("video", clip, "--trc", tmp_path / "p.json", "--out", tmp_path / "p.json", *fast(tiny_model))
    assert r.exit_code == 2 and not (tmp_path / "p.json").exists()
    r = run("video", clip, "--trc", clip, *fast(tiny_model))
    assert r.exit_code == 2 and clip.is_file()


def photo_path(tmp_path):
    from tests.helpers import photo

    p = tmp_path / "p.jpg"
    return p if p.exists() else photo(p, size_hw=(224, 320))


@pytest.mark.slow
def test_video_trc_and_angles_match_the_json(tmp_path, default_model, shared_dir):
    """The real model on a real clip: Sports2D reads each person's TRC where the JSON has them, and
    the CSV's angles are posecli.angles of the same people."""
    clip = shared_dir / "data" / "multiview-single" / "videos" / "cam01.mp4"
    args = [clip, "--max-frames", "8", "--device", "cpu"]
    invoke("video", *args, "--out", tmp_path / "p.json", "--trc", tmp_path / "trc")
    invoke("video", *args, "--format", "csv", "--angles", "--out", tmp_path / "a.csv")
    doc = json.loads((tmp_path / "p.json").read_text())
    files = sorted((tmp_path / "trc").glob("*.trc"))
    ids = sorted({p["id"] for f in doc["frames"] for p in f["people"] if p["id"] is not None})
    assert [f.name for f in files] == [f"cam01_px_person{i:02d}.trc" for i in ids] and files
    got = run_consumer(SPORTS2D_READ_TRC, files[0])
    assert len(got["frames"]) == len(doc["frames"]) == 8
    for row, f in enumerate(doc["frames"]):
        assert got["times"][row] == pytest.approx(f["time"], abs=1e-4)
        p = next((p for p in f["people"] if p["id"] == ids[0]), None)
        for m, part in enumerate(COCO18.parts):
            kp = None if p is None else p["keypoints"][part]
            want = (MISSING, MISSING) if kp is None else kp[:2]
            assert got["xy"][row][m] == pytest.approx(want, abs=0.01), (row, part)
    import csv

    with open(tmp_path / "a.csv") as f:
        rows = list(csv.DictReader(f))
    angles = [r for r in rows if r["keypoint"] == "right knee"]
    assert len(angles) == sum(len(f["people"]) for f in doc["frames"]) > 0
    assert all(r["angle"] == "" or -180 <= float(r["angle"]) < 180 for r in angles)
    assert any(r["angle"] != "" and not math.isnan(float(r["angle"])) for r in angles)


SPORTS2D_CLI = """
import sys
from Sports2D.Sports2D import main
sys.argv = ["sports2d"] + sys.argv[1:]
main()
print("{}")
"""


@pytest.mark.slow
def test_sports2d_runs_on_posecli_trc_and_finds_posecli_angles(tmp_path, default_model, shared_dir):
    """Sports2D's whole pipeline, fed posecli's TRC (its --load_trc_px), computes the same angles as
    posecli's CSV; only its time-series post-processing (the first frame filled from the next,
    angles turned by 180 degrees for continuity) differs, on a few values."""
    import csv

    clip = shared_dir / "data" / "multiview-single" / "videos" / "cam01.mp4"
    invoke("video", clip, "--max-people", "1", "--device", "cpu", "--format", "csv", "--angles",
           "--out", tmp_path / "a.csv", "--trc", tmp_path / "trc")
    trc = tmp_path / "trc" / "cam01_px_person00.trc"
    run_consumer(SPORTS2D_CLI, "--video_input", clip, "--load_trc_px", trc, "--nb_persons_to_detect", "1",
                 "--person_ordering_method", "greatest_displacement", "--show_realtime_results", "false",
                 "--show_graphs", "false", "--save_graphs", "false", "--save_vid", "false", "--save_img", "false",
                 "--to_meters", "false", "--visible_side", "right", "--do_ik", "false", "--filter", "false",
                 "--reject_outliers", "false", "--result_dir", tmp_path / "s2d", timeout=600)
    (mot,) = (tmp_path / "s2d").rglob("*_angles_person00.mot")
    lines = mot.read_text().splitlines()
    start = lines.index("endheader") + 1
    names = lines[start].split("\t")[1:]
    theirs = [dict(zip(names, line.split("\t")[1:])) for line in lines[start + 1:]]
    ours: dict = {}
    with open(tmp_path / "a.csv") as f:
        for row in csv.DictReader(f):
            if row["angle"] and row["id"] == "0":
                ours.setdefault(int(row["frame"]), {})[row["keypoint"]] = float(row["angle"])
    assert len(theirs) == 100 and set(names) == {k for angles in ours.values() for k in angles}
    pairs = [(float(v), ours[f][k]) for f, row in enumerate(theirs) for k, v in row.items()
             if v and k in ours.get(f, {})]
    same = [abs((a - b + 90) % 180 - 90) < 0.05 for a, b in pairs]
    assert len(pairs) > 1000 and sum(same) >= 0.95 * len(pairs)
