"""An on-screen window for ``--show``: each result's skeletons, ids, frames/s and latency.

OpenCV's highgui draws the window (its Qt backend on Linux). Qt aborts the whole process
when it cannot reach a display, so :class:`Window` first checks in a throwaway process
that a window can open, and raises :class:`OutputError` with the reason when it cannot
(no display, an unreachable X server, an OpenCV built without a GUI). ``q`` or Esc in
the window, or closing it, makes :meth:`Window.show` return False: the caller stops.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from ..errors import OutputError

_STOP_KEYS = (ord("q"), ord("Q"), 27)  # 27: Esc
_PROBE = (
    "import cv2, numpy\n"
    "cv2.namedWindow('posecli-probe', cv2.WINDOW_AUTOSIZE)\n"
    "cv2.imshow('posecli-probe', numpy.zeros((8, 8, 3), numpy.uint8))\n"
    "cv2.waitKey(1)\n"
    "cv2.destroyAllWindows()\n"
)
MAX_WINDOW_WH = (1600, 900)  # larger frames are shown scaled down


def qt_environment() -> dict:
    """Environment settings that keep Qt's font warnings off stderr (set only when unset)."""
    env = {"QT_LOGGING_RULES": "*.warning=false"}
    fonts = Path("/usr/share/fonts")
    if fonts.is_dir():
        env["QT_QPA_FONTDIR"] = str(fonts)
    return env


def check_display(timeout_s: float = 30.0) -> None:
    """:class:`OutputError` saying why no window can be shown here; None when one can."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise OutputError("show=True: no display (DISPLAY is not set); run it in a desktop session, "
                          "or under a virtual one: xvfb-run posecli ...")
    env = {**os.environ, **{k: v for k, v in qt_environment().items() if k not in os.environ}}
    try:
        probe = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=timeout_s, check=False,
                               env=env)
    except subprocess.TimeoutExpired:
        raise OutputError(f"show=True: opening a window did not finish within {timeout_s:g} s") from None
    if probe.returncode == 0:
        return
    text = probe.stderr
    if "not implemented" in text.lower() or "gui" in text.lower() and "error" in text.lower():
        raise OutputError("show=True: this OpenCV has no GUI support (opencv-python-headless?); "
                          "install opencv-python")
    where = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    lines = [ln.strip() for ln in text.splitlines() if "display" in ln.lower()]
    detail = f" ({lines[0]})" if lines else ""
    raise OutputError(f"show=True: cannot open a window on display {where}{detail}")


class Window:
    """A window showing results as they come (call :meth:`show` from the main thread)."""

    def __init__(self, title: str = "posecli", *, check: bool = True):
        if check:
            check_display()
        for key, value in qt_environment().items():
            os.environ.setdefault(key, value)
        self.title = title
        self.frames = 0
        self.fps = 0.0
        self._last: float | None = None
        self._open = False

    def show(self, result) -> bool:
        """Draw ``result`` (a :class:`~posecli.video.pipeline.FrameResult`); False when the user
        asked to stop (q, Esc, or the window closed)."""
        image = result.rendered if result.rendered is not None else result.image
        canvas = _fit(image)
        now = time.monotonic()
        if self._last is not None:
            rate = 1.0 / max(now - self._last, 1e-6)
            self.fps = rate if self.frames < 2 else 0.9 * self.fps + 0.1 * rate
        self._last = now
        self.frames += 1
        _caption(canvas, self._status(result))
        if not self._open:
            cv2.namedWindow(self.title, cv2.WINDOW_AUTOSIZE)
            self._open = True
        cv2.imshow(self.title, canvas)
        key = cv2.waitKey(1)
        if key != -1 and (key & 0xFF) in _STOP_KEYS:
            return False
        try:
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) >= 1
        except cv2.error:
            return False

    def _status(self, result) -> str:
        people = len(result.frame.people)
        parts = [f"{self.fps:.1f} frames/s" if self.frames > 1 else "- frames/s"]
        if result.latency is not None:
            parts.append(f"latency {1000 * result.latency:.0f} ms")
        parts.append(f"{people} {'person' if people == 1 else 'people'}")
        if result.skipped:
            parts.append(f"skipped {result.skipped}")
        return "  ".join(parts)

    def close(self) -> None:
        if self._open:
            try:
                cv2.destroyWindow(self.title)
                cv2.waitKey(1)
            except cv2.error:
                pass
            self._open = False


def _fit(image: np.ndarray) -> np.ndarray:
    """A copy of ``image`` no larger than :data:`MAX_WINDOW_WH`."""
    h, w = image.shape[:2]
    scale = min(1.0, MAX_WINDOW_WH[0] / w, MAX_WINDOW_WH[1] / h)
    if scale < 1.0:
        return cv2.resize(image, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA)
    return image.copy()


def _caption(canvas: np.ndarray, text: str) -> None:
    """White text on a dark band across the top of ``canvas`` (in place)."""
    h, w = canvas.shape[:2]
    scale = max(0.4, min(1.0, w / 900))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    band = min(h, th + base + 8)
    canvas[:band, :min(w, tw + 12)] //= 3
    cv2.putText(canvas, text, (6, th + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
