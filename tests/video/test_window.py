"""``--show``: a real window on a virtual X display (Xvfb), read back from its frame buffer."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import cv2
import numpy as np
import pytest

from posecli.errors import OutputError
from posecli.video.window import check_display

from tests.helpers import Xvfb, posecli_cmd, run, subprocess_env, write_video


@pytest.fixture
def xvfb(tmp_path):
    screen = Xvfb(tmp_path / "fb")
    try:
        yield screen
    finally:
        screen.close()


def _press(display: str, key: str) -> None:
    """Focus the posecli window and type ``key`` into it (xdotool, X's own input)."""
    env = {**os.environ, "DISPLAY": display}
    ids = subprocess.run(["xdotool", "search", "--name", "posecli"], capture_output=True, text=True, env=env,
                         timeout=10, check=False).stdout.split()
    for wid in ids:
        subprocess.run(["xdotool", "windowfocus", "--sync", wid], env=env, timeout=10, check=False,
                       capture_output=True)
    subprocess.run(["xdotool", "key", key], env=env, timeout=10, check=True)


@pytest.mark.parametrize("key", ["q", "Escape"])
def test_show_draws_skeletons_and_stops_on_q_or_esc(tmp_path, xvfb, default_model, mini_set, key):
    if shutil.which("xdotool") is None:
        pytest.skip("xdotool is not installed (make test installs it: apt-get install -y xdotool)")
    photo = cv2.resize(cv2.imread(str(mini_set["dir"] / "000000000785.jpg")), (320, 224))
    clip = write_video(tmp_path / "still.avi", 600, size_wh=(320, 224), frame_fn=lambda i: photo)
    out = tmp_path / "poses.json"
    env = {**subprocess_env(), "DISPLAY": xvfb.display}
    proc = subprocess.Popen(posecli_cmd("video", clip, "--realtime", "--show", "--out", out, "-q", "-m",
                                        default_model, "--device", "cpu", "--height", "128", "--threads", "1"),
                            env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, cwd=tmp_path)
    try:
        # the window shows the frame with a skeleton on it: find the frame on the screen
        # (template match on its lower half), then compare with the undrawn frame
        found = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            screen = xvfb.screenshot()
            match = cv2.matchTemplate(screen, photo[112:], cv2.TM_SQDIFF_NORMED)
            score, _, (x, y), _ = cv2.minMaxLoc(match)
            if score < 0.2:
                shown = screen[y - 112:y + 112, x:x + 320].astype(int)
                diff = np.abs(shown - photo.astype(int)).max(axis=2)
                diff[:30] = 0  # the caption band (frames/s, latency)
                if (diff > 60).sum() > 300:
                    found = (shown, diff)
                    break
            time.sleep(0.3)
        assert found is not None, "no skeleton appeared in the window"
        _press(xvfb.display, key)
        code = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = proc.stderr.read().decode()
    assert code == 0, stderr
    assert "Traceback" not in stderr and "QFont" not in stderr
    doc = json.loads(out.read_text())
    assert doc["complete"] is True and doc["stopped"] == "window closed"
    assert 1 <= doc["frames_done"] < 600
    # the drawing lies on the person the JSON reports
    person = max(doc["frames"][-1]["people"], key=lambda p: p["score"])
    xy = np.array([v[:2] for v in person["keypoints"].values() if v is not None])
    ys, xs = np.nonzero(found[1] > 60)
    inside = (xs >= xy[:, 0].min() - 15) & (xs <= xy[:, 0].max() + 15) & (ys >= xy[:, 1].min() - 15) \
        & (ys <= xy[:, 1].max() + 15)
    assert inside.mean() > 0.8


def test_show_without_a_display_is_a_one_line_error(tmp_path, tiny_model, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    clip = write_video(tmp_path / "clip.mp4", 4)
    r = run("video", clip, "--show", "--out", tmp_path / "p.json", "-m", tiny_model, "--device", "cpu")
    assert r.exit_code == 1, r.output
    assert r.stderr.startswith("Error: --show: no display (DISPLAY is not set)")
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "p.json").exists()


def test_unreachable_display_is_an_error_not_a_crash(monkeypatch):
    # Qt aborts a process that cannot reach its display: the check runs in a throwaway one
    monkeypatch.setenv("DISPLAY", ":999")
    with pytest.raises(OutputError, match="cannot open a window on display :999"):
        check_display()
