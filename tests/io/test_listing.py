"""Odd videos and folders (io.video, io.listing): no frames, corrupt tails, variable frame rates,
unsupported files.
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from posecli.io.ffmpeg import find_ffmpeg

from tests.helpers import (
    fast,
    not_utf8,
    photo,
    posecli_cmd,
    run,
    subprocess_env,
    temp_files,
    write_video,
)


@pytest.mark.parametrize("suffix, problem", [(".mp4", "not a readable video (corrupt or unsupported format)"),
                                             (".avi", "video has no decodable frames")])
def test_video_with_zero_frames(suffix, problem, tiny_model, tmp_path):
    clip = write_video(tmp_path / f"zero{suffix}", 0)
    out = tmp_path / "poses.json"
    r = run("video", clip, "--out", out, "-q", *fast(tiny_model))
    assert r.exit_code == 1 and r.stderr == f"Error: {clip}: {problem}\n"
    assert not out.exists() and not temp_files(tmp_path)


@pytest.mark.parametrize("suffix", [".avi", ".mp4"])
def test_video_whose_later_frames_are_corrupt(suffix, tiny_model, tmp_path):
    clip = write_video(tmp_path / f"clip{suffix}", 40, size_wh=(160, 120))
    data = bytearray(clip.read_bytes())
    rng = np.random.default_rng(1)
    for off in range(int(len(data) * 0.6), int(len(data) * 0.9), 997):  # garbage over the later frames
        data[off : off + 64] = rng.bytes(64)
    bad = tmp_path / f"bad{suffix}"
    bad.write_bytes(bytes(data))
    out = tmp_path / "poses.json"
    r = run("video", bad, "--out", out, "-q", *fast(tiny_model))
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    n = len(doc["frames"])
    if find_ffmpeg() is not None:  # FFmpeg decodes past the damage, as its own tools do (issue 26)
        assert n == 40 and [f["frame"] for f in doc["frames"]] == list(range(40))
        assert "decode_error" not in doc and r.stderr == ""
        return
    assert 10 <= n < 40 and [f["frame"] for f in doc["frames"]] == list(range(n))
    assert f"stopped at frame {n} of 40" in doc["decode_error"]
    assert re.fullmatch(rf"Warning: {re.escape(str(bad))}: stopped at frame {n} of 40: .*\n", r.stderr)


def _mp4_with_variable_frame_rate(src: Path, dst: Path, fast_from: int) -> list[float]:
    """Rewrite the stts box of an OpenCV-written MP4 so frames from ``fast_from`` on last
    half as long; returns every frame's presentation time in seconds.

    OpenCV writes moov after mdat, so growing moov shifts no chunk offset.
    """
    data = bytearray(src.read_bytes())
    containers = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}

    def find(start: int, end: int, chain: list[int]):
        pos = start
        while pos + 8 <= end:
            size, kind = struct.unpack(">I4s", data[pos : pos + 8])
            if kind == b"stts":
                return chain + [pos]
            if kind in containers and (found := find(pos + 8, pos + size, chain + [pos])):
                return found
            pos += max(size, 8)
        return None

    chain = find(0, len(data), [])
    assert chain and data.find(b"mdat") < chain[0], "unexpected MP4 layout"
    stts = chain[-1]
    size, _, _, entries = struct.unpack(">I4sII", data[stts : stts + 16])
    n, delta = struct.unpack(">II", data[stts + 16 : stts + 24])
    assert entries == 1 and delta % 2 == 0
    table = struct.pack(">IIII", fast_from, delta, n - fast_from, delta // 2)
    box = struct.pack(">I4sII", 16 + len(table), b"stts", 0, 2) + table
    for pos in chain[:-1]:
        struct.pack_into(">I", data, pos, struct.unpack(">I", data[pos : pos + 4])[0] + len(box) - size)
    data[stts : stts + size] = box
    dst.write_bytes(bytes(data))
    step = 1 / 10  # write_video's frame rate
    return [i * step if i <= fast_from else fast_from * step + (i - fast_from) * step / 2 for i in range(n)]


def test_variable_frame_rate_video_keeps_each_frames_time(tiny_model, tmp_path):
    cfr = write_video(tmp_path / "cfr.mp4", 20)
    times = _mp4_with_variable_frame_rate(cfr, tmp_path / "vfr.mp4", 10)
    out = tmp_path / "poses.json"
    r = run("video", tmp_path / "vfr.mp4", "--out", out, "-q", *fast(tiny_model))
    assert r.exit_code == 0, r.output
    frames = json.loads(out.read_text())["frames"]
    assert [f["frame"] for f in frames] == list(range(20))
    np.testing.assert_allclose([f["time"] for f in frames], times, atol=0.002)


def test_vfr_helper_really_makes_a_variable_frame_rate_clip(tmp_path):
    cfr = write_video(tmp_path / "cfr.mp4", 20)
    times = _mp4_with_variable_frame_rate(cfr, tmp_path / "vfr.mp4", 10)
    cap = cv2.VideoCapture(str(tmp_path / "vfr.mp4"))
    seen = []
    while cap.read()[0]:
        seen.append(cap.get(cv2.CAP_PROP_POS_MSEC) / 1000)
    cap.release()
    np.testing.assert_allclose(seen, times, atol=0.002)


def test_unsupported_files_in_a_folder_are_skipped_and_counted(tiny_model, tmp_path):
    pytest.importorskip("posecli.cli.batch")
    root = tmp_path / "in"
    root.mkdir()
    photo(root / "a.jpg")
    photo(root / "b.PNG", seed=1)
    (root / "notes.txt").write_text("x")
    (root / "data.csv").write_text("1,2")
    (root / "archive.tar.gz").write_bytes(b"\x1f\x8b")
    (root / ".hidden.jpg").write_bytes(b"ignored, hidden")
    out = tmp_path / "out"
    r = run("batch", root, "--out", out, *fast(tiny_model))
    assert r.exit_code == 0, r.output
    assert "2 inputs, 2 to do, 3 other files skipped" in r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "b.json"]


# ---------------------------------------------------------------------------------------------
# Issue 19: names OpenCV cannot take, pipes, the last fraction of a second, output folders
# ---------------------------------------------------------------------------------------------
def test_a_video_whose_name_is_not_utf8_is_processed_in_video_and_batch(tiny_model, tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    clip = write_video(root / "plain.mp4", 5).rename(not_utf8(root, b"cl\xefp", ".mp4"))  # OpenCV would crash
    photo(root / "a.jpg")
    out = tmp_path / "poses.json"
    rendered = not_utf8(tmp_path, b"r\xe9", ".mp4")
    # subprocesses: before the fix OpenCV crashed the whole interpreter (exit 139)
    proc = subprocess.run(posecli_cmd("video", clip, "--out", out, "--render", rendered, "-q", *fast(tiny_model)),
                          capture_output=True, env=subprocess_env(), check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert len(doc["frames"]) == 5 and os.fsencode(doc["video"]["file"]) == os.fsencode(str(clip))
    assert rendered.stat().st_size > 0
    batch = subprocess.run(posecli_cmd("batch", root, "--out", tmp_path / "out", "--render", "-q", *fast(tiny_model)),
                           capture_output=True, env=subprocess_env(), check=False, timeout=120)
    assert batch.returncode == 0, batch.stderr
    names = sorted(os.fsencode(p.name) for p in (tmp_path / "out").iterdir())
    assert names == [b"a.json", b"a_rendered.jpg", b"cl\xefp.json", b"cl\xefp_rendered.mp4"]
    assert not temp_files(tmp_path)


def test_start_inside_the_last_frame_and_pipes(tiny_model, tmp_path):
    clip = write_video(tmp_path / "clip.mp4", 20)  # 2.0 s at 10 frames/s
    out = tmp_path / "poses.json"
    r = run("video", clip, "--out", out, "--start", "1.95", "-q", *fast(tiny_model))
    assert r.exit_code == 0, r.output
    assert [f["frame"] for f in json.loads(out.read_text())["frames"]] == [19]
    r = run("video", clip, "--out", out, "--start", "2.0", "-q", *fast(tiny_model))
    assert r.exit_code == 1 and "past the end of the video (2.00 s)" in r.stderr
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    r = run("video", fifo, "--out", out, "-q", *fast(tiny_model))
    assert r.exit_code == 1 and r.stderr == f"Error: {fifo}: is a FIFO (named pipe), not a regular file\n"


def test_video_output_folders_are_made_and_checked_before_work(tiny_model, tmp_path):
    clip = write_video(tmp_path / "clip.mp4", 3)
    r = run("video", clip, "--out", f"{tmp_path / 'new'}{os.sep}", "-q", *fast(tiny_model))
    assert r.exit_code == 0, r.output
    assert (tmp_path / "new").is_dir() and json.loads((tmp_path / "new" / "clip.json").read_text())["complete"]
    existing = tmp_path / "existing"
    existing.write_text("keep me")
    r = run("video", clip, "--format", "openpose", "--out", existing, "-q", *fast(tiny_model))
    assert r.exit_code == 2 and "existing is a file, give --out a folder" in r.stderr
    assert existing.read_text() == "keep me"
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    r = run("video", clip, "--format", "openpose", "--out", blocker / "frames", "-q", "--model", tmp_path / "none.onnx")
    assert r.exit_code == 1
    assert r.stderr == f"Error: {blocker / 'frames'}: cannot create output directory (Not a directory)\n"
