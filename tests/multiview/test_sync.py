"""Offsets estimated from the 2D: a camera started early or late is found, and reported."""

from __future__ import annotations

import json

import numpy as np
import pytest

from posecli.multiview.calibration import write_toml
from posecli.multiview.sync import estimate_offsets
from posecli.skeleton import COCO18
from posecli.types import Person
from tests.helpers import run
from tests.multiview.scenes import ring, walking_scene, write_2d_results


def views_of(cams, xyz, lead):
    """Per camera, frames of one walking person's 2D; ``lead[c]`` frames earlier for camera c."""
    out = []
    for c, cam in enumerate(cams):
        first = lead.get(c, 0)
        frames = [[] for _ in range(first)]
        for points in xyz:
            frames.append([Person(cam.project(points), np.full(18, 0.9), 1.0, COCO18)])
        out.append(frames)
    return out


@pytest.mark.parametrize("lead, expected", [({}, (0, 0, 0, 0)), ({2: 3}, (0, 0, 3, 0)),
                                            ({0: 5, 3: 2}, (5, 0, 0, 2))])
def test_the_lag_of_each_camera_is_found(lead, expected):
    cams = ring(4)
    rng = np.random.default_rng(1)
    xyz = walking_scene(frames=40)[:, 0] + rng.normal(0, 0.005, (40, 18, 3))
    found = estimate_offsets(cams, views_of(cams, xyz, lead), 18, max_lag=10)
    assert found.frames == expected
    assert max(found.error_px) < 2.0


def test_cli_reports_the_estimate(tmp_path):
    cams = ring(4)
    write_toml(cams, tmp_path / "rig.toml")
    inputs = write_2d_results(tmp_path, cams, walking_scene(frames=40), lead={1: 4})
    out = tmp_path / "p.json"
    result = run("3d", "--from-2d", *inputs, "-c", tmp_path / "rig.toml", "-o", out, "--offsets", "auto")
    assert result.exit_code == 0, result.output
    assert "offsets estimated from the 2D: 0,4,0,0" in result.output
    doc = json.loads(out.read_text())
    assert doc["offsets"] == [0, 4, 0, 0] and doc["offsets_estimated"] is True and len(doc["frames"]) == 40
