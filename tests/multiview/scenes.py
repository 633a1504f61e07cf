"""Synthetic multi-camera scenes: a ring of cameras looking at people standing in a Z-up world,
their COCO-18 skeletons in metres, projected into every camera."""

from __future__ import annotations

import numpy as np

from posecli.multiview.calibration import Camera
from posecli.skeleton import COCO18
from tests.helpers import TEMPLATE

HEIGHT_M = 1.75
SIZE_WH = (1080, 1920)


def look_at(name: str, eye, target, size_wh=SIZE_WH, focal=1600.0, dist=None) -> Camera:
    """A camera at ``eye`` looking at ``target`` (world Z up, image y down)."""
    eye, target = np.asarray(eye, float), np.asarray(target, float)
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, [0, 0, 1.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])
    K = np.array([[focal, 0, size_wh[0] / 2], [0, focal, size_wh[1] / 2], [0, 0, 1]])
    return Camera(name, size_wh, K, np.zeros(5) if dist is None else np.asarray(dist, float), R, -R @ eye)


def ring(n: int = 4, radius: float = 4.0, dist=None) -> list[Camera]:
    """``n`` cameras on a circle around the origin, at 1.5 m, looking at (0, 0, 1)."""
    cams = []
    for i in range(n):
        a = 2 * np.pi * i / n + 0.3
        cams.append(look_at(f"cam{i + 1:02d}", [radius * np.cos(a), radius * np.sin(a), 1.5], [0, 0, 1.0],
                            dist=dist))
    return cams


def skeleton_3d(center=(0.0, 0.0), facing: float = 0.0, scale: float = 1.0) -> np.ndarray:
    """(18, 3) a standing person (COCO-18 order) in metres, feet on the floor, at ``center``."""
    pts = np.array([TEMPLATE[p] for p in COCO18.parts])  # body heights, y down, neck at 0
    lateral, down = pts[:, 0] * HEIGHT_M * scale, pts[:, 1] * HEIGHT_M * scale
    z = 0.82 * HEIGHT_M * scale - down + 0.05
    depth = np.where(np.isin(np.arange(18), [0, 14, 15]), 0.08, 0.0)  # face in front
    c, s = np.cos(facing), np.sin(facing)
    x = center[0] + c * lateral - s * depth
    y = center[1] + s * lateral + c * depth
    return np.stack([x, y, z], axis=1)


def project_all(cameras, xyz: np.ndarray) -> np.ndarray:
    """(C, ..., 2) pixels of ``xyz`` (..., 3) in each camera."""
    return np.stack([cam.project(xyz) for cam in cameras])


def walking_scene(frames: int = 20, fps: float = 30.0):
    """Two people walking past each other: (T, 2, 18, 3) metres."""
    t = np.arange(frames)[:, None, None] / fps
    a = skeleton_3d(center=(-0.8, -0.3), facing=0.3)[None] + t * np.array([0.6, 0.0, 0.0])
    b = skeleton_3d(center=(0.8, 0.4), facing=2.5, scale=0.95)[None] + t * np.array([-0.5, 0.1, 0.0])
    return np.stack([a, b], axis=1)


def write_2d_results(folder, cameras, people_xyz, fps: float = 30.0, fmt: str = "posecli", noise_px: float = 1.0,
                     lead: dict | None = None, seed: int = 0) -> list:
    """Each camera's 2D of ``people_xyz`` (T, N, K, 3) as a posecli JSON file (or an OpenPose
    folder), people in a shuffled order per frame. ``lead`` {camera index: frames}: that camera
    started earlier (empty frames first)."""
    from pathlib import Path

    from posecli.formats.writers import ResultWriter
    from posecli.types import Frame, Person

    rng = np.random.default_rng(seed)
    paths = []
    for c, cam in enumerate(cameras):
        path = Path(folder) / (f"{cam.name}.json" if fmt == "posecli" else cam.name)
        writer = ResultWriter(fmt, path, skeleton=COCO18, kind="frames", per_file_dir=fmt == "openpose")
        extra = (lead or {}).get(c, 0)
        for n in range(extra + len(people_xyz)):
            people = []
            if n >= extra:
                for i in rng.permutation(people_xyz.shape[1]):
                    xy = cam.project(people_xyz[n - extra, i]) + rng.normal(0, noise_px, (18, 2))
                    people.append(Person(xy, np.full(18, 0.9), 1.0, COCO18))
            writer.add(Frame(people, cam.size_wh, source=f"{cam.name}.mp4", index=n, timestamp=n / fps))
        writer.close()
        paths.append(path)
    return paths
