"""Every script in examples/ runs here on real photos or generated media: an example that
breaks fails the tests."""

import csv
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from tests.helpers import REPO

EXAMPLES = REPO / "examples"


def run_example(name, *args, timeout=300):
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_every_example_is_covered():
    covered = {"folder_to_csv.py", "count_people.py", "draw_arms.py", "compare_models.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == covered


def test_folder_to_csv(mini_set, default_model, tmp_path):
    out = tmp_path / "poses.csv"
    run_example("folder_to_csv.py", mini_set["dir"], out)
    rows = list(csv.DictReader(out.open()))
    files = {r["file"] for r in rows}
    assert files == {p.name for p in mini_set["images"]}
    skier = [r for r in rows if r["file"] == "000000000785.jpg"]
    assert {r["person"] for r in skier} == {"0"}  # one skier
    assert all(0 <= float(r["x"]) < 640 and 0 <= float(r["y"]) < 425 for r in skier)


def test_draw_arms_changes_only_pixels_near_the_arms(mini_set, default_model, tmp_path):
    out = tmp_path / "arms.png"
    photo = mini_set["dir"] / "000000000785.jpg"
    stdout = run_example("draw_arms.py", photo, out)
    assert stdout.startswith("1 people")
    before, after = cv2.imread(str(photo)), cv2.imread(str(out))
    changed = np.argwhere(np.abs(after.astype(int) - before).sum(axis=2) > 40)
    assert len(changed) > 100
    # the skier's legs (lower half of her box, y > 250) stay untouched
    assert (changed[:, 0] > 250).mean() < 0.01


def test_count_people_on_a_video(mini_set, default_model, tmp_path):
    """A 12-frame video panning across the skier photo: one person in every frame, one id."""
    photo = cv2.imread(str(mini_set["dir"] / "000000000785.jpg"))
    clip = tmp_path / "pan.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (480, 400))
    for i in range(12):
        writer.write(photo[10:410, 100 + 4 * i: 580 + 4 * i])
    writer.release()
    lines = run_example("count_people.py", clip).strip().splitlines()
    assert lines[0] == "frame,time_s,people"
    counts = [int(line.split(",")[2]) for line in lines[1:-1]]
    assert len(counts) == 12 and counts == [1] * 12
    assert lines[-1] == "distinct people: 1"


def test_compare_models(mini_set, default_model, default_model_int8):
    lines = run_example("compare_models.py", mini_set["annotations"], mini_set["dir"]).splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert set(rows) == {"fp32", "int8"}
    ap_fp32, ap_int8 = float(rows["fp32"][0]), float(rows["int8"][0])
    assert ap_fp32 > 0.5 and abs(ap_fp32 - ap_int8) < 0.05
