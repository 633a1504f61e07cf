"""Test helpers, in one place: synthetic scenes (seeded COCO-18 people with human proportions and
their maps), generated videos and photos, and ways to run the CLI.

Keypoints are (N, K, 3) x, y, v in network-input pixels (v = 1 labelled, 0 absent).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import cv2
import numpy as np
from click.testing import CliRunner

from posecli.cli import main
from posecli.skeleton import COCO18, Skeleton
from posecli.train.targets import render_heatmaps, render_pafs

STRIDE = 8
SIGMA = 7.0  # Gaussian sigma of the rendered heatmaps, input pixels
LIMB_WIDTH = 8.0  # PAF half width, input pixels
END_MARGIN = 8.0  # PAF band beyond the joints, input pixels

# A standing person facing the camera, in body heights, neck at the origin, y down
# (the person's right side is on the image's left).
TEMPLATE = {
    "nose": (0.0, -0.10), "neck": (0.0, 0.0),
    "r_shoulder": (-0.12, 0.01), "r_elbow": (-0.16, 0.18), "r_wrist": (-0.18, 0.34),
    "l_shoulder": (0.12, 0.01), "l_elbow": (0.16, 0.18), "l_wrist": (0.18, 0.34),
    "r_hip": (-0.07, 0.34), "r_knee": (-0.08, 0.58), "r_ankle": (-0.08, 0.82),
    "l_hip": (0.07, 0.34), "l_knee": (0.08, 0.58), "l_ankle": (0.08, 0.82),
    "r_eye": (-0.035, -0.13), "l_eye": (0.035, -0.13),
    "r_ear": (-0.075, -0.11), "l_ear": (0.075, -0.11),
}
# Random rotation (radians) of each part's offset from its parent.
_JITTER = {
    "r_elbow": 0.7, "r_wrist": 0.9, "l_elbow": 0.7, "l_wrist": 0.9,
    "r_knee": 0.25, "r_ankle": 0.3, "l_knee": 0.25, "l_ankle": 0.3,
    "nose": 0.25,
}


def make_person(rng: np.random.Generator, centre_xy, height: float, skeleton: Skeleton = COCO18) -> np.ndarray:
    """(K, 3) one person of ``height`` pixels with its neck at ``centre_xy``, limbs jittered."""
    xy = np.zeros((skeleton.num_parts, 2))
    neck = skeleton.index("neck")
    xy[neck] = centre_xy
    done = {neck}
    tilt = rng.uniform(-0.15, 0.15)
    for a, b in skeleton.limbs:
        if b in done:
            continue
        name = skeleton.parts[b]
        offset = (np.array(TEMPLATE[name]) - np.array(TEMPLATE[skeleton.parts[a]])) * height
        angle = tilt + rng.uniform(-1, 1) * _JITTER.get(name, 0.05)
        c, s = np.cos(angle), np.sin(angle)
        xy[b] = xy[a] + offset @ np.array([[c, s], [-s, c]])
        done.add(b)
    return np.concatenate([xy, np.ones((skeleton.num_parts, 1))], axis=1)


def connected_from_neck(kp: np.ndarray, skeleton: Skeleton = COCO18) -> np.ndarray:
    """(K,) keypoints of one person: absent (v=0) those no longer linked to the largest group."""
    kp = kp.copy()
    vis = kp[:, 2] > 0
    root = list(range(skeleton.num_parts))

    def find(i):
        while root[i] != i:
            i = root[i]
        return i

    for a, b in skeleton.limbs:
        if vis[a] and vis[b]:
            root[find(a)] = find(b)
    groups = np.array([find(i) if vis[i] else -1 for i in range(skeleton.num_parts)])
    if vis.any():
        biggest = np.bincount(groups[vis]).argmax()
        kp[groups != biggest, 2] = 0
    return kp


def clip_to_image(kp: np.ndarray, size_hw, margin: float) -> np.ndarray:
    """(N, K, 3) keypoints outside [margin, size - 1 - margin] made absent (NaN, v=0)."""
    kp = kp.copy()
    h, w = size_hw[0] * STRIDE, size_hw[1] * STRIDE
    x, y = kp[..., 0], kp[..., 1]
    out = (x < margin) | (x > w - 1 - margin) | (y < margin) | (y > h - 1 - margin)
    kp[out, 2] = 0
    kp = np.stack([connected_from_neck(p) for p in kp]) if len(kp) else kp
    kp[kp[..., 2] <= 0, :2] = np.nan
    kp[kp[..., 2] <= 0, 2] = 0
    return kp


def row_of_people(rng, n: int, size_hw, height=(120, 150), y_frac=0.45, spacing=None) -> np.ndarray:
    """(n, K, 3) people side by side across the image (touching when ``spacing`` is small)."""
    w = size_hw[1] * STRIDE
    h = size_hw[0] * STRIDE
    spacing = spacing or w / n
    people = []
    for i in range(n):
        cx = (i + 0.5) * spacing + rng.uniform(-3, 3)
        cy = h * y_frac + rng.uniform(-6, 6)
        people.append(make_person(rng, (cx, cy), rng.uniform(*height)))
    return np.stack(people)


def grid_of_people(rng, rows: int, cols: int, size_hw, height=(110, 130)) -> np.ndarray:
    """(rows * cols, K, 3) people on a grid."""
    h, w = size_hw[0] * STRIDE, size_hw[1] * STRIDE
    people = []
    for r in range(rows):
        for c in range(cols):
            centre = ((c + 0.5) * w / cols + rng.uniform(-12, 12), (r + 0.3) * h / rows + rng.uniform(-8, 8))
            people.append(make_person(rng, centre, rng.uniform(*height)))
    return np.stack(people)


def render(kp: np.ndarray, size_hw, skeleton: Skeleton = COCO18):
    """(K+1, H, W) heatmaps and (2L, H, W) PAFs of a scene."""
    heat = render_heatmaps(kp, size_hw, STRIDE, SIGMA)
    pafs = render_pafs(kp, skeleton, size_hw, STRIDE, LIMB_WIDTH, END_MARGIN)
    return heat, pafs


def min_same_part_distance(kp: np.ndarray) -> float:
    """Smallest distance between the same part of two different people (inf if < 2 people)."""
    if len(kp) < 2:
        return np.inf
    d = np.linalg.norm(kp[:, None, :, :2] - kp[None, :, :, :2], axis=-1)  # (N, N, K)
    n = len(kp)
    d[np.arange(n), np.arange(n)] = np.inf
    return float(np.nanmin(np.where(np.isnan(d), np.inf, d)))


MIN_SEPARATION = 20.0  # same part of two people at least this far apart (input pixels)
_LEAVES = ("r_wrist", "l_wrist", "r_ankle", "l_ankle", "r_ear", "l_ear", "r_eye", "l_eye", "nose")


def _crossing(rng, size_hw):
    """Two people close together, arms reaching across each other."""
    h, w = size_hw[0] * STRIDE, size_hw[1] * STRIDE
    cx = w / 2 + rng.uniform(-20, 20)
    a = make_person(rng, (cx - 22, h * 0.4), rng.uniform(130, 150))
    b = make_person(rng, (cx + 22, h * 0.42), rng.uniform(130, 150))
    # a's left arm reaches right across b, b's right arm reaches left across a.
    for kp, side, sign in ((a, "l_", 1), (b, "r_", -1)):
        sh = kp[COCO18.index(side + "shoulder"), :2]
        kp[COCO18.index(side + "elbow"), :2] = sh + (sign * 28 + rng.uniform(-3, 3), 14 + rng.uniform(-3, 3))
        kp[COCO18.index(side + "wrist"), :2] = sh + (sign * 58 + rng.uniform(-3, 3), 6 + rng.uniform(-3, 3))
    return np.stack([a, b])


def _border(rng, size_hw):
    """People cut by each edge of the image."""
    h, w = size_hw[0] * STRIDE, size_hw[1] * STRIDE
    centres = [
        (rng.uniform(5, 15), h * 0.4), (w - rng.uniform(5, 15), h * 0.35),
        (w * 0.35, h - rng.uniform(40, 60)), (w * 0.65, rng.uniform(-30, -10)),
    ]
    return np.stack([make_person(rng, c, rng.uniform(130, 150)) for c in centres])


def _partial(rng, size_hw):
    """Five people, each missing some leaf parts (and whatever that disconnects)."""
    kp = row_of_people(rng, 5, size_hw)
    for person in kp:
        drop = rng.choice(len(_LEAVES), size=rng.integers(1, 5), replace=False)
        person[[COCO18.index(_LEAVES[i]) for i in drop], 2] = 0
    return kp


SCENES = {
    "one": ((32, 57), lambda rng, s: row_of_people(rng, 1, s)),
    "two": ((32, 57), lambda rng, s: row_of_people(rng, 2, s)),
    "five": ((32, 57), lambda rng, s: row_of_people(rng, 5, s)),
    "ten-touching": ((32, 57), lambda rng, s: row_of_people(rng, 10, s, height=(110, 130))),
    "crossing": ((32, 57), _crossing),
    "border": ((32, 57), _border),
    "partial": ((32, 57), _partial),
    "fifty": ((96, 128), lambda rng, s: grid_of_people(rng, 5, 10, s)),
}


def scene(name: str, seed: int, margin: float = 0.0):
    """(N, K, 3) keypoints and the map size (H, W) of a named scene, reproducible by seed.

    Keypoints outside [margin, size - 1 - margin] are absent, and so is whatever that cuts
    off from a person's largest connected group; same parts of two people stay apart.
    """
    size_hw, make = SCENES[name]
    rng = np.random.default_rng(seed)
    for _ in range(100):
        kp = clip_to_image(make(rng, size_hw), size_hw, margin)
        if min_same_part_distance(kp) >= MIN_SEPARATION:
            return kp, size_hw
    raise RuntimeError(f"could not place scene {name!r} (seed {seed})")


# ---------------------------------------------------------------------------------------------
# Videos, photos and the CLI
# ---------------------------------------------------------------------------------------------
REPO = Path(__file__).resolve().parents[1]


FPS = 10.0


def write_video(path: Path, n: int, size_wh=(96, 64), fps: float = FPS, frame_fn=None) -> Path:
    """A video of ``n`` frames; by default frame i is a flat grey of level 10 * i (its index)."""
    fourcc = "MJPG" if path.suffix == ".avi" else "mp4v"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size_wh)
    assert writer.isOpened(), f"OpenCV cannot write {path.suffix} here"
    try:
        for i in range(n):
            image = frame_fn(i) if frame_fn else np.full((size_wh[1], size_wh[0], 3), (10 * i) % 250, np.uint8)
            writer.write(image)
    finally:
        writer.release()
    return path


def truncated_copy(src: Path, dst: Path, fraction: float = 0.5) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def level(frame: np.ndarray) -> int:
    """Frame index encoded by :func:`write_video` (robust to compression)."""
    return int(round(float(frame.mean()) / 10))


def photo_clip(path: Path, photo: Path, n: int, size_wh=(320, 224)) -> Path:
    """A clip of a real photo sliding sideways a few pixels per frame."""
    image = cv2.imread(str(photo))
    scale = size_wh[0] / image.shape[1]

    def frame(i):
        m = np.float32([[scale, 0, 3 * i - 10], [0, scale, 0]])
        return cv2.warpAffine(image, m, size_wh, borderMode=cv2.BORDER_REPLICATE)

    return write_video(path, n, size_wh=size_wh, fps=FPS, frame_fn=frame)


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def fast(model: Path) -> list[str]:
    """The tiny model, quick: small input, and no peaks (its maps are ~0.5 everywhere)."""
    return ["-m", str(model), "--device", "cpu", "--height", "64", "-P", "peak_threshold=0.99"]


def photo(path: Path, size_hw=(120, 160), seed: int = 0) -> Path:
    image = np.random.default_rng(seed).integers(0, 255, (*size_hw, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), image)
    return path


def temp_files(folder: Path) -> list[Path]:
    """Leftover temporary files of atomic writes (``.NAME.xxxx.tmp``) anywhere under ``folder``."""
    return [p for p in folder.rglob(".*") if ".tmp" in p.name or ".posecli-probe-" in p.name]


def subprocess_env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def posecli_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "posecli", *[str(a) for a in args]]


# ---------------------------------------------------------------------------------------------
# Hostile inputs: device nodes, names that are not UTF-8, root without its file powers
# ---------------------------------------------------------------------------------------------
def device_node(path: Path, minor: int) -> Path:
    """A character device like /dev/null (minor 3) or /dev/full (minor 7), made with mknod
    in a test folder (needs root)."""
    import stat

    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, minor))
    return path


def not_utf8(folder: Path, stem: bytes, suffix: str) -> Path:
    """A path in ``folder`` whose name is not valid UTF-8 (e.g. ``stem=b"caf\\xe9"``)."""
    return folder / os.fsdecode(stem + suffix.encode())


def without_file_powers() -> list[str] | None:
    """A command prefix under which permission bits apply even to root (CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH dropped with util-linux's setpriv); [] when not root; None when
    there is no way (the caller skips)."""
    import shutil

    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    return None if setpriv is None else [setpriv, "--bounding-set=-dac_override,-dac_read_search"]
