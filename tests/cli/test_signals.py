"""SIGINT / SIGTERM to real `posecli` processes: finished results kept, no partial file, reruns resume.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import (
    photo,
    posecli_cmd,
    signal_after_progress,
    subprocess_env,
    temp_files,
    write_video,
)


def _signal_when(cmd: list[str], cwd: Path, ready, sig: int) -> tuple[int, str, float]:
    """Run ``cmd``; once ``ready()`` is true send ``sig``. Returns (exit code, stderr, seconds to stop)."""
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=subprocess_env(), cwd=cwd)
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: proc.stderr.read1(4096), b"")), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while not ready():
            assert proc.poll() is None, "finished before the signal: " + b"".join(chunks).decode(errors="replace")[-300:]
            assert time.monotonic() < deadline, "the run never got going"
            time.sleep(0.005)
        proc.send_signal(sig)
        t0 = time.monotonic()
        code = proc.wait(30)
        stop_s = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(5)
    return code, b"".join(chunks).decode(errors="replace"), stop_s


SIGNALS = [(signal.SIGINT, 130, "Interrupted"), (signal.SIGTERM, 143, "Terminated")]


@pytest.mark.slow
@pytest.mark.parametrize("sig, code, word", SIGNALS)
def test_signal_during_batch_keeps_finished_results_and_a_rerun_resumes(sig, code, word, tiny_model, tmp_path):
    pytest.importorskip("posecli.cli.batch")
    root = tmp_path / "in"
    root.mkdir()
    for i in range(3):
        photo(root / f"a{i}.jpg", seed=i)
    write_video(root / "z.mp4", 250, size_wh=(160, 120))  # sorted last: the signal lands in it
    out = tmp_path / "out"
    opts = ["-m", tiny_model, "--device", "cpu", "--height", "768", "--scales", "1,0.9", "-P", "peak_threshold=0.99"]
    cmd = posecli_cmd("batch", root, "--out", out, *opts)
    images_done = lambda: all((out / f"a{i}.json").exists() for i in range(3))  # noqa: E731
    exit_code, stderr, stop_s = _signal_when(cmd, tmp_path, images_done, sig)
    assert exit_code == code, stderr[-500:]
    assert stop_s < 2.0, f"took {stop_s:.1f} s to stop"
    assert f"{word}: 3 of 4 inputs done" in stderr and "Traceback" not in stderr
    assert sorted(p.name for p in out.iterdir()) == ["a0.json", "a1.json", "a2.json"]  # nothing partial
    for i in range(3):
        doc = json.loads((out / f"a{i}.json").read_text())
        assert doc["complete"] is True and len(doc["images"]) == 1
    if sig != signal.SIGINT:
        return  # one rerun is enough to show resuming
    again = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert again.returncode == 0, again.stderr[-500:]
    assert "4 inputs, 1 to do, 3 already done" in again.stderr
    doc = json.loads((out / "z.json").read_text())
    assert doc["complete"] is True and len(doc["frames"]) == 250
    assert not temp_files(out)


@pytest.mark.slow
@pytest.mark.parametrize("sig, code, word", SIGNALS)
def test_signal_during_video_stops_fast_keeps_valid_json_and_a_rerun_completes(sig, code, word, tiny_model,
                                                                                tmp_path):
    clip = write_video(tmp_path / "clip.mp4", 250, size_wh=(160, 120))
    out = tmp_path / "poses.json"
    opts = ["-m", tiny_model, "--device", "cpu", "--height", "768", "--scales", "1,0.9", "-P", "peak_threshold=0.99"]
    cmd = posecli_cmd("video", clip, "--out", out, *opts)
    tmp_json = lambda: any(p.stat().st_size > 2000 for p in tmp_path.glob(".poses.json.*.tmp"))  # noqa: E731
    exit_code, stderr, stop_s = _signal_when(cmd, tmp_path, tmp_json, sig)
    assert exit_code == code, stderr[-500:]
    assert stop_s < 2.0, f"took {stop_s:.1f} s to stop"
    doc = json.loads(out.read_text())  # complete-so-far, valid
    n = len(doc["frames"])
    assert doc["complete"] is False and 1 <= n < 250
    assert [f["frame"] for f in doc["frames"]] == list(range(n))
    assert f"{word}: {n} frames written" in stderr and not temp_files(tmp_path)
    if sig == signal.SIGINT:  # the same command again replaces it with the whole clip
        again = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), timeout=120)
        assert again.returncode == 0, again.stderr[-500:]
        doc = json.loads(out.read_text())
        assert doc["complete"] is True and len(doc["frames"]) == 250


@pytest.mark.slow
@pytest.mark.parametrize("sig, code, word", SIGNALS)
def test_signal_during_image_leaves_finished_photos_and_no_temporary_file(sig, code, word, tiny_model, tmp_path):
    photos = [photo(tmp_path / f"p{i:03d}.jpg", (240, 320), seed=i) for i in range(300)]
    out = tmp_path / "poses"
    out.mkdir()
    cmd = posecli_cmd("image", *photos, "--out", out, "-m", tiny_model, "--device", "cpu", "-P", "peak_threshold=0.99")
    exit_code, stderr, stop_s = _signal_when(cmd, tmp_path, lambda: len(list(out.glob("p*.json"))) >= 3, sig)
    assert exit_code == code, stderr[-500:]
    assert stop_s < 2.0, f"took {stop_s:.1f} s to stop"
    n = int(re.search(rf"{word}: (\d+) of 300 photos written".encode(), stderr.encode()).group(1))
    written = sorted(out.iterdir())
    assert 3 <= n < 300 and [p.name for p in written] == [f"p{i:03d}.json" for i in range(n)]
    assert all(json.loads(p.read_text())["complete"] is True for p in written)
    assert not temp_files(tmp_path)


# ---------------------------------------------------------------------------------------------
# Issue 19: a second signal while stopping, SIGHUP, `image` with one --out file
# ---------------------------------------------------------------------------------------------
def _signals_after(cmd: list[str], cwd: Path, marker: bytes, signals: list[int], gap_s: float = 0.0) -> tuple[int, str]:
    """Once ``marker`` shows in ``cmd``'s progress, send ``signals``, ``gap_s`` seconds apart."""

    def send(proc):
        for i, sig in enumerate(signals):
            if i:
                time.sleep(gap_s)
            proc.send_signal(sig)

    return signal_after_progress(cmd, cwd, marker, send)


@pytest.mark.slow
@pytest.mark.parametrize("command, sig, code", [("video", signal.SIGINT, 130), ("batch", signal.SIGTERM, 143)])
def test_a_second_signal_while_stopping_exits_cleanly(command, sig, code, tiny_model, tmp_path):
    """The second signal lands while the first one's cleanup runs, or while the process
    exits: never an abort (134), a kill by signal, a traceback or a temporary file left."""
    write_video(tmp_path / "clip.mp4", 250, size_wh=(160, 120))
    opts = ["-m", tiny_model, "--device", "cpu", "--height", "768", "--scales", "1,0.9", "-P", "peak_threshold=0.99"]
    if command == "video":
        out = tmp_path / "poses.json"
        cmd = posecli_cmd("video", tmp_path / "clip.mp4", "--out", out, "--render", tmp_path / "r.mp4", *opts)
    else:
        (tmp_path / "in").mkdir()
        (tmp_path / "clip.mp4").rename(tmp_path / "in" / "clip.mp4")
        out = tmp_path / "out"
        cmd = posecli_cmd("batch", tmp_path / "in", "--out", out, "--render", *opts)
    for gap_s in (0.0, 0.1, 0.25):  # the abort was a race: land in different phases of the stop
        exit_code, stderr = _signals_after(cmd, tmp_path, rb"\b([3-9]|\d\d+)/250\b", [sig, sig], gap_s)
        assert exit_code == code, f"gap {gap_s} s: " + stderr[-500:]
        assert "terminate called" not in stderr and "Traceback" not in stderr and "Aborted" not in stderr
        assert not temp_files(tmp_path)
        if command == "video" and out.exists():  # only valid JSON, marked incomplete
            assert json.loads(out.read_text())["complete"] is False
        if command == "batch":
            assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.slow
def test_sighup_stops_like_sigterm_and_keeps_valid_json(tiny_model, tmp_path):
    clip = write_video(tmp_path / "clip.mp4", 250, size_wh=(160, 120))
    out = tmp_path / "poses.json"
    cmd = posecli_cmd("video", clip, "--out", out, "-m", tiny_model, "--device", "cpu", "--height", "768",
                      "-P", "peak_threshold=0.99")
    exit_code, stderr = _signals_after(cmd, tmp_path, rb"\b([3-9]|\d\d+)/250\b", [signal.SIGHUP])
    assert exit_code == 129, stderr[-500:]
    doc = json.loads(out.read_text())
    assert doc["complete"] is False and f"Terminated: {len(doc['frames'])} frames written" in stderr
    assert not temp_files(tmp_path)


@pytest.mark.slow
def test_signal_during_image_with_one_out_file_keeps_the_finished_photos(tiny_model, tmp_path):
    photos = [photo(tmp_path / f"p{i:03d}.jpg", (240, 320), seed=i) for i in range(300)]
    out = tmp_path / "m.json"
    cmd = posecli_cmd("image", *photos, "--out", out, "-m", tiny_model, "--device", "cpu", "-P", "peak_threshold=0.99")
    exit_code, stderr = _signals_after(cmd, tmp_path, rb"\b([3-9]|\d\d+)/300 photos", [signal.SIGINT])
    assert exit_code == 130, stderr[-500:]
    doc = json.loads(out.read_text())
    n = len(doc["images"])
    assert doc["complete"] is False and 3 <= n < 300
    assert [im["file"] for im in doc["images"]] == [str(p) for p in photos[:n]]
    assert stderr.endswith(f'Interrupted: {n} of 300 photos written to {out} (marked "complete": false).\n')
    assert not temp_files(tmp_path)
