"""Which calibration a path holds: a Pose2Sim/anipose TOML, a Qualisys ``.qca.txt``, one or
several OpenPose camera files (OpenCV XML), or a folder of them; the readers are in
:mod:`posecli.multiview.calibration` and :mod:`posecli.multiview.qualisys`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import InputError
from .calibration import Camera, check_rig, read_opencv_camera, read_toml
from .qualisys import read_qca


def load_calibration(paths: str | Path | Sequence[str | Path]) -> list[Camera]:
    """Cameras from a TOML file, a folder of OpenPose XML files, or several XML files."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    if not paths:
        raise InputError("no calibration given", param="calibration")
    if len(paths) == 1 and paths[0].is_dir():
        files = sorted(p for p in paths[0].iterdir() if p.suffix.lower() in (".xml", ".yml", ".yaml"))
        if not files:
            raise InputError("no OpenPose camera files (.xml) in this folder", path=paths[0])
        cameras = [read_opencv_camera(p) for p in files]
        check_rig(cameras, paths[0])
        return cameras
    if len(paths) == 1 and paths[0].suffix.lower() == ".toml":
        return read_toml(paths[0])
    if len(paths) == 1 and paths[0].name.lower().endswith(".qca.txt"):
        return read_qca(paths[0])
    for p in paths:
        if p.suffix.lower() == ".toml":
            raise InputError("give one TOML calibration, or several OpenPose XML files", path=p)
    cameras = [read_opencv_camera(p) for p in paths]
    check_rig(cameras, paths[0])
    return cameras
