"""Issue 26 case 11: videos that lie about their frame rate, and render targets that cannot
be written. An AVI declaring 1e-9 or 1e9 fps renders at a sane rate with a note; offline
tracking holds a bounded number of frames whatever the timestamps say; a read-only render
folder fails before any work, and the JSON's frame count always matches its frames."""

from __future__ import annotations

import json
import struct
import subprocess

import numpy as np
import pytest

from posecli.io.playable import DEFAULT_WRITE_FPS
from posecli.skeleton import COCO18
from posecli.types import Frame, Person
from posecli.video.offline import LOOKAHEAD_MAX_FRAMES, OfflineTracker
from tests.helpers import fast, posecli_cmd, run, subprocess_env, temp_files, without_file_powers, write_video


def lying_avi(path, fps_scale_rate: tuple[int, int], n: int = 12):
    """An MJPG AVI whose headers declare ``rate / scale`` frames per second."""
    base = write_video(path.with_suffix(".base.avi"), n, size_wh=(96, 64))
    data = bytearray(base.read_bytes())
    scale, rate = fps_scale_rate
    strh = data.index(b"strh")
    struct.pack_into("<II", data, strh + 28, scale, rate)  # dwScale, dwRate
    avih = data.index(b"avih")
    struct.pack_into("<I", data, avih + 8, min(2**32 - 1, round(1e6 * scale / rate)))  # dwMicroSecPerFrame
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("scale_rate, declared", [((10**9, 1), "1e-09"), ((1, 10**9), "1e+09")])
def test_a_video_declaring_an_absurd_rate_renders_at_a_sane_one(scale_rate, declared, tiny_model, tmp_path):
    clip = lying_avi(tmp_path / "lie.avi", scale_rate)
    r = run("video", clip, "--out", tmp_path / "p.json", "--render", tmp_path / "r.mp4", *fast(tiny_model))
    assert r.exit_code == 0, r.output
    assert (f"Note: the source declares {declared} frames per second, outside 0.1-1000: the annotated video "
            f"is written at {DEFAULT_WRITE_FPS:g}") in r.stderr
    assert len(json.loads((tmp_path / "p.json").read_text())["frames"]) == 12
    probe = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_entries",
                            "stream=nb_read_frames,r_frame_rate", "-of", "json", str(tmp_path / "r.mp4")],
                           capture_output=True, text=True, check=True)
    (stream,) = json.loads(probe.stdout)["streams"]
    assert stream["nb_read_frames"] == "12" and stream["r_frame_rate"] == f"{DEFAULT_WRITE_FPS:g}/1"


def test_offline_tracking_holds_a_bounded_number_of_frames_whatever_the_timestamps():
    """1e9 fps: 2000 frames inside a nanosecond's look-ahead would all be held (images too)."""
    tracker = OfflineTracker()
    xy = np.tile([[100.0, 100.0]], (COCO18.num_parts, 1)) + np.arange(COCO18.num_parts)[:, None] * 5
    held_most, out = 0, []
    for i in range(2000):
        person = Person(xy.copy(), np.full(COCO18.num_parts, 0.9), 0.9, COCO18)
        out += [f.index for f, _ in tracker.push(Frame([person], (640, 480), index=i, timestamp=i * 1e-9))]
        held_most = max(held_most, i + 1 - len(out))
    out += [f.index for f, _ in tracker.flush()]
    assert held_most <= LOOKAHEAD_MAX_FRAMES + 1
    assert out == list(range(2000))  # in order, none lost


def test_offline_tracking_of_a_1e9_fps_video_keeps_every_frame(tiny_model, tmp_path):
    clip = lying_avi(tmp_path / "fast.avi", (1, 10**9), n=20)
    r = run("video", clip, "--out", tmp_path / "p.json", "--track", "offline", *fast(tiny_model))
    assert r.exit_code == 0, r.output
    assert [f["frame"] for f in json.loads((tmp_path / "p.json").read_text())["frames"]] == list(range(20))


def test_a_read_only_render_folder_fails_before_any_work(tiny_model, tmp_path):
    prefix = without_file_powers()
    if prefix is None:
        pytest.skip("root without setpriv: permission bits do not apply")
    clip = write_video(tmp_path / "clip.mp4", 8)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    out = tmp_path / "p.json"
    try:
        done = subprocess.run([*prefix, *posecli_cmd("video", clip, "--out", out, "--render", locked / "r.mp4",
                                                     *fast(tiny_model))],
                              capture_output=True, text=True, env=subprocess_env(), timeout=120, check=False)
    finally:
        locked.chmod(0o755)
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.startswith("Error")]
    assert lines == [f"Error: {locked}: output directory is not writable (Permission denied)"], done.stderr
    assert not out.exists() and not list(locked.iterdir()) and not temp_files(tmp_path)
