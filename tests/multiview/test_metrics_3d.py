"""bench/metrics_3d.py: the 3D figures the bench reports, checked against OpenCV and known answers."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from bench import metrics_3d as m

RNG = np.random.default_rng(27)


def _camera(name="cam", rvec=(0.1, -0.4, 0.05), t=(0.1, -0.2, 4.0), dist=(-0.05, 0.01, 0.001, -0.002)):
    K = np.array([[1600.0, 0, 540], [0, 1610.0, 960], [0, 0, 1]])
    return m.Camera(name, (1088, 1920), K, np.array(dist), m.rodrigues(rvec), np.array(t))


def _standing_person(frames: int) -> np.ndarray:
    """(F, 18, 3) a person near the origin, Z up, limbs of fixed length, swaying."""
    base = np.zeros((18, 3))
    pos = {"nose": (0, 0.05, 1.65), "neck": (0, 0, 1.45), "r_shoulder": (-0.18, 0, 1.43),
           "r_elbow": (-0.2, 0, 1.15), "r_wrist": (-0.21, 0.05, 0.9), "l_shoulder": (0.18, 0, 1.43),
           "l_elbow": (0.2, 0, 1.15), "l_wrist": (0.21, 0.05, 0.9), "r_hip": (-0.1, 0, 0.95),
           "r_knee": (-0.1, 0.03, 0.52), "r_ankle": (-0.1, 0, 0.1), "l_hip": (0.1, 0, 0.95),
           "l_knee": (0.1, 0.03, 0.52), "l_ankle": (0.1, 0, 0.1), "r_eye": (-0.03, 0.08, 1.68),
           "l_eye": (0.03, 0.08, 1.68), "r_ear": (-0.07, 0.02, 1.66), "l_ear": (0.07, 0.02, 1.66)}
    for name, xyz in pos.items():
        base[m.COCO18.index(name)] = xyz
    shift = np.stack([0.3 * np.sin(np.arange(frames) / 10), np.zeros(frames), np.zeros(frames)], axis=1)
    return base[None] + shift[:, None]


def test_rodrigues_matches_opencv_both_ways():
    for rvec in ([0.0, 0.0, 0.0], [0.3, -1.2, 0.4], [1.688, 1.048, -0.42], [np.pi, 0, 0], [0, 2.9, 0.5]):
        R = m.rodrigues(rvec)
        assert np.allclose(R, cv2.Rodrigues(np.array(rvec, float))[0], atol=1e-9)
        assert np.allclose(m.rodrigues(m._rvec(R)), R, atol=1e-6)


def test_project_matches_opencv_with_distortion():
    cam = _camera()
    xyz = RNG.uniform([-1, -1, 0], [1, 1, 2], (50, 3))
    ours = m.project(cam, xyz)
    ref, _ = cv2.projectPoints(xyz, cv2.Rodrigues(cam.R)[0], cam.t, cam.K, cam.dist)
    assert np.allclose(ours, ref[:, 0], atol=1e-6)
    assert np.isnan(m.project(cam, np.array([[np.nan, 0, 0]]))).all()


def test_project_puts_points_behind_the_camera_to_nan():
    cam = _camera(rvec=(0, 0, 0), t=(0, 0, 0))
    assert np.isnan(m.project(cam, np.array([[0.0, 0.0, -1.0]]))).all()


def test_calibration_written_and_read_back(tmp_path, shared_dir):
    demo = shared_dir / "data" / "multiview-single" / "calibration" / "Calib.toml"
    if not demo.is_file():
        pytest.skip("the shared multi-camera demo is missing")
    cams = m.read_cameras(demo)
    assert [c.name for c in cams] == ["cam01", "cam02", "cam03", "cam04"]
    m.write_cameras(cams[1:], tmp_path / "three.toml")
    back = m.read_cameras(tmp_path / "three.toml")
    assert [c.name for c in back] == ["cam02", "cam03", "cam04"]
    for a, b in zip(cams[1:], back):
        assert np.allclose(a.R, b.R, atol=1e-9) and np.allclose(a.t, b.t) and np.allclose(a.K, b.K)


def test_limbs_of_a_rigid_person_are_constant():
    limbs = m.limb_consistency(_standing_person(60))
    assert limbs["iqr_over_median"] == pytest.approx(0.0, abs=1e-9)
    assert limbs["off_20pct"] == 0.0
    assert [s["frames"] for s in limbs["segments"]] == [60] * 8


def test_limbs_count_segment_frames_off_their_median():
    xyz = _standing_person(100)
    wrist = m.COCO18.index("r_wrist")
    elbow = m.COCO18.index("r_elbow")
    xyz[:10, wrist] = xyz[:10, elbow] + 1.5 * (xyz[:10, wrist] - xyz[:10, elbow])  # forearm 50% long
    limbs = m.limb_consistency(xyz)
    forearm = next(s for s in limbs["segments"] if s["segment"] == "r_forearm")
    assert forearm["off_20pct"] == pytest.approx(0.10)
    assert limbs["off_20pct"] == pytest.approx(10 / 800)  # pooled over the 8 segments' frames


def test_limbs_ignore_missing_frames_and_coverage_counts_them():
    xyz = _standing_person(40)
    xyz[:4, m.COCO18.index("l_knee")] = np.nan
    limbs = m.limb_consistency(xyz)
    thigh = next(s for s in limbs["segments"] if s["segment"] == "l_thigh")
    assert thigh["frames"] == 36
    assert m.coverage(xyz) == pytest.approx(0.9)


def test_reprojection_is_zero_on_the_own_2d_and_picks_the_right_person():
    xyz = _standing_person(20)
    cams = [_camera("a"), _camera("b", rvec=(0.2, 1.3, 0.0), t=(-0.3, 0.1, 5.0))]
    people = []
    for cam in cams:
        own = np.concatenate([m.project(cam, xyz), np.full((20, 18, 1), 0.9)], axis=-1)
        other = own.copy()
        other[..., 0] += 300  # a second person beside the subject
        people.append(np.stack([other, own], axis=1))  # the subject is not first
    out = m.reprojection(xyz, cams, people)
    assert out["median_px"] == pytest.approx(0.0, abs=1e-6)
    assert out["points"] == 2 * 20 * 18


def test_reprojection_skips_low_confidence_and_measures_offsets():
    xyz = _standing_person(10)
    cam = _camera()
    own = np.concatenate([m.project(cam, xyz), np.full((10, 18, 1), 0.9)], axis=-1)
    own[..., 0] += 5.0  # the 2D 5 px to the right
    own[:, :4, 2] = 0.2  # below 0.3: not compared
    out = m.reprojection(xyz, [cam], [own[:, None]])
    assert out["median_px"] == pytest.approx(5.0)
    assert out["points"] == 10 * 14


def test_trc_axes_and_names_read_back(tmp_path):
    """A TRC in Pose2Sim's layout (Y up: X, Y, Z = world y, z, x) reads back as world points."""
    xyz = _standing_person(3)
    names = ["Nose", "RShoulder", "LAnkle"]
    idx = [m.COCO18.index(m.TRC_NAMES[n]) for n in names]
    lines = ["PathFileType\t4\t(X/Y/Z)\tt.trc",
             "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\tOrigDataStartFrame\tOrigNumFrames",
             "60\t60\t3\t3\tm\t60\t1\t3", "Frame#\tTime\t" + "\t\t\t".join(names) + "\t\t",
             "\t\t" + "\t".join(f"X{i}\tY{i}\tZ{i}" for i in range(1, 4))]
    for f in range(3):
        cells = []
        for k in idx:
            x, y, z = xyz[f, k]
            cells += [y, z, x]
        if f == 1:
            cells[-3:] = ["NaN"] * 3
        lines.append(f"{f + 1}\t{f / 60:.6f}\t" + "\t".join(str(c) for c in cells))
    (tmp_path / "t.trc").write_text("\n".join(lines) + "\n")
    got = m.trc_keypoints(tmp_path / "t.trc")
    assert np.allclose(got[:, idx[:2]], xyz[:, idx[:2]])
    assert np.isnan(got[1, idx[2]]).all() and np.allclose(got[[0, 2], idx[2]], xyz[[0, 2], idx[2]])
    assert np.isnan(got[:, m.COCO18.index("neck")]).all()


def test_posecli_3d_json_takes_the_person_seen_most(tmp_path):
    frames = []
    for f in range(5):
        people = [{"id": 7, "keypoints": {"nose": [0.0, 0.0, float(f), 3.0], "neck": None}}]
        if f < 2:
            people.append({"id": 1, "keypoints": {"nose": [9.0, 9.0, 9.0, 1.0]}})
        frames.append({"frame": f, "people": people})
    (tmp_path / "p.json").write_text(json.dumps({"frames": frames}))
    xyz, err = m.posecli_3d_keypoints(tmp_path / "p.json")
    assert xyz[:, 0, 2].tolist() == [0, 1, 2, 3, 4] and np.isnan(xyz[:, 1]).all()
    assert err[:, 0].tolist() == [3.0] * 5
