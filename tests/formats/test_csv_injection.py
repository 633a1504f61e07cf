"""CSV formula injection (issue 26, case 6): text cells taken from file names or a model's
keypoint names never start a formula in a spreadsheet; numbers stay numbers. Files written
by posecli, read back with the csv module."""

from __future__ import annotations

import csv
import dataclasses

import numpy as np

from posecli.formats.csv import FORMULA_STARTS, read_csv_frames
from posecli.formats.writers import ResultWriter
from posecli.skeleton import COCO18
from posecli.types import Person
from tests.helpers import fast, frame, invoke, photo

HOSTILE = ["=HYPERLINK(\"http://x\")", "+1+2", "-2+3", "@SUM(A1)", "\tTAB", "\rCR", "'=quoted"]


def _rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _safe(cell: str) -> bool:
    return not cell.startswith(FORMULA_STARTS)


def test_file_names_that_look_like_formulas(tmp_path, tiny_model, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the file cell is the name as given: relative, starting with the formula
    names = [photo(tmp_path / f"{n}.jpg").name for n in ("=HYPERLINK(A1)", "+1+2", "-2+3", "@SUM(A1)", "\tx")]
    r = invoke("image", "--format", "csv", "--out", "p.csv", *fast(tiny_model), "--", *names)
    assert r.exit_code == 0, r.output
    cells = {row["file"] for row in _rows(tmp_path / "p.csv")}
    assert cells == {"'" + n for n in names}
    assert {f["file"] for f in read_csv_frames(tmp_path / "p.csv")} == set(names)  # read back as given


def test_keypoint_names_that_look_like_formulas_and_negative_numbers(tmp_path):
    parts = tuple(HOSTILE) + COCO18.parts[len(HOSTILE):]
    skeleton = dataclasses.replace(COCO18, name="hostile", parts=parts)
    xy = np.full((len(parts), 2), np.nan)
    xy[:len(HOSTILE)] = [(-3.25, -0.5)] * len(HOSTILE)  # a keypoint left of and above the image
    scores = np.where(np.isnan(xy[:, 0]), 0.0, 0.9)
    person = Person(xy, scores, 0.8, skeleton, None)
    out = tmp_path / "k.csv"
    writer = ResultWriter("csv", out, skeleton=skeleton)
    writer.add(frame(person, source="-rf.jpg", index=0, timestamp=0.0))
    writer.close()
    rows = _rows(out)
    assert all(_safe(row["file"]) and _safe(row["keypoint"]) for row in rows)
    named = rows[:len(HOSTILE)]
    assert [row["keypoint"] for row in named] == ["'" + n for n in HOSTILE]
    assert all((row["x"], row["y"]) == ("-3.25", "-0.5") for row in named)  # numbers, not quoted text
    back = read_csv_frames(out)[0]
    assert back["file"] == "-rf.jpg"
    assert back["people"][0]["keypoints"][HOSTILE[0]] == [-3.25, -0.5, 0.9]
    assert list(back["people"][0]["keypoints"])[:len(HOSTILE)] == HOSTILE
