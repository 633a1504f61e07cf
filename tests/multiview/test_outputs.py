"""3D outputs: marker names as Pose2Sim spells them, the TRC's person and gaps, all-or-nothing writes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from posecli.errors import OutputError
from posecli.multiview.outputs import format_of, marker_name, trc_track, write_outputs
from posecli.multiview.reconstruct import Frame3D, Person3D
from posecli.skeleton import COCO18
from tests.multiview.scenes import skeleton_3d


def person(pid, xyz, n_cams=2):
    return Person3D(pid, xyz, np.full(18, 3.0), np.ones((n_cams, 18), bool), {0: 0, 1: 0})


@pytest.mark.parametrize("part, name", [("nose", "Nose"), ("r_shoulder", "RShoulder"), ("l_big_toe", "LBigToe"),
                                        ("mid_hip", "Hip"), ("l_ear", "LEar")])
def test_marker_names_are_pose2sims(part, name):
    assert marker_name(part) == name


def test_trc_keeps_the_person_seen_most_and_fills_its_gaps():
    a = skeleton_3d()
    frames = []
    for t in range(6):
        people = [person(7, a + [0.1 * t, 0, 0])]
        if t in (1, 2):
            people.append(person(3, a))  # someone else, twice
        if t == 3:
            people = []  # the main person missing in one frame
        frames.append(Frame3D(t + 10, t / 30, people))
    frames.append(Frame3D(16, 6 / 30, []))  # after its last frame
    span, xyz = trc_track(frames, 7, 18)
    assert [f.index for f in span] == [10, 11, 12, 13, 14, 15]
    np.testing.assert_allclose(xyz[3], a + [0.3, 0, 0])  # interpolated


def test_outputs_appear_together_or_not_at_all(tmp_path):
    frames = [Frame3D(0, 0.0, [person(0, skeleton_3d())])]
    with pytest.raises(OutputError):
        write_outputs([tmp_path / "a.json", tmp_path / "missing" / "b.csv"], frames, COCO18, ["c1", "c2"], 30.0)
    assert list(tmp_path.iterdir()) == []
    write_outputs([tmp_path / "a.json"], frames, COCO18, ["c1", "c2"], 30.0)
    doc = json.loads((tmp_path / "a.json").read_text())
    assert doc["frames"][0]["people"][0]["keypoints"]["nose"][3] == 3.0
    with pytest.raises(OutputError, match="unknown 3D output type '.c3d'"):
        format_of("x.c3d")
