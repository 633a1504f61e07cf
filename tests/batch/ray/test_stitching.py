"""Stitching a cut video: ids across the ranges (the tracker's OKS and assignment), part
files, the joined result."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from posecli.batch.local import Job
from posecli.batch.ray.stitching import RangeResult, join_ranges, join_video, read_part, write_part
from posecli.errors import OutputError
from posecli.skeleton import COCO18
from posecli.video.run import VideoOptions
from posecli.video.track import TrackerConfig

from tests.helpers import frame, person


def _p(x: float, track_id: int):
    """A standing person around x, with an id."""
    return person({"nose": (x, 50), "neck": (x, 80), "r_hip": (x - 10, 150), "l_hip": (x + 10, 150),
                   "r_knee": (x - 10, 200), "l_knee": (x + 10, 200)}, track_id=track_id)


def _range(first, frames, warm, stopped=False):
    return RangeResult(first, frames, warm, stopped, "stopped at frame 8 of 20: ..." if stopped else None,
                       {"file": "v.mp4"}, "tiny", COCO18)


def test_join_continues_ids_across_a_cut_and_numbers_new_people_in_order():
    # Range A owns frames 0..5: P (id 0) throughout, Q (id 1) from frame 3.
    a = [frame(_p(100 + i, 0), *([_p(300 + i, 1)] if i >= 3 else []), index=i) for i in range(6)]
    # Range B warms up on frames 3..5 and owns 6..8; its own tracker numbered Q 0, P 1, and R 2 is new.
    b = [frame(_p(300 + i, 0), _p(100 + i, 1), *([_p(500, 2)] if i >= 7 else []), index=i)
         for i in range(3, 9)]
    out = list(join_ranges(iter([_range(0, a, 0), _range(6, b, 3)])))
    assert [f.index for f in out] == list(range(9))
    ids = [[p.track_id for p in f.people] for f in out]
    assert ids[:6] == [[0], [0], [0], [0, 1], [0, 1], [0, 1]]
    assert ids[6:] == [[1, 0], [1, 0, 2], [1, 0, 2]]  # Q keeps 1, P keeps 0, R gets the next id
    np.testing.assert_array_equal(out[7].people[0].xy, b[4].people[0].xy)  # only ids change


def test_a_range_that_stopped_early_ends_the_joined_video():
    a = [frame(_p(100, 0), index=i) for i in range(4)]
    b = [frame(_p(100, 0), index=i) for i in range(2, 5)]  # decoding failed after frame 4
    c = [frame(_p(100, 0), index=i) for i in range(6, 9)]
    joined = join_ranges(iter([_range(0, a, 0), _range(4, b, 2, stopped=True), _range(8, c, 2)]))
    got = []
    with pytest.raises(StopIteration) as end:
        while True:
            got.append(next(joined))
    assert [f.index for f in got] == [0, 1, 2, 3, 4] and end.value.value.stopped_early


def _small(x: float, track_id: int):
    """A person about 4 x 22 pixels (box area 88, far below the tracker's 32 x 32 floor)."""
    return person({"nose": (x, 50), "neck": (x, 55), "r_hip": (x - 2, 65), "l_hip": (x + 2, 65),
                   "r_knee": (x - 2, 72), "l_knee": (x + 2, 72)}, track_id=track_id)


def _parts(tmp_path: Path, dx: float) -> list[Path]:
    """Two ranges of a small person; the second run saw the overlap ``dx`` pixels off and
    numbered the person 5."""
    a = [frame(_small(100, 0), index=i) for i in range(4)]
    b = [frame(_small(100 + dx, 5), index=i) for i in range(2, 6)]
    paths = [tmp_path / ".v.json.part0.pkl", tmp_path / ".v.json.part1.pkl"]
    write_part(paths[0], _range(0, a, 0))
    write_part(paths[1], _range(4, b, 2))
    return paths


def _job(tmp_path: Path) -> Job:
    return Job(tmp_path / "v.mp4", "video", tmp_path / "v.json", None, Path("v.mp4"))


def _ids(result: Path) -> list[list[int]]:
    return [[p["id"] for p in f["people"]] for f in json.loads(result.read_text())["frames"]]


@pytest.mark.parametrize("min_area, same", [(TrackerConfig.min_area, True), (1.0, False)])
def test_ids_across_a_cut_use_the_trackers_person_scale_floor(tmp_path, min_area, same):
    # 3 pixels apart: OKS 0.76 at the tracker's 32 x 32 floor, 0.19 at the person's own size.
    options = VideoOptions(tracker=TrackerConfig(min_area=min_area))
    outcome = join_video(_job(tmp_path), _parts(tmp_path, 3.0), options)
    assert outcome.status == "done" and outcome.frames == 6
    assert _ids(tmp_path / "v.json") == [[0]] * 4 + ([[0]] * 2 if same else [[1]] * 2)


def test_a_damaged_part_file_is_an_output_error(tmp_path):
    parts = _parts(tmp_path, 0.0)
    data = parts[1].read_bytes()
    parts[1].write_bytes(data[: len(data) // 2])
    with pytest.raises(OutputError, match="part file is damaged") as err:
        read_part(parts[1])
    assert err.value.path == str(parts[1])
    with pytest.raises(OutputError):
        join_video(_job(tmp_path), parts)
    assert not (tmp_path / "v.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in parts)
