"""``posecli video``: streamed JSON, OpenPose folders, annotated video, corrupt input, Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import pytest

from tests.helpers import FPS, REPO, fast, invoke, photo_clip, truncated_copy, write_video


def test_out_file_is_one_streamed_document_with_frame_index_and_time(tmp_path, tiny_model):
    clip = write_video(tmp_path / "clip.mp4", 8)
    out = tmp_path / "poses.json"
    r = invoke("video", clip, "--out", out, "--quiet", *fast(tiny_model))
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    assert doc["complete"] is True and doc["frames_done"] == 8
    assert doc["video"] == {"file": str(clip), "width": 96, "height": 64, "fps": FPS, "frame_count": 8}
    assert [f["frame"] for f in doc["frames"]] == list(range(8))
    assert [f["time"] for f in doc["frames"]] == pytest.approx([i / FPS for i in range(8)])
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left


def test_selection_and_progress_bar(tmp_path, tiny_model, monkeypatch):
    monkeypatch.setenv("POSECLI_PROGRESS_SECONDS", "0")  # stderr is no terminal here: a line per update
    clip = write_video(tmp_path / "clip.mp4", 20)
    out = tmp_path / "poses.json"
    r = invoke("video", clip, "--out", out, "--start", "0.5", "--end", "1.5", "--step", "3", *fast(tiny_model))
    assert r.exit_code == 0, r.output
    assert [f["frame"] for f in json.loads(out.read_text())["frames"]] == [5, 8, 11, 14]
    assert "clip.mp4: 4/4 frames (100%)" in r.stderr and "frames/s" in r.stderr  # plain lines in a log
    assert "\r" not in r.stderr and "\x1b" not in r.stderr
    quiet = invoke("video", clip, "--out", out, "--step", "5", "--quiet", *fast(tiny_model))
    assert quiet.stderr == ""


def test_openpose_folder_has_one_file_per_frame(tmp_path, tiny_model):
    clip = write_video(tmp_path / "walk.mp4", 5)
    r = invoke("video", clip, "--format", "openpose", "--out", tmp_path / "op", "-q", *fast(tiny_model))
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in (tmp_path / "op").iterdir())
    assert names == [f"walk_{i:012d}_keypoints.json" for i in range(5)]
    assert json.loads((tmp_path / "op" / names[0]).read_text())["version"] == 1.3
    bad = invoke("video", clip, "--format", "openpose", "--out", tmp_path / "x.json", *fast(tiny_model))
    assert bad.exit_code == 2 and "folder" in bad.output


def test_render_has_the_clip_size_and_frame_rate(tmp_path, tiny_model):
    clip = write_video(tmp_path / "clip.mp4", 6, size_wh=(128, 96))
    for name in ("ann.mp4", "ann.avi"):
        r = invoke("video", clip, "--out", tmp_path / "p.json", "--render", tmp_path / name, "-q", *fast(tiny_model))
        assert r.exit_code == 0, r.output
        cap = cv2.VideoCapture(str(tmp_path / name))
        try:
            assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(FPS)
            assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (128, 96)
            assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
        finally:
            cap.release()
    r = invoke("video", clip, "--render", tmp_path / "ann.gif", *fast(tiny_model))
    assert r.exit_code == 1 and "use .mp4 or .avi" in r.stderr


@pytest.mark.parametrize("content, message", [(b"", "file is empty"), (b"not a video\n" * 100, "not a readable video")])
def test_empty_or_unreadable_video_is_a_one_line_error(tmp_path, tiny_model, content, message):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(content)
    r = invoke("video", bad, "--out", tmp_path / "p.json", *fast(tiny_model))
    assert r.exit_code == 1
    assert r.stderr.startswith(f"Error: {bad}: ") and message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "p.json").exists()


def test_truncated_video_processes_decodable_frames_and_reports(tmp_path, tiny_model):
    full = write_video(tmp_path / "full.avi", 30, size_wh=(160, 120))
    cut = truncated_copy(full, tmp_path / "cut.avi", 0.5)
    out = tmp_path / "p.json"
    r = invoke("video", cut, "--out", out, "-q", *fast(tiny_model))
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    n = len(doc["frames"])
    assert 5 <= n < 30 and doc["frames_done"] == n
    assert f"stopped at frame {n} of 30" in doc["decode_error"]
    assert re.search(rf"Warning: .*cut.avi: stopped at frame {n} of 30", r.stderr)


def test_real_model_follows_the_person_in_a_photo_clip(tmp_path, default_model, mini_set):
    clip = photo_clip(tmp_path / "ski.mp4", mini_set["dir"] / "000000000785.jpg", 6)
    out = tmp_path / "poses.json"
    r = invoke("video", clip, "--out", out, "--render", tmp_path / "ski_pose.mp4", "--smooth", "-q",
               "-m", default_model, "--device", "cpu", "--height", "160", "--batch-size", "2")
    assert r.exit_code == 0, r.output
    frames = json.loads(out.read_text())["frames"]
    ids = [[p["id"] for p in f["people"] if p["score"] > 0.3] for f in frames]
    assert all(len(f) >= 1 for f in ids)
    main_ids = {f[0] for f in ids[2:]}  # strongest person of each frame, once confirmed (3 frames)
    assert main_ids == {0}
    assert (tmp_path / "ski_pose.mp4").stat().st_size > 0


def _run_and_signal(tmp_path, model: Path, sig: int):
    clip = write_video(tmp_path / "long.mp4", 400, size_wh=(160, 120))
    out = tmp_path / "poses.json"
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "POSECLI_PROGRESS_SECONDS": "0.1"}  # progress lines in the pipe, often
    # --height 768 with two scales: several ms a frame even with the tiny model, so the run is
    # still going when the signal arrives
    cmd = [sys.executable, "-m", "posecli", "video", str(clip), "--out", str(out), "-m", str(model),
           "--device", "cpu", "--height", "768", "--scales", "1,0.9", "-P", "peak_threshold=0.99"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, cwd=tmp_path)
    err: list[str] = []
    progressed = threading.Event()

    def read():
        buf = b""
        while chunk := proc.stderr.read1(256):
            buf += chunk
            if re.search(rb"\b([3-9]|\d\d+)/400\b", buf):
                progressed.set()
        err.append(buf.decode(errors="replace"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert progressed.wait(60), "no progress seen"
    proc.send_signal(sig)
    t0 = time.monotonic()
    code = proc.wait(30)
    stop_s = time.monotonic() - t0
    reader.join(5)
    return code, out, err[0] if err else "", stop_s


@pytest.mark.parametrize("sig, code, word", [(signal.SIGINT, 130, "Interrupted"), (signal.SIGTERM, 143, "Terminated")])
def test_signal_leaves_valid_incomplete_json(tmp_path, tiny_model, sig, code, word):
    exit_code, out, stderr, stop_s = _run_and_signal(tmp_path, tiny_model, sig)
    assert exit_code == code, stderr[-500:]
    doc = json.loads(out.read_text())
    assert doc["complete"] is False
    n = len(doc["frames"])
    assert 3 <= n < 400 and doc["frames_done"] == n
    assert [f["frame"] for f in doc["frames"]] == list(range(n))
    assert f"{word}: {n} frames written" in stderr
    assert stop_s < 5
    assert not list(tmp_path.glob(".*tmp*"))


def test_offline_tracking_gives_ids_from_the_first_frame_and_bad_settings_are_usage_errors(
        tmp_path, default_model, mini_set):
    clip = photo_clip(tmp_path / "ski.mp4", mini_set["dir"] / "000000000785.jpg", 6)
    out = tmp_path / "poses.json"
    r = invoke("video", clip, "--out", out, "--track", "offline", "--smooth", "-q", "-T", "max_gap_s=2",
               "-m", default_model, "--device", "cpu", "--height", "160")
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    assert doc["complete"] and [f["frame"] for f in doc["frames"]] == list(range(6))
    assert {f["people"][0]["id"] for f in doc["frames"]} == {0}  # confirmed from its first frame on
    assert all("id" in p for f in doc["frames"] for p in f["people"])
    for args, message in ((["-T", "max_gap_s=nan"], "max_gap_s=nan"), (["-T", "bogus=1"], "KEY=VALUE"),
                          (["-T", "min_hits=2.5"], "min_hits"), (["--track", "later"], "later"),
                          (["--track", "offline", "--no-track"], "--no-track")):
        r = invoke("video", clip, "--out", tmp_path / "x.json", *args, "-m", default_model)
        assert r.exit_code == 2 and message in r.stderr and "Traceback" not in r.output, (args, r.output)
        assert not (tmp_path / "x.json").exists()
