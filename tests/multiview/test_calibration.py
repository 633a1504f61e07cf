"""Calibration: the shared demo's TOML, OpenPose XML files, the TOML writer, and bad files."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from posecli.errors import InputError
from posecli.multiview.calibration import (
    check_sizes,
    load_calibration,
    read_toml,
    with_sizes,
    write_toml,
)
from tests.conftest import SHARED
from tests.multiview.scenes import ring, skeleton_3d

DEMO = SHARED / "data" / "multiview-single" / "calibration"


def write_openpose_xml(cam, path: Path) -> None:
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    fs.write("CameraMatrix", np.hstack([cam.R, cam.t[:, None]]))
    fs.write("Intrinsics", cam.K)
    fs.write("Distortion", cam.dist.reshape(-1, 1))
    fs.release()


@pytest.mark.skipif(not (DEMO / "Calib.toml").exists(), reason="shared demo not here")
def test_demo_toml_reads_four_portrait_cameras():
    cams = read_toml(DEMO / "Calib.toml")
    assert [c.name for c in cams] == ["cam01", "cam02", "cam03", "cam04"]
    assert cams[0].size_wh == (1088, 1920)
    assert cams[0].K[0, 0] == pytest.approx(1681.244873046875)
    # the 1080x1920 videos are the same cameras (encoder padding); landscape is a rotation
    check_sizes(cams, [(1080, 1920)] * 4, ["a", "b", "c", "d"])
    with pytest.raises(InputError, match="rotated"):
        check_sizes(cams, [(1920, 1080)] * 4, ["a", "b", "c", "d"])
    with pytest.raises(InputError, match="4 cameras in the calibration for 3 videos"):
        check_sizes(cams, [(1080, 1920)] * 3, ["a", "b", "c"])


def test_toml_round_trip_keeps_projection(tmp_path):
    cams = ring(4, dist=[0.01, -0.02, 0.001, 0.0005, 0.0])
    write_toml(cams, tmp_path / "rig.toml")
    back = read_toml(tmp_path / "rig.toml")
    xyz = skeleton_3d()
    for a, b in zip(cams, back, strict=True):
        assert a.name == b.name and a.size_wh == b.size_wh
        np.testing.assert_allclose(a.project(xyz), b.project(xyz), atol=1e-6)


def test_openpose_xml_folder_and_files(tmp_path):
    cams = ring(3, dist=[0.01, -0.02, 0.001, 0.0005, 0.0, 0.0, 0.0, 0.0])
    for c in cams:
        write_openpose_xml(c, tmp_path / f"{c.name}.xml")
    back = load_calibration(tmp_path)
    assert [c.name for c in back] == [c.name for c in cams]
    assert back[0].size_wh == (0, 0)
    back = with_sizes(back, [(1080, 1920)] * 3)
    xyz = skeleton_3d()
    for a, b in zip(cams, back, strict=True):
        np.testing.assert_allclose(a.project(xyz), b.project(xyz), atol=1e-6)
    two = load_calibration([tmp_path / "cam01.xml", tmp_path / "cam02.xml"])
    assert len(two) == 2


def _toml_with(tmp_path, **changes) -> Path:
    cams = ring(2)
    write_toml(cams, tmp_path / "ok.toml")
    text = (tmp_path / "ok.toml").read_text()
    for old, new in changes.items():
        text = text.replace(old.replace("_", " "), new, 1)
    (tmp_path / "bad.toml").write_text(text)
    return tmp_path / "bad.toml"


@pytest.mark.parametrize("text, message", [
    ("[a]\nname='a'\nsize=[10, 10]\nmatrix=[[0,0,0],[0,0,0],[0,0,1]]\nrotation=[0,0,0]\ntranslation=[0,0,0]\n",
     "not an intrinsic matrix"),
    ("[a]\nname='a'\nsize=[10, 10]\nmatrix=[[1,0,0],[0,1,0],[0,0,1]]\nrotation=[0,0,nan]\ntranslation=[0,0,0]\n",
     "non-finite"),
    ("[a]\nname='a'\nsize=[10, 10]\nmatrix=[[1,0,0],[0,1,0],[0,0,1]]\nrotation=[0,0,0]\ntranslation=[0,0,inf]\n",
     "non-finite"),
    ("[a]\nname='a'\nsize=[-10, 10]\nmatrix=[[1,0,0],[0,1,0],[0,0,1]]\nrotation=[0,0,0]\ntranslation=[0,0,0]\n",
     "size"),
    ("[a]\nname='a'\nsize=[10, 10]\nmatrix=[[1,0,0],[0,1,0],[0,0,1]]\nrotation=[[1,0,0],[0,2,0],[0,0,1]]\n"
     "translation=[0,0,0]\n", "not a rotation"),
    ("[a]\nname='a'\nsize=[10, 10]\nmatrix=[[1,0,0],[0,1,0],[0,0,1]]\nrotation=[0,0,0]\n", "missing translation"),
    ("[a]\nname='a'\nsize=[10, 10]\nmatrix=[[1,0,0],[0,1,0],[0,0,1]]\nrotation=[0,0,0]\ntranslation=[0,0,0]\n",
     "needs at least 2"),
    ("[a]\nname='a'\nsize=[10, 10]\nmatrix=[[1,0,0],[0,1,0],[0,0,1]]\nrotation=[0,0,0]\ntranslation=[0,0,0]\n"
     "[b]\nname='a'\nsize=[10, 10]\nmatrix=[[1,0,0],[0,1,0],[0,0,1]]\nrotation=[0,0,0]\ntranslation=[0,0,0]\n",
     "used twice: a"),
    ("[a\nname=", "not valid TOML"),
    ("[a]\nname='a'\nsize=[10, 10]\nmatrix='x'\nrotation=[0,0,0]\ntranslation=[0,0,0]\n", "not numbers"),
])
def test_bad_toml_is_one_input_error(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as err:
        load_calibration(path)
    assert str(path) in str(err.value)


def test_bad_openpose_xml(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no OpenPose camera files"):
        load_calibration(tmp_path / "empty")
    fs = cv2.FileStorage(str(tmp_path / "c1.xml"), cv2.FILE_STORAGE_WRITE)
    fs.write("Intrinsics", np.eye(3))
    fs.release()
    with pytest.raises(InputError, match="missing CameraMatrix"):
        load_calibration([tmp_path / "c1.xml"])
    (tmp_path / "junk.xml").write_text("not xml at all")
    with pytest.raises(InputError, match="junk.xml"):
        load_calibration([tmp_path / "junk.xml"])
    with pytest.raises(InputError, match="no such file"):
        load_calibration([tmp_path / "nope.xml", tmp_path / "c1.xml"])


@pytest.mark.skipif(not (DEMO / "Calib.qca.txt").exists(), reason="shared demo not here")
def test_qualisys_file_gives_the_same_cameras_as_pose2sims_toml():
    toml, qca = read_toml(DEMO / "Calib.toml"), load_calibration(DEMO / "Calib.qca.txt")
    xyz = skeleton_3d(center=(-1.0, 0.0))
    for a, b in zip(toml, qca, strict=True):
        assert a.name == b.name and a.size_wh == b.size_wh
        np.testing.assert_allclose(a.project(xyz), b.project(xyz), atol=1e-6)


def test_bad_qualisys_file(tmp_path):
    (tmp_path / "a.qca.txt").write_text("<calibration><cameras><camera serial='c1'/></cameras></calibration>")
    with pytest.raises(InputError, match="camera 'c1': missing fov_video"):
        load_calibration(tmp_path / "a.qca.txt")
    (tmp_path / "b.qca.txt").write_text("not xml")
    with pytest.raises(InputError, match="not a Qualisys calibration"):
        load_calibration(tmp_path / "b.qca.txt")
