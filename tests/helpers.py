"""Test helpers, in one place: synthetic scenes (seeded COCO-18 people with human proportions and
their maps), generated videos and photos, and ways to run the CLI.

Keypoints are (N, K, 3) x, y, v in network-input pixels (v = 1 labelled, 0 absent).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from click.testing import CliRunner

from posecli.cli import main
from posecli.maps import render_heatmaps, render_pafs
from posecli.skeleton import COCO18, Skeleton
from posecli.types import Frame, Person

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
SHARED = Path(os.environ.get("POSECLI_SHARED", REPO.parent / "shared")).resolve()
MINI = SHARED / "data" / "coco-val2017-mini"
IR_XML = SHARED / "models" / "human-pose-estimation-0001" / "FP16-INT8" / "human-pose-estimation-0001.xml"


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
# FFmpeg-made clips (sound, rotation tags) and ffprobe
# ---------------------------------------------------------------------------------------------
def ffmpeg_tools() -> tuple[str, str] | None:
    """Paths of ffmpeg and ffprobe, or None when either is missing."""
    import shutil

    ffmpeg, ffprobe = shutil.which("ffmpeg"), shutil.which("ffprobe")
    return (ffmpeg, ffprobe) if ffmpeg and ffprobe else None


def ffmpeg_clip(path: Path, frames_dir_clip: Path, *, audio: bool = True, rotation: int = 0) -> Path:
    """``frames_dir_clip`` (any video) with a 440 Hz tone as its sound track (``audio``) and a
    display rotation tag of ``rotation`` degrees counter-clockwise, as phones write them."""
    import subprocess

    ffmpeg, _ = ffmpeg_tools()
    cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-y"]
    if rotation:
        cmd += ["-display_rotation", str(rotation)]  # FFmpeg 6 and later; older ones: the rotate tag below
    cmd += ["-i", str(frames_dir_clip)]
    if audio:
        cmd += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000", "-map", "0:v", "-map", "1:a",
                "-c:a", "aac", "-shortest"]
    cmd += ["-c:v", "copy", str(path)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0 and rotation:
        cmd = [c for c in cmd if c not in ("-display_rotation", str(rotation))]
        cmd[-1:-1] = ["-metadata:s:v:0", f"rotate={rotation}"]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return path


def ffprobe_streams(path: Path) -> list[dict]:
    """ffprobe's description of every stream of ``path`` (codec_name, codec_type, width, ...)."""
    import json
    import subprocess

    _, ffprobe = ffmpeg_tools()
    done = subprocess.run([ffprobe, "-v", "error", "-show_streams", "-of", "json", str(path)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)["streams"]


# ---------------------------------------------------------------------------------------------
# Live sources on 127.0.0.1: an HTTP file server, an MJPEG camera, FFmpeg pushing MPEG-TS, Xvfb
# ---------------------------------------------------------------------------------------------
def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HttpFiles:
    """Python's http.server serving ``folder`` on 127.0.0.1 in a thread (a context manager)."""

    def __init__(self, folder: Path):
        import functools
        import http.server
        import threading

        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def stamp(image: np.ndarray, number: int) -> np.ndarray:
    """Write ``number`` (16 bits) into the top rows of ``image`` as black/white blocks."""
    w = image.shape[1] // 16
    for bit in range(16):
        image[:8, bit * w:(bit + 1) * w] = 255 if number >> bit & 1 else 0
    return image


def read_stamp(image: np.ndarray) -> int:
    """The number written by :func:`stamp` (robust to JPEG compression)."""
    w = image.shape[1] // 16
    return sum(1 << bit for bit in range(16) if image[2:6, bit * w + 2:(bit + 1) * w - 2].mean() > 128)


class LocalServer:
    """A TCP server on 127.0.0.1 for the tests' cameras: ``url`` names it, ``_serve`` (the
    subclass's) runs on a thread inside ``with``; leaving it stops the thread, waking an
    ``accept()`` in progress."""

    def __init__(self, path: str = "/video.mjpg"):
        import socket
        import threading

        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(4)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}{path}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        import socket

        self._stop.set()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() in progress (close alone does not)
        except OSError:
            pass
        self._sock.close()
        self._thread.join(5)

    def accept(self):
        """The next client's connection, None once the server is closed."""
        try:
            return self._sock.accept()[0]
        except OSError:
            return None

    def _serve(self) -> None:
        raise NotImplementedError


MJPEG_BOUNDARY = b"posecliframe"
#: The reply that opens an MJPEG stream (each frame then is :func:`mjpeg_part`).
MJPEG_HEADER = (b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=" + MJPEG_BOUNDARY
                + b"\r\n\r\n")


def mjpeg_part(jpg: bytes) -> bytes:
    """One JPEG frame of an MJPEG stream."""
    return (b"--" + MJPEG_BOUNDARY + b"\r\nContent-Type: image/jpeg\r\nContent-Length: "
            + str(len(jpg)).encode() + b"\r\n\r\n" + jpg + b"\r\n")


class MjpegCamera(LocalServer):
    """An IP camera on 127.0.0.1: ``multipart/x-mixed-replace`` JPEG frames at ``fps``.

    Frame n is ``frame_fn(n)`` with n stamped in its top rows (:func:`read_stamp`);
    ``sent[n]`` is the ``time.monotonic()`` it was sent at. ``frames``: stop after this many
    (None: until closed). Serves one client at a time.
    """

    def __init__(self, fps: float = 30.0, size_wh=(160, 120), frame_fn=None, frames: int | None = None):
        super().__init__()
        self.fps, self.size_wh, self.frames = fps, size_wh, frames
        self.frame_fn = frame_fn or (lambda n: np.full((size_wh[1], size_wh[0], 3), 90, np.uint8))
        self.sent: dict[int, float] = {}

    def _serve(self) -> None:
        import time

        while not self._stop.is_set():
            conn = self.accept()
            if conn is None:
                return
            with conn:
                try:
                    conn.recv(65536)
                    conn.sendall(MJPEG_HEADER)
                    t0, n = time.monotonic(), 0
                    while not self._stop.is_set() and (self.frames is None or n < self.frames):
                        jpg = cv2.imencode(".jpg", stamp(self.frame_fn(n).copy(), n))[1]
                        time.sleep(max(0.0, t0 + n / self.fps - time.monotonic()))
                        part = mjpeg_part(jpg.tobytes())
                        self.sent[n] = time.monotonic()
                        conn.sendall(part)
                        n += 1
                except OSError:
                    continue


def mpegts_clip(path: Path, n: int, size_wh=(160, 120), fps: float = FPS, frame_fn=None) -> Path:
    """An H.264 MPEG-TS clip (a keyframe every 5 frames, for quick joins) made with ffmpeg."""
    import shutil
    import subprocess

    if shutil.which("ffmpeg") is None:
        import pytest

        pytest.skip("ffmpeg is not installed (make test installs it: apt-get install -y ffmpeg)")
    raw = write_video(path.with_suffix(".src.avi"), n, size_wh=size_wh, fps=fps, frame_fn=frame_fn)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(raw), "-c:v", "libx264", "-preset", "ultrafast",
                    "-tune", "zerolatency", "-g", "5", "-pix_fmt", "yuv420p", "-f", "mpegts", str(path)],
                   check=True, timeout=120)
    raw.unlink()
    return path


def ffmpeg_push(clip: Path, url: str, *, loop: bool = True):
    """FFmpeg sending ``clip`` at its own rate to ``url`` as MPEG-TS (a Popen; kill it to stop)."""
    import subprocess

    cmd = ["ffmpeg", "-v", "error", "-nostdin", "-re"] + (["-stream_loop", "-1"] if loop else [])
    cmd += ["-i", str(clip), "-c", "copy", "-f", "mpegts", url]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Xvfb:
    """A virtual X display (``display``, e.g. ``:57``) whose screen :meth:`screenshot` reads
    back from the frame buffer file Xvfb keeps (``-fbdir``), as a BGR array."""

    def __init__(self, folder: Path, size_wh=(800, 600)):
        import shutil
        import subprocess
        import time

        if shutil.which("Xvfb") is None:
            import pytest

            pytest.skip("Xvfb is not installed (make test installs it: apt-get install -y xvfb)")
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        for number in range(57, 157):
            if Path(f"/tmp/.X11-unix/X{number}").exists() or Path(f"/tmp/.X{number}-lock").exists():
                continue
            self.proc = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", f"{size_wh[0]}x{size_wh[1]}x24",
                                          "-fbdir", str(folder), "-nolisten", "tcp"],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                if Path(f"/tmp/.X11-unix/X{number}").exists() and (folder / "Xvfb_screen0").exists():
                    self.display = f":{number}"
                    return
                time.sleep(0.05)
            self.close()
        raise RuntimeError("could not start Xvfb")

    def screenshot(self) -> np.ndarray:
        """(H, W, 3) BGR of the whole screen (XWD file: header, colour map, 32-bit pixels)."""
        import struct

        data = (self.folder / "Xvfb_screen0").read_bytes()
        header = struct.unpack(">25I", data[:100])
        header_size, width, height, bpp, line, ncolors = header[0], header[4], header[5], header[11], header[12], \
            header[19]
        assert bpp == 32, f"unexpected XWD pixel size {bpp}"
        start = header_size + 12 * ncolors
        pixels = np.frombuffer(data, np.uint8, count=line * height, offset=start).reshape(height, line // 4, 4)
        return np.ascontiguousarray(pixels[:, :width, :3])  # little-endian BGRX

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


# -- walking people for tracking tests and the tracking bench ---------------------------------------
# Seeded scenes in seconds (so 25 and 60 fps clips show the same motion): people walk across
# a frame along lanes that cross, change speed and stop, enter and leave, hide behind each
# other and behind a pillar; a simulated detector adds keypoint noise, misses keypoints,
# drops people for a few frames (flicker) and reports short false people.
@dataclass
class WalkFrame:
    """One frame: ``people`` as a detector would report them (parser order shuffled),
    ``source`` the ground-truth id of each (None: a false detection), and the ground truth:
    ``gt_ids``, ``gt_xy`` (G, K, 2) true keypoints, ``gt_ignore`` (mostly hidden)."""

    t: float
    people: list
    source: list
    gt_ids: list
    gt_xy: np.ndarray
    gt_ignore: np.ndarray


def _gait(template: np.ndarray, phase: float, height: float) -> np.ndarray:
    """(K, 2) the person's pose at gait ``phase`` (radians): arms and legs swing."""
    xy = template.copy()
    swing = np.sin(phase) * 0.06 * height
    for name, sign in (("r_wrist", 1), ("l_wrist", -1), ("r_ankle", -1), ("l_ankle", 1),
                       ("r_elbow", 0.5), ("l_elbow", -0.5), ("r_knee", -0.5), ("l_knee", 0.5)):
        xy[COCO18.index(name), 0] += sign * swing
    return xy


def walking_scene(seed: int = 0, fps: float = 25.0, seconds: float = 8.0, people: int = 7,
                  size_wh=(1280, 720), miss_keypoint: float = 0.1, flicker_rate: float = 0.4,
                  false_rate: float = 0.5, pillar: bool = True, noise: float = 0.012) -> list[WalkFrame]:
    """Frames of walking people with a simulated detector (see the block comment above).

    ``flicker_rate``: per person and second, how often it is dropped for 0.04-0.12 s;
    ``false_rate``: false people per second, each lasting 0.04-0.12 s; ``noise``: keypoint
    noise in body heights."""
    rng = np.random.default_rng(seed)
    w, h = size_wh
    walkers = []
    for pid in range(people):
        height = rng.uniform(0.22, 0.45) * h
        lane = rng.uniform(0.3, 0.75) * h - 0.3 * height
        drift = rng.uniform(-0.04, 0.04) * h  # px/s: lanes cross
        direction = rng.choice([-1.0, 1.0])
        speed = rng.uniform(0.6, 1.4) * height  # px/s, about a body height per second
        start = rng.uniform(-0.4, 0.6) * seconds  # when it enters (before 0: already inside)
        stop = (rng.uniform(0, seconds), rng.uniform(0.3, 1.2)) if rng.random() < 0.5 else (np.inf, 0.0)
        template = make_person(rng, (0.0, 0.0), height)[:, :2]
        walkers.append((pid, height, lane, drift, direction, speed, start, stop, template, rng.uniform(0, 6.3)))
    # flicker bursts and false people, drawn in seconds
    bursts = {pid: [(s, s + rng.uniform(0.04, 0.121)) for s in rng.uniform(0, seconds, rng.poisson(flicker_rate * seconds))]
              for pid in range(people)}
    falses = [(s, s + rng.uniform(0.04, 0.121), rng.uniform(0.1 * w, 0.9 * w), rng.uniform(0.2 * h, 0.8 * h),
               rng.uniform(0.15, 0.3) * h) for s in rng.uniform(0, seconds, rng.poisson(false_rate * seconds))]
    pillar_x = (0.45 * w, 0.5 * w) if pillar else (np.inf, np.inf)
    frames = []
    for n in range(int(round(seconds * fps))):
        t = n / fps
        truth = []
        for pid, height, lane, drift, direction, speed, start, (s0, sd), template, phase0 in walkers:
            moving = max(0.0, t - start) - np.clip(t - s0, 0.0, sd)  # seconds spent walking
            dist = speed * moving * (1 + 0.15 * np.sin(moving))  # speed changes
            x = (-0.15 * w + dist) if direction > 0 else (1.15 * w - dist)
            neck = np.array([x, lane + drift * t])
            xy = _gait(template, phase0 + 6.0 * dist / height, height) + neck
            truth.append((pid, height, xy))
        truth.sort(key=lambda p: p[1])  # far (small) first: nearer people hide them
        gt_ids, gt_xy, gt_ignore, people_out, source = [], [], [], [], []
        for k, (pid, height, xy) in enumerate(truth):
            inside = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
            if inside.sum() < 4:
                continue
            hidden = (xy[:, 0] >= pillar_x[0]) & (xy[:, 0] <= pillar_x[1])
            for _, h2, xy2 in truth[k + 1:]:
                x0, y0 = xy2.min(axis=0) - 0.05 * h2
                x1, y1 = xy2.max(axis=0) + 0.05 * h2
                hidden |= (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)
            seen = inside & ~hidden
            gt_ids.append(pid)
            gt_xy.append(xy)
            gt_ignore.append(seen.sum() < 4)
            flicker = any(a <= t < b for a, b in bursts[pid])
            found = seen & (rng.random(len(xy)) >= miss_keypoint)
            if flicker or found.sum() < 4:
                continue
            det = xy + rng.normal(0, noise * height, xy.shape)
            det[~found] = np.nan
            score = 0.4 + 1.2 * found.mean() * rng.uniform(0.6, 1.0)
            people_out.append(Person(det, np.where(found, rng.uniform(0.3, 0.9, len(xy)), 0.0), score, COCO18))
            source.append(pid)
        for a, b, fx, fy, fh in falses:
            if a <= t < b:
                xy = make_person(np.random.default_rng(int(fx)), (fx, fy), fh)[:, :2] + rng.normal(0, 3, (18, 2))
                xy[np.random.default_rng(int(fy)).random(18) < 0.5] = np.nan
                people_out.append(Person(xy, np.where(np.isfinite(xy[:, 0]), 0.4, 0.0), rng.uniform(0.45, 0.9), COCO18))
                source.append(None)
        order = rng.permutation(len(people_out))
        frames.append(WalkFrame(t, [people_out[i] for i in order], [source[i] for i in order], gt_ids,
                                np.array(gt_xy).reshape(-1, COCO18.num_parts, 2), np.array(gt_ignore, bool)))
    return frames


def track_scores(scene: list[WalkFrame], outputs: list[list], min_similarity: float = 0.5) -> dict:
    """MOT scores (:class:`posecli.video.mot.MotAccumulator`) of tracker ``outputs`` (the
    people of each frame, with ``track_id``; None ids are not counted) against ``scene``."""
    from posecli.video.matching import keypoint_area, keypoint_sigmas, oks
    from posecli.video.mot import MotAccumulator

    acc = MotAccumulator(min_similarity)
    sigmas = keypoint_sigmas(COCO18)
    for frame, people in zip(scene, outputs):
        hyps = [p for p in people if p.track_id is not None]
        sim = np.array([[oks(p.xy, g, max(keypoint_area(g), 32.0 ** 2), sigmas) for p in hyps] for g in frame.gt_xy])
        acc.update(frame.gt_ids, [p.track_id for p in hyps], sim.reshape(len(frame.gt_ids), len(hyps)),
                   frame.gt_ignore)
    return acc.summary()


# ---------------------------------------------------------------------------------------------
# A real HTTP server on 127.0.0.1 (model downloads)
# ---------------------------------------------------------------------------------------------
class FileServer:
    """Serve ``files`` ({name: bytes}) over HTTP on 127.0.0.1 with Range requests, in a thread.

    ``faults[name]`` is a list of behaviours, one used up per request of that file:
    ``"404"``; ``("stop", n)`` announce the whole body, send ``n`` bytes, drop the connection;
    ``"no-range"`` answer 200 with the whole file to a Range request; ``("slow", s)`` pause ``s``
    seconds between 64 KB chunks. ``requests`` logs (name, Range header or None).
    """

    def __init__(self, files: dict[str, bytes], faults: dict | None = None):
        import http.server
        import threading
        import time

        self.files = files
        self.faults = {k: list(v) for k, v in (faults or {}).items()}
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest's output clean
                pass

            def do_GET(self):
                name = self.path.lstrip("/")
                rng = self.headers.get("Range")
                server.requests.append((name, rng))
                fault = server.faults.get(name, [None]).pop(0) if server.faults.get(name) else None
                if fault == "404" or name not in server.files:
                    self.send_error(404)
                    return
                body, start, status = server.files[name], 0, 200
                if rng and fault != "no-range":
                    start = int(rng.split("=")[1].split("-")[0])
                    status = 206
                self.send_response(status)
                self.send_header("Content-Length", str(len(body) - start))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.end_headers()
                data = body[start:]
                if isinstance(fault, tuple) and fault[0] == "stop":
                    self.wfile.write(data[: fault[1]])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                step = 64 * 1024
                for i in range(0, len(data), step):
                    if isinstance(fault, tuple) and fault[0] == "slow":
                        time.sleep(fault[1])
                    try:
                        self.wfile.write(data[i:i + step])
                    except OSError:
                        return

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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


def consumer_python() -> str:
    """The python of the consumers' venv (pose-format, Pose2Sim, OpenSim, Sports2D; `make consumers`).

    ``POSECLI_CONSUMERS_PYTHON`` names another one; the test is skipped, saying how, when neither exists.
    """
    import pytest

    path = os.environ.get("POSECLI_CONSUMERS_PYTHON") or str(
        REPO / ".venv-consumers" / "bin" / "python"
    )
    if not Path(path).exists():
        pytest.skip(f"the consumers' venv is missing ({path}): run `make consumers`")
    return path


# ---------------------------------------------------------------------------------------------
# Records from literal lists, and tiny generated models
# ---------------------------------------------------------------------------------------------
def person(points: dict[str, tuple[float, float]], score: float = 0.9, skeleton: Skeleton = COCO18,
           kp_score: float = 0.8, track_id: int | None = None) -> Person:
    """A person with the named keypoints at the given x, y; every other keypoint missing."""
    xy = np.full((skeleton.num_parts, 2), np.nan)
    scores = np.zeros(skeleton.num_parts)
    for name, (x, y) in points.items():
        k = skeleton.index(name)
        xy[k] = (x, y)
        scores[k] = kp_score
    return Person(xy, scores, score, skeleton, track_id)


def frame(*people: Person, size_wh=(640, 480), source="photo.jpg", index=None, timestamp=None) -> Frame:
    return Frame(list(people), size_wh, source=source, index=index, timestamp=timestamp)


def make_tiny_model(path: Path, *, metadata: bool = True, heatmap_channels: int = 19, paf_channels: int = 38,
                    seed: int = 0) -> Path:
    """A tiny fully convolutional ONNX network with the default model's I/O layout.

    One 8x8 stride-8 convolution from the image to 19 + 38 channels (sigmoid / tanh), so it
    runs in microseconds and gives maps of the right size for any input.
    """
    import pytest

    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    from posecli.network.metadata import ModelInfo, OutputSpec, embed_metadata
    from posecli.skeleton import COCO18

    rng = np.random.default_rng(seed)
    w_h = numpy_helper.from_array((rng.standard_normal((heatmap_channels, 3, 8, 8)) * 0.01).astype(np.float32), "w_h")
    w_p = numpy_helper.from_array((rng.standard_normal((paf_channels, 3, 8, 8)) * 0.01).astype(np.float32), "w_p")
    conv = dict(kernel_shape=[8, 8], strides=[8, 8])
    nodes = [
        helper.make_node("Conv", ["data", "w_h"], ["h_raw"], **conv),
        helper.make_node("Sigmoid", ["h_raw"], ["heatmaps"]),
        helper.make_node("Conv", ["data", "w_p"], ["p_raw"], **conv),
        helper.make_node("Tanh", ["p_raw"], ["pafs"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [
            helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, ["N", heatmap_channels, "h", "w"]),
            helper.make_tensor_value_info("pafs", TensorProto.FLOAT, ["N", paf_channels, "h", "w"]),
        ],
        initializer=[w_h, w_p],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if metadata:
        info = ModelInfo("tiny", COCO18, "data", (256, 456), OutputSpec("heatmaps"), OutputSpec("pafs"),
                         pad_value=(128.0, 128.0, 128.0), scale=(1 / 256,) * 3, mean=(128.0,) * 3)
        embed_metadata(model, info)
    onnx.save(model, str(path))
    return path


def signal_after_progress(cmd: list[str], cwd: Path, marker: bytes, send, *, new_session: bool = False,
                          wait_s: float = 30) -> tuple[int, str]:
    """Run ``cmd`` with a progress line for every step on stderr; once ``marker`` (a regex) shows
    there, call ``send(proc)`` to deliver the signals. Returns (exit code, stderr).
    ``new_session``: the process leads a process group of its own (for ``os.killpg``)."""
    import re
    import subprocess
    import threading

    env = {**subprocess_env(), "POSECLI_PROGRESS_SECONDS": "0"}
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, cwd=cwd,
                            start_new_session=new_session)
    seen = threading.Event()
    chunks: list[bytes] = []

    def read():
        for chunk in iter(lambda: proc.stderr.read1(4096), b""):
            chunks.append(chunk)
            if re.search(marker, b"".join(chunks)):
                seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert seen.wait(90), "no progress seen: " + b"".join(chunks).decode(errors="replace")[-300:]
        send(proc)
        code = proc.wait(wait_s)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(5)
    return code, b"".join(chunks).decode(errors="replace")
