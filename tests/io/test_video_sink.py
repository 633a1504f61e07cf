"""Rendered videos: H.264 through FFmpeg, the clip's sound kept, phone rotation honoured, the
OpenCV fallback, and a terminal Ctrl-C that still leaves a playable partial video."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import cv2
import numpy as np
import pytest

from posecli.io.ffmpeg import find_ffmpeg, has_encoder
from posecli.io.video import VideoSource
from posecli.io.video_sink import VideoSink

from tests.helpers import (
    FPS,
    fast,
    ffmpeg_clip,
    ffmpeg_tools,
    ffprobe_streams,
    invoke,
    photo_clip,
    posecli_cmd,
    subprocess_env,
    temp_files,
    write_video,
)

needs_ffmpeg = pytest.mark.skipif(ffmpeg_tools() is None, reason="ffmpeg and ffprobe are not installed")


def _kinds(path) -> dict[str, dict]:
    return {s["codec_type"]: s for s in ffprobe_streams(path)}


def _first_frame(path) -> np.ndarray:
    cap = cv2.VideoCapture(str(path))
    try:
        ok, frame = cap.read()
        assert ok
        return frame
    finally:
        cap.release()


@needs_ffmpeg
def test_whole_clip_render_is_h264_with_the_sound(tiny_model, tmp_path):
    plain = write_video(tmp_path / "plain.mp4", 20, size_wh=(128, 96))
    clip = ffmpeg_clip(tmp_path / "clip.mp4", plain, audio=True)
    out = tmp_path / "pose.mp4"
    r = invoke("video", clip, "--render", out, "--out", tmp_path / "p.json", "-q", *fast(tiny_model))
    assert r.exit_code == 0, r.output
    streams = _kinds(out)
    assert "audio" in streams and streams["audio"]["codec_name"] == "aac"
    video = streams["video"]
    if has_encoder(find_ffmpeg(), "libx264"):
        assert video["codec_name"] == "h264" and video["pix_fmt"] == "yuv420p"  # what browsers play
    assert (video["width"], video["height"]) == (128, 96)
    cap = cv2.VideoCapture(str(out))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(FPS) and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 20
    cap.release()
    assert r.stderr == "" and not temp_files(tmp_path)


@needs_ffmpeg
@pytest.mark.parametrize("selection", [["--step", "2"], ["--start", "0.5"], ["--end", "1"]])
def test_sound_is_skipped_with_a_note_when_frames_do_not_line_up(selection, tiny_model, tmp_path):
    clip = ffmpeg_clip(tmp_path / "clip.mp4", write_video(tmp_path / "plain.mp4", 20), audio=True)
    out = tmp_path / "pose.mp4"
    r = invoke("video", clip, "--render", out, "--out", tmp_path / "p.json", *selection, *fast(tiny_model))
    assert r.exit_code == 0, r.output
    assert "the clip's sound is not kept" in r.stderr and r.stderr.count("Note:") == 1
    assert "audio" not in _kinds(out)
    silent = write_video(tmp_path / "silent.mp4", 20)
    r = invoke("video", silent, "--render", out, "--out", tmp_path / "p.json", *selection, *fast(tiny_model))
    assert r.exit_code == 0 and "Note" not in r.stderr  # no sound, nothing to say


@needs_ffmpeg
def test_sound_the_mp4_cannot_hold_is_reencoded_and_avi_says_it_has_none(tiny_model, tmp_path):
    plain = write_video(tmp_path / "plain.mp4", 10)
    clip = tmp_path / "pcm.mkv"
    ffmpeg, _ = ffmpeg_tools()
    subprocess.run([ffmpeg, "-loglevel", "error", "-y", "-i", plain, "-f", "lavfi", "-i", "sine=sample_rate=8000",
                    "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "pcm_s16le", "-shortest", clip], check=True)
    r = invoke("video", clip, "--render", tmp_path / "o.mp4", "--out", tmp_path / "p.json", *fast(tiny_model))
    assert r.exit_code == 0, r.output
    assert _kinds(tmp_path / "o.mp4")["audio"]["codec_name"] == "aac" and "Note" not in r.stderr
    r = invoke("video", clip, "--render", tmp_path / "o.avi", "--out", tmp_path / "p.json", *fast(tiny_model))
    assert r.exit_code == 0 and "sound is not kept in .avi" in r.stderr


@needs_ffmpeg
def test_rotated_phone_clip_comes_out_upright_with_upright_keypoints(mini_set, default_model, tmp_path):
    # Frames stored turned clockwise, tagged to be shown turned back, as phones do.
    image = cv2.imread(str(mini_set["images"][0]))  # the skier, 640x425
    image = cv2.resize(image, (320, 212))
    stored = np.ascontiguousarray(np.rot90(image, -1))
    raw = write_video(tmp_path / "raw.mp4", 3, size_wh=(stored.shape[1], stored.shape[0]), frame_fn=lambda i: stored)
    clip = ffmpeg_clip(tmp_path / "phone.mp4", raw, audio=True, rotation=90)
    assert any(sd.get("rotation") for s in ffprobe_streams(clip) for sd in s.get("side_data_list", []))
    source = VideoSource(clip)
    assert source.size_wh == (320, 212) and source.rotation in (90, 270)

    out = tmp_path / "pose.mp4"
    opts = ["-m", default_model, "--device", "cpu", "-q"]
    r = invoke("video", clip, "--render", out, "--out", tmp_path / "v.json", *opts)
    assert r.exit_code == 0, r.output
    video = _kinds(out)["video"]
    assert (video["width"], video["height"]) == (320, 212) and "audio" in _kinds(out)
    assert not any(sd.get("rotation") for sd in video.get("side_data_list", []))  # upright pixels, no tag
    # Upright: the annotated video's frame looks like the upright picture, not the stored one.
    frame = _first_frame(out).astype(float)
    assert np.abs(frame - image).mean() < np.abs(frame - cv2.resize(stored, (320, 212))).mean() / 2

    doc = json.loads((tmp_path / "v.json").read_text())
    assert (doc["video"]["width"], doc["video"]["height"]) == (320, 212) and doc["video"]["rotation"] in (90, 270)
    assert cv2.imwrite(str(tmp_path / "upright.png"), image)
    r = invoke("image", tmp_path / "upright.png", "--out", tmp_path / "i.json", *opts[:-1])
    assert r.exit_code == 0, r.output
    want = json.loads((tmp_path / "i.json").read_text())["images"][0]["people"][0]["keypoints"]
    got = doc["frames"][0]["people"][0]["keypoints"]
    near = [np.hypot(want[k][0] - got[k][0], want[k][1] - got[k][1]) for k in want if want[k] and got.get(k)]
    assert len(near) >= 10 and np.median(near) < 4  # same body parts, same upright pixels (codec noise aside)


@needs_ffmpeg
def test_odd_frame_size_is_padded_for_h264(tmp_path):
    sink = VideoSink(tmp_path / "odd.mp4", 10, (97, 63))
    for i in range(5):
        sink.write(np.full((63, 97, 3), 40 * i, np.uint8))
    sink.close()
    video = _kinds(tmp_path / "odd.mp4")["video"]
    if sink.codec == "h264":
        assert (video["width"], video["height"]) == (98, 64)  # one black column and row
    assert int(video["nb_frames"]) == 5 and not temp_files(tmp_path)


def test_without_ffmpeg_opencv_writes_mp4v_and_says_so_once(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("POSECLI_FFMPEG", str(tmp_path / "no-such-ffmpeg"))
    clip = write_video(tmp_path / "clip.mp4", 4)
    out = tmp_path / "pose.mp4"
    r = invoke("video", clip, "--render", out, "--out", tmp_path / "p.json", *fast(tiny_model))
    assert r.exit_code == 0, r.output
    assert r.stderr.count("no FFmpeg found") == 1 and "mp4v" in r.stderr
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
    cap.release()


def test_a_discarded_sink_leaves_nothing_and_no_process(tmp_path):
    sink = VideoSink(tmp_path / "gone.mp4", 10, (64, 48))
    sink.write(np.zeros((48, 64, 3), np.uint8))
    proc = sink._proc
    sink.close(commit=False)
    assert not list(tmp_path.iterdir())
    assert proc is None or proc.poll() is not None


@needs_ffmpeg
def test_ctrl_c_in_a_terminal_leaves_a_playable_partial_video(tiny_model, tmp_path):
    """Ctrl-C reaches the whole foreground process group; FFmpeg must not die with posecli's
    frames half-written: the kept partial video has to play."""
    clip = write_video(tmp_path / "long.mp4", 400, size_wh=(160, 120))
    out = tmp_path / "pose.mp4"
    cmd = posecli_cmd("video", clip, "--render", out, "--out", tmp_path / "p.json", "--device", "cpu",
                      "-m", tiny_model, "--height", "512", "-P", "peak_threshold=0.99", "-q")
    proc = subprocess.Popen(cmd, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)  # its own group, signalled like a terminal does
    try:
        deadline = time.monotonic() + 60
        while not any(p.stat().st_size > 3000 for p in tmp_path.glob(".p.json.*.tmp")):  # ~50 frames done
            assert proc.poll() is None, proc.stderr.read().decode()[-300:]
            assert time.monotonic() < deadline, "the run never got going"
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGINT)
        code = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 130
    frames = int(_kinds(out)["video"]["nb_frames"])
    doc = json.loads((tmp_path / "p.json").read_text())
    assert doc["complete"] is False and 0 < frames <= doc["frames_done"] < 400
    assert not temp_files(tmp_path) and not list(tmp_path.glob(".pose.*"))


def test_photo_clip_helper_still_renders_without_sound(tiny_model, tmp_path, mini_set):
    clip = photo_clip(tmp_path / "c.avi", mini_set["images"][0], 3)
    r = invoke("video", clip, "--render", tmp_path / "c.mp4", "--out", tmp_path / "c.json", *fast(tiny_model))
    assert r.exit_code == 0, r.output
    assert "sound" not in r.stderr  # a clip without sound is no reason for a note
