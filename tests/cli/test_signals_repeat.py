"""Issue 26 case 1: one stop delivered twice (GNU `timeout`, a signal to the process and to its
process group) is one request: valid JSON and a playable video every time, never
"Stopped at once (second signal)". A genuine second signal later still stops at once.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.helpers import posecli_cmd, signal_after_progress, subprocess_env, temp_files, write_video

OPTS = ["--device", "cpu", "--height", "768", "--scales", "1,0.9", "-P", "peak_threshold=0.99"]


def _frames_in(video: Path) -> int:
    """Frames FFmpeg decodes from ``video`` (0 when it cannot read it)."""
    done = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                           "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", str(video)],
                          capture_output=True, text=True, check=False)
    return int(done.stdout.strip() or 0) if done.returncode == 0 else 0


def _check_outputs(folder: Path, stderr: str) -> None:
    """Whatever was written is whole: JSON valid, the video plays every frame the JSON holds."""
    assert "Stopped at once" not in stderr and "Traceback" not in stderr, stderr[-500:]
    out, render = folder / "t.json", folder / "t.mp4"
    assert not temp_files(folder)
    if not out.exists():  # stopped before the first frame: nothing written, and said so
        assert "nothing written" in stderr, stderr[-500:]
        return
    doc = json.loads(out.read_text())
    assert doc["complete"] is False and doc["frames_done"] == len(doc["frames"])
    if doc["frames"]:  # stopped before the first frame: no video at all (none with 0 frames)
        assert _frames_in(render) == len(doc["frames"])
    else:
        assert not render.exists()


def _run_killed_by_group(cmd: list[str], cwd: Path, sig: int, gap_s: float) -> tuple[int, str]:
    """Start ``cmd`` in a session of its own; once it shows progress, deliver ``sig`` as GNU
    timeout does: to the process, then (``gap_s`` later) to its whole process group."""

    def send(proc):
        os.kill(proc.pid, sig)
        time.sleep(gap_s)
        os.killpg(proc.pid, sig)

    return signal_after_progress(cmd, cwd, rb"\b([3-9]|\d\d+)/250\b", send, new_session=True, wait_s=60)


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_one_stop_sent_to_the_process_and_its_group_keeps_both_outputs(sig, code, tiny_model, tmp_path):
    if shutil.which("ffprobe") is None:
        pytest.skip("ffprobe is not installed")
    clip = write_video(tmp_path / "clip.mp4", 250, size_wh=(160, 120))
    for attempt, gap_s in enumerate((0.0, 0.0, 0.02, 0.1, 0.3)):  # the loss was a race: land in several phases
        work = tmp_path / f"run{attempt}"
        work.mkdir()
        cmd = posecli_cmd("video", clip, "--out", work / "t.json", "--render", work / "t.mp4", "-m", tiny_model, *OPTS)
        exit_code, stderr = _run_killed_by_group(cmd, work, sig, gap_s)
        assert exit_code == code, stderr[-500:]
        _check_outputs(work, stderr)
        assert (work / "t.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize("sig", ["INT", "TERM"])
def test_gnu_timeout_keeps_valid_json_and_a_playable_video(sig, tiny_model, tmp_path):
    if shutil.which("timeout") is None or shutil.which("ffprobe") is None:
        pytest.skip("GNU timeout and ffprobe are needed")
    clip = write_video(tmp_path / "clip.mp4", 2500, size_wh=(160, 120))
    for attempt in range(5):
        work = tmp_path / f"run{attempt}"
        work.mkdir()
        cmd = ["timeout", "-s", sig, "5", *posecli_cmd("video", clip, "--out", work / "t.json",
                                                       "--render", work / "t.mp4", "-m", tiny_model, *OPTS)]
        done = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), cwd=work, timeout=120, check=False)
        assert done.returncode == 124, done.stderr[-500:]  # timeout's own code: it stopped the run
        _check_outputs(work, done.stderr)


_HANDLERS = textwrap.dedent("""
    import os, signal, sys, time
    from posecli.cli import common
    common.install_signal_handlers()
    with common.safe_interrupts() as held:
        os.kill(os.getpid(), signal.SIGINT)          # the first request: held for a safe point
        os.kill(os.getpid(), signal.SIGINT)          # the same request delivered again
        assert isinstance(held.pending, KeyboardInterrupt)
        print("one request", flush=True)
        if sys.argv[1] == "later":                   # a person's second Ctrl-C, later
            sig, at = common._Signals.first
            common._Signals.first = (sig, at - 2 * common.SAME_REQUEST_S)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        print("still running", flush=True)
""")


@pytest.mark.parametrize("when, code, lines", [("again", 0, ["one request", "still running"]),
                                               ("later", 130, ["one request"])])
def test_a_second_signal_later_still_stops_at_once(when, code, lines):
    done = subprocess.run([sys.executable, "-c", _HANDLERS, when], capture_output=True, text=True,
                          env=subprocess_env(), timeout=60, check=False)
    assert done.returncode == code, done.stderr
    assert done.stdout.split("\n")[:-1] == lines
    assert ("Stopped at once (second signal)" in done.stderr) == (when == "later")


_NESTED = textwrap.dedent("""
    import signal, time
    from posecli.cli import common
    common.install_signal_handlers()
    clock, nested = time.monotonic, []

    def monotonic():  # the repeat lands while the first handler runs, before it has recorded itself
        if not nested:
            nested.append(1)
            common._on_signal(signal.SIGINT, None)
        return clock()

    common.time.monotonic = monotonic
    with common.safe_interrupts() as held:
        common._on_signal(signal.SIGINT, None)
        assert isinstance(held.pending, KeyboardInterrupt)
        print("one request", flush=True)
""")


def test_a_repeat_landing_inside_the_first_handler_is_the_same_request():
    """Python runs a handler between two bytecodes of another: a repeat that lands before the first
    handler has recorded its request was taken for a second signal (the outputs removed)."""
    done = subprocess.run([sys.executable, "-c", _NESTED], capture_output=True, text=True,
                          env=subprocess_env(), timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "one request\n" and "second signal" not in done.stderr
