"""Issue 26 case 2: a disk that fills while ``--render`` writes never replaces the previous good
video with a broken one (an MP4 without its index, which FFmpeg finishes with exit 0): exit 1
with an error naming the video, and the old video plays as before.

A real tmpfs (needs root and mount) sized around the new video's size, so the disk fills in
every phase: while frames are written, while the index is written, while the JSON closes.
Without mount, a file-size limit (RLIMIT_FSIZE) does the same for the encoder.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import posecli_cmd, subprocess_env, temp_files, write_video

PAGE = 4096


@contextlib.contextmanager
def tmpfs(folder: Path, size_bytes: int):
    """A tmpfs of ``size_bytes`` mounted at ``folder`` (skips the test where mount is refused)."""
    folder.mkdir(exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(folder)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _can_mount() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None and shutil.which("umount") is not None


def _plays(video: Path) -> bool:
    done = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                           "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", str(video)],
                          capture_output=True, text=True, check=False)
    return done.returncode == 0 and int(done.stdout.strip() or 0) > 0


def _noise_clip(path: Path) -> Path:
    rng = np.random.default_rng(0)  # noise: an encoder output that is large and hard to predict
    return write_video(path, 40, size_wh=(320, 240), frame_fn=lambda i: rng.integers(0, 255, (240, 320, 3), np.uint8))


def _render(clip: Path, folder: Path, model: Path, preexec=None) -> subprocess.CompletedProcess:
    cmd = posecli_cmd("video", clip, "--out", folder / "v.json", "--render", folder / "v.mp4", "-m", model,
                      "--device", "cpu", "--height", "64", "-q")
    return subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), timeout=300,
                          preexec_fn=preexec, check=False)


def _check(done: subprocess.CompletedProcess, folder: Path, old: bytes) -> None:
    video = folder / "v.mp4"
    assert "Traceback" not in done.stderr
    if done.returncode == 0:
        assert _plays(video), "exit 0 with an unplayable video"
    else:
        assert done.returncode == 1, done.stderr
        lines = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
        assert len(lines) == 1, done.stderr
        # the file whose writing failed: the video, or the JSON when it filled the disk first
        assert ("v.mp4" in lines[0]) != ("v.json" in lines[0]), done.stderr
        assert video.read_bytes() == old, "the previous video was replaced"
    assert not temp_files(folder)
    if (folder / "v.json").exists():  # what the JSON says it holds, it holds (issue 26 case 11)
        doc = json.loads((folder / "v.json").read_text())
        assert doc["frames_done"] == len(doc["frames"])


@pytest.mark.slow
def test_a_disk_filling_while_rendering_keeps_the_previous_video(tiny_model, tmp_path):
    if shutil.which("ffprobe") is None or shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg and ffprobe are needed")
    if not _can_mount():
        pytest.skip("needs root to mount a tmpfs (the RLIMIT_FSIZE test covers the rest)")
    clip = _noise_clip(tmp_path / "noise.mp4")
    old = write_video(tmp_path / "old.mp4", 5, size_wh=(64, 48)).read_bytes()
    sized = tmp_path / "sized"
    sized.mkdir()
    assert _render(clip, sized, tiny_model).returncode == 0
    need = sum(-(-p.stat().st_size // PAGE) * PAGE for p in sized.iterdir()) + -(-len(old) // PAGE) * PAGE
    failed = 0
    for k, short in enumerate((2, 4, 6, 8, 12, 24, 48, 96)):  # pages missing: each phase of the writing
        with tmpfs(tmp_path / f"full{k}", need - short * PAGE) as folder:
            (folder / "v.mp4").write_bytes(old)
            done = _render(clip, folder, tiny_model)
            _check(done, folder, old)
            failed += done.returncode == 1
    assert failed >= 4  # the disk was really full


def _file_size_limit(limit: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.slow
def test_a_file_size_limit_while_rendering_keeps_the_previous_video(tiny_model, tmp_path):
    if shutil.which("ffprobe") is None or shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg and ffprobe are needed")
    clip = _noise_clip(tmp_path / "noise.mp4")
    old = write_video(tmp_path / "old.mp4", 5, size_wh=(64, 48)).read_bytes()
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "v.mp4").write_bytes(old)
    done = _render(clip, folder, tiny_model, preexec=_file_size_limit(300_000))
    assert done.returncode == 1, done.stderr
    _check(done, folder, old)
