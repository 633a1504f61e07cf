"""Pose2Sim from posecli's 2D: COCO-17 OpenPose JSON of four cameras -> person association,
triangulation, filtering, OpenSim scaling and inverse kinematics -> joint angles (.mot)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.consumers import POSE2SIM_PROJECT, POSE2SIM_RUN, run_consumer
from tests.helpers import consumer_python, invoke

STEPS = ("personAssociation", "triangulation", "filtering", "kinematics")
CAMERAS = 4
FRAMES = 100


def _coco17_2d(request, store: Path, cams: list[Path]) -> Path:
    """posecli's COCO-17 OpenPose JSON per camera, kept in pytest's cache between runs (keyed by the
    model store's files): one folder per camera, complete ones only."""
    key = "-".join(f"{p.name}{p.stat().st_size}{int(p.stat().st_mtime)}" for p in sorted(store.rglob("*.onnx")))
    cache = request.config.cache.mkdir(f"posecli-multiview-coco17-{hashlib.sha1(key.encode()).hexdigest()[:10]}")
    for cam in cams:
        folder = cache / cam.stem
        if folder.is_dir() and len(list(folder.glob("*_keypoints.json"))) == FRAMES:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        invoke("video", cam, "--format", "openpose", "--layout", "coco17", "--out", f"{folder}/", "-q")
    return cache


def _read_mot(path) -> tuple[list[str], np.ndarray]:
    lines = path.read_text().splitlines()
    start = lines.index("endheader") + 1
    names = lines[start].split("\t")
    return names, np.array([[float(v) for v in line.split()] for line in lines[start + 1:] if line.strip()])


@pytest.mark.slow
def test_pose2sim_joint_angles_from_posecli_coco17(tmp_path, request, default_model, model_store, shared_dir):
    consumer_python()  # skips, saying how, without the consumers' venv
    data = shared_dir / "data" / "multiview-single"
    cams = sorted((data / "videos").glob("cam0*.mp4"))
    assert len(cams) == CAMERAS
    poses = _coco17_2d(request, model_store, cams)
    project = tmp_path / "project"
    run_consumer(POSE2SIM_PROJECT, project, data / "calibration" / "Calib.toml", poses, "COCO_17")
    run_consumer(POSE2SIM_RUN, project, *STEPS, timeout=900)
    mots = list((project / "kinematics").glob("*.mot"))
    assert len(mots) == 1, list((project / "kinematics").iterdir())
    names, values = _read_mot(mots[0])
    for angle in ("hip_flexion_r", "knee_angle_r", "knee_angle_l", "arm_flex_r", "elbow_flex_l"):
        assert angle in names
    assert values.shape[0] >= FRAMES - 5 and np.isfinite(values).all()
    knees = values[:, [names.index("knee_angle_r"), names.index("knee_angle_l")]]
    assert (knees > -20).all() and (knees < 160).all()  # a person's knees, in degrees
