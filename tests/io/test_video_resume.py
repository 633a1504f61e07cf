"""Issue 26 case 11: a valid variable-frame-rate MKV is not "truncated" (Matroska's frame count
is an estimate), and an MP4 damaged in the middle is decoded past the damage, as FFmpeg does;
a file really cut short is still reported. Files made with the ffmpeg program."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.helpers import fast, ffmpeg_tools, run


@pytest.fixture
def ffmpeg():
    tools = ffmpeg_tools()
    if tools is None:
        pytest.skip("ffmpeg and ffprobe are needed to make the clips")
    return tools


def _make(ffmpeg_exe: str, path, *args) -> None:
    cmd = [ffmpeg_exe, "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25:duration=8", *args,
           "-c:v", "libx264", "-g", "25", "-pix_fmt", "yuv420p", str(path)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"this ffmpeg cannot make the clip: {done.stderr.strip()[-200:]}")


def _frames_ffprobe(ffprobe: str, path) -> int:
    done = subprocess.run([ffprobe, "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                           "stream=nb_read_frames", "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=False)
    return int(done.stdout.strip())


def _poses(clip, tmp_path, model) -> dict:
    r = run("video", clip, "--out", tmp_path / "p.json", "-q", *fast(model))
    assert r.exit_code == 0, r.output
    return json.loads((tmp_path / "p.json").read_text())


def test_a_variable_frame_rate_mkv_is_read_to_its_end_and_not_called_truncated(ffmpeg, tiny_model, tmp_path):
    clip = tmp_path / "vfr.mkv"
    # 2 s at 25 fps, then frames 2x apart, then 2x closer: the container's estimate is off
    speed = "if(lt(N,50),N,if(lt(N,120),50+(N-50)*2,190+(N-120)*0.5))/25/TB"
    _make(ffmpeg[0], clip, "-vf", f"setpts='{speed}'", "-fps_mode", "vfr")
    doc = _poses(clip, tmp_path, tiny_model)
    assert "decode_error" not in doc, doc.get("decode_error")
    assert len(doc["frames"]) == _frames_ffprobe(ffmpeg[1], clip) and doc["video"]["frame_count"] > len(doc["frames"])


def test_an_mp4_damaged_in_the_middle_is_decoded_past_the_damage(ffmpeg, tiny_model, tmp_path):
    whole = tmp_path / "whole.mp4"
    _make(ffmpeg[0], whole)
    data = bytearray(whole.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 3000] = bytes(3000)  # a run of zeros over ~15 frames
    clip = tmp_path / "damaged.mp4"
    clip.write_bytes(bytes(data))
    doc = _poses(clip, tmp_path, tiny_model)
    frames = doc["frames"]
    assert "decode_error" not in doc, doc.get("decode_error")
    assert [f["frame"] for f in frames] == list(range(200))  # every frame, in place, as FFmpeg gives them
    assert frames[-1]["time"] == pytest.approx(199 / 25)


def test_an_mp4_cut_short_is_still_reported(ffmpeg, tiny_model, tmp_path):
    whole = tmp_path / "whole.mp4"
    _make(ffmpeg[0], whole, "-movflags", "+faststart")  # the index first: the cut file opens
    clip = tmp_path / "cut.mp4"
    clip.write_bytes(whole.read_bytes()[: whole.stat().st_size * 6 // 10])
    doc = _poses(clip, tmp_path, tiny_model)
    assert doc["decode_error"].startswith("stopped at frame ") and len(doc["frames"]) < 200
